//! The per-poll half of the ledger: a history of polls, which `status`
//! reads (`report.rs`).

use std::fmt;

/// How many polls of each account are kept. `status` shows the latest, and
/// `status ACCOUNT` the latest ten; the rest are for an operator digging
/// with `sqlite3`, and without a bound a daemon polling every minute would
/// grow the ledger by half a million rows a year per account.
pub(super) const POLL_HISTORY: i64 = 1000;

/// Identifies a poll between [`Ledger::start_poll`](super::Ledger::start_poll)
/// and [`Ledger::finish_poll`](super::Ledger::finish_poll).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PollId(pub(super) i64);

impl fmt::Display for PollId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a finished poll ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PollOutcome {
    /// The default, so a report starts out as a success with zero counts.
    #[default]
    Ok,
    Failed,
}

impl PollOutcome {
    /// The name the ledger stores.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
        }
    }

    /// A stored outcome: `None` for "running", the outcome for the others,
    /// and an error (the name found) for anything else.
    pub(super) fn parse(text: &str) -> Result<Option<Self>, String> {
        match text {
            "running" => Ok(None),
            "ok" => Ok(Some(Self::Ok)),
            "failed" => Ok(Some(Self::Failed)),
            other => Err(format!("unknown poll outcome {other:?}")),
        }
    }
}

/// What a poll did, as reported by its caller when it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    pub outcome: PollOutcome,
    /// Messages in the server's listing.
    pub listed: u64,
    /// Messages the relay accepted during this poll.
    pub delivered: u64,
    /// Deletions the server confirmed.
    pub deleted: u64,
    /// Rejected messages skipped because their retry time had not come.
    pub deferred: u64,
    /// Messages the relay refused during this poll.
    pub rejected: u64,
    /// Listed messages the ledger had no row for (or one of another size),
    /// delivered or not: what makes an adaptive interval start over.
    pub new_listed: u64,
    /// Why the poll failed, for `PollOutcome::Failed`.
    pub error: Option<String>,
}

/// One poll of an account, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollSummary {
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds; `None` while `outcome` is `None`.
    pub finished_at: Option<i64>,
    /// `None` when no end was recorded: the poll is still running, or the
    /// process stopped (crash, kill, power loss) before it could finish.
    /// The ledger cannot tell these apart; the next poll of the account
    /// supersedes the row either way.
    pub outcome: Option<PollOutcome>,
    /// The counts of [`PollReport`]; all zero while `outcome` is `None`.
    pub listed: u64,
    pub delivered: u64,
    pub deleted: u64,
    pub deferred: u64,
    pub rejected: u64,
    pub error: Option<String>,
    /// 0 for a poll written as it ran; n > 0 for a row that stands for n
    /// consecutive pooled polls that found nothing (`empty_polls.rs`),
    /// from `started_at` (the first's start) to `finished_at` (the last's
    /// end).
    pub empty_polls: u64,
    /// Listed messages new to the ledger ([`PollReport::new_listed`]).
    pub new_listed: u64,
    /// Successful polls in a row that found nothing new, up to and
    /// including this one (`migrations/0006_quiet_polls.sql`): what an
    /// adaptive interval grows with.
    pub quiet_polls: u64,
}
