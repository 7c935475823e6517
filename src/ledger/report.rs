//! What `popferry status` reads: per account, totals since counting began
//! (`totals.rs`), what the last listing holds, the recent polls and the
//! messages waiting for another attempt. Each engine reads them with its
//! own SQL.

use super::recipients::{RecipientRecord, RecipientRefusal};
use super::{MessageState, PollSummary};

/// How many polls `status ACCOUNT` shows.
pub(super) const RECENT_POLLS: i64 = 10;

/// One account as `popferry status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStatus {
    pub account: String,
    /// The poll with the highest id, finished or not.
    pub last_poll: Option<PollSummary>,
    pub totals: Totals,
    pub on_server: OnServer,
}

/// Messages counted since [`Snapshot::counting_since`]; `totals.rs` says
/// what each count means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub delivered: u64,
    pub deleted: u64,
    pub rejected: u64,
    pub quarantined: u64,
}

/// The messages of the server's last listing that the ledger has a row
/// for, by what still has to happen to them. (A message the ledger has no
/// row for was not fetched yet, or was deferred as a whole: the last
/// poll's `deferred` count shows those.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OnServer {
    /// Delivered, deletion not confirmed: with `keep = true` every
    /// delivered message still listed; otherwise the last session ended
    /// before QUIT, and the next poll deletes them.
    pub delivered: u64,
    /// Partial: some recipients have it, others are tried again at the
    /// next poll.
    pub waiting: u64,
    /// Refused as a whole; tried again from its retry time on.
    pub rejected: u64,
    /// Quarantined, deletion not confirmed.
    pub quarantined: u64,
}

/// A message that stays on the server for another delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingMessage {
    pub uid: String,
    pub size: u64,
    /// [`MessageState::Partial`] or [`MessageState::Rejected`].
    pub state: MessageState,
    pub attempts: u32,
    /// The relay's reply to the latest refusal of the whole message.
    pub reason: Option<String>,
    /// Unix seconds; a rejected message is not tried before then. `None`
    /// for a partial one, which is tried at the next poll.
    pub retry_at: Option<i64>,
    /// What each recipient made of it so far.
    pub recipients: Vec<RecipientRecord>,
}

/// The details `status ACCOUNT` adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDetail {
    /// Newest first, the latest ten.
    pub polls: Vec<PollSummary>,
    pub waiting: Vec<WaitingMessage>,
}

/// Everything `status` shows, read in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Unix seconds since which [`Totals`] count.
    pub counting_since: i64,
    /// Every account the ledger knows, by name.
    pub accounts: Vec<AccountStatus>,
    /// See [`Ledger::refused_recipients`](super::Ledger::refused_recipients).
    pub refusals: Vec<RecipientRefusal>,
    /// For each account asked for in detail, in the order asked.
    pub details: Vec<(String, AccountDetail)>,
}
