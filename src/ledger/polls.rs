//! The per-poll half of the ledger: a history of polls, which `status`
//! reads (`report.rs`).

use std::fmt;

use rusqlite::types::{ToSqlOutput, Type};
use rusqlite::{params, Connection, OptionalExtension, Row, ToSql, TransactionBehavior};

use super::{empty_polls, get_u64, now, sql_int, Ledger, LedgerError};

/// How many polls of each account are kept. `status` shows the latest, and
/// `status ACCOUNT` the latest ten; the rest are for an operator digging
/// with `sqlite3`, and without a bound a daemon polling every minute would
/// grow the file by half a million rows a year per account.
pub(super) const POLL_HISTORY: i64 = 1000;

/// A poll starts with the count of the one before it, so a poll that never
/// finishes leaves the count as it was.
pub(super) const START_POLL: &str = "INSERT INTO poll (account, started_at, quiet_polls)
    VALUES (?1, ?2, coalesce((SELECT quiet_polls FROM poll WHERE account = ?1
                              ORDER BY id DESC LIMIT 1), 0))";

/// All but the account's latest [`POLL_HISTORY`] polls.
pub(super) const TRIM_HISTORY: &str = "DELETE FROM poll WHERE account = ?1 AND id <= (
    SELECT id FROM poll WHERE account = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)";

/// Only a successful poll moves the count: on from the poll before if it
/// found nothing new, to 0 if it did.
pub(super) const FINISH_POLL: &str = "UPDATE poll SET finished_at = ?2, outcome = ?3,
    listed = ?4, delivered = ?5, deleted = ?6, deferred = ?7, rejected = ?8, error = ?9,
    new_listed = ?10,
    quiet_polls = CASE WHEN ?3 = 'failed' THEN quiet_polls
                       WHEN ?10 > 0 THEN 0 ELSE quiet_polls + 1 END
    WHERE id = ?1 AND outcome = 'running'";

/// Identifies a poll between [`Ledger::start_poll`] and
/// [`Ledger::finish_poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PollId(i64);

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

impl ToSql for PollOutcome {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
        }))
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

/// The columns [`poll_summary`] reads, in its order.
pub(super) const POLL_COLUMNS: &str = "started_at, finished_at, outcome, listed, delivered, \
     deleted, deferred, rejected, error, empty_polls, new_listed, quiet_polls";

/// Reads a poll row's columns from `first` on, in the order of
/// [`POLL_COLUMNS`].
pub(super) fn poll_summary(row: &Row<'_>, first: usize) -> rusqlite::Result<PollSummary> {
    Ok(PollSummary {
        started_at: row.get(first)?,
        finished_at: row.get(first + 1)?,
        outcome: outcome(row, first + 2)?,
        listed: get_u64(row, first + 3)?,
        delivered: get_u64(row, first + 4)?,
        deleted: get_u64(row, first + 5)?,
        deferred: get_u64(row, first + 6)?,
        rejected: get_u64(row, first + 7)?,
        error: row.get(first + 8)?,
        empty_polls: get_u64(row, first + 9)?,
        new_listed: get_u64(row, first + 10)?,
        quiet_polls: get_u64(row, first + 11)?,
    })
}

fn outcome(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<PollOutcome>> {
    let text: String = row.get(index)?;
    match text.as_str() {
        "running" => Ok(None),
        "ok" => Ok(Some(PollOutcome::Ok)),
        "failed" => Ok(Some(PollOutcome::Failed)),
        other => Err(rusqlite::Error::FromSqlConversionFailure(
            index,
            Type::Text,
            format!("unknown poll outcome {other:?}").into(),
        )),
    }
}

impl Ledger {
    /// Records that a poll of `account` begins, after the account's empty
    /// polls not written yet (`empty_polls.rs`), and trims the account's
    /// history to the latest polls.
    pub async fn start_poll(&self, account: &str) -> Result<PollId, LedgerError> {
        let account = account.to_owned();
        let empty = self.take_empty_run(&account);
        let name = account.clone();
        let started = self
            .run_unsynced("record the start of a poll", move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                if let Some(run) = empty {
                    empty_polls::write(&tx, &account, run)?;
                }
                // Cached statements: at hundreds of polls a second, parsing
                // the SQL of each was a tenth of the daemon's CPU.
                (tx.prepare_cached(START_POLL)?).execute(params![account, now()])?;
                let id = tx.last_insert_rowid();
                (tx.prepare_cached(TRIM_HISTORY)?).execute(params![account, POLL_HISTORY])?;
                tx.commit()?;
                Ok(PollId(id))
            })
            .await;
        if let (Err(_), Some(run)) = (&started, empty) {
            self.restore(vec![(name, run)]);
        }
        started
    }

    /// Records how the poll `id` ended. Finishing a poll twice, or one that
    /// was never started, is refused with [`LedgerError::PollNotRunning`].
    pub async fn finish_poll(&self, id: PollId, report: &PollReport) -> Result<(), LedgerError> {
        let report = report.clone();
        let changed = self
            .run_unsynced("record the end of a poll", move |conn| {
                (conn.prepare_cached(FINISH_POLL)?).execute(params![
                    id.0,
                    now(),
                    report.outcome,
                    sql_int(report.listed)?,
                    sql_int(report.delivered)?,
                    sql_int(report.deleted)?,
                    sql_int(report.deferred)?,
                    sql_int(report.rejected)?,
                    report.error,
                    sql_int(report.new_listed)?,
                ])
            })
            .await?;
        if changed == 0 {
            return Err(LedgerError::PollNotRunning {
                path: self.path().to_owned(),
                id,
            });
        }
        Ok(())
    }

    /// How many successful polls of `account` in a row found nothing new,
    /// counted ones not written yet included: where a restarted account
    /// picks up its adaptive interval. One lookup of the latest row.
    pub async fn quiet_polls(&self, account: &str) -> Result<u64, LedgerError> {
        let name = account.to_owned();
        let written = self
            .run("read the polls that found nothing", move |conn| {
                latest_quiet_polls(conn, &name)
            })
            .await?;
        Ok(written + self.pending_empty_polls(account))
    }
}

/// The `quiet_polls` of `account`'s latest row; 0 for an account never
/// polled.
pub(super) fn latest_quiet_polls(conn: &Connection, account: &str) -> rusqlite::Result<u64> {
    let quiet: Option<i64> = conn
        .prepare_cached("SELECT quiet_polls FROM poll WHERE account = ?1 ORDER BY id DESC LIMIT 1")?
        .query_row([account], |row| row.get(0))
        .optional()?;
    Ok(quiet.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}
