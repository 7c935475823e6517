//! Running totals per account (`migrations/0003_totals.sql`), raised by
//! [`Change::apply`](super::Change) inside the commit that makes the change.
//!
//! Each total counts messages, not attempts, so that the numbers answer
//! "how many messages did this account move" and stay comparable with what
//! the mailbox held:
//!
//! * `delivered`: messages that became delivered (every recipient has it or
//!   refused it for good, at least one has it); once per message.
//! * `quarantined`: messages refused for good and saved to the quarantine.
//! * `rejected`: messages the relay refused as a whole (or that were too
//!   big, or listed as differing copies of one unique-id), once per message
//!   however often it is retried; one delivered on a later try counts in
//!   `delivered` too.
//! * `deleted`: delivered or quarantined messages whose deletion the server
//!   confirmed.
//!
//! A unique-id the server reuses for another message (another size) is a
//! new message and counts again.

use rusqlite::{params, Connection, OptionalExtension};

use super::{sql_int, MessageState};

/// Which total a change raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Delivered,
    Rejected,
    Quarantined,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Rejected => "rejected",
            Self::Quarantined => "quarantined",
        }
    }

    /// The total a message entering `state` raises, if any.
    pub(super) fn of(state: MessageState) -> Option<Self> {
        match state {
            MessageState::Delivered => Some(Self::Delivered),
            MessageState::Rejected => Some(Self::Rejected),
            MessageState::Quarantined => Some(Self::Quarantined),
            MessageState::Partial | MessageState::Deleted => None,
        }
    }

    /// Whether a message already recorded in `prior` (same size) has been
    /// counted under this kind. A delivered message stays counted after its
    /// deletion; a rejected one is counted at its first refusal only.
    fn counted_in(self, prior: MessageState) -> bool {
        match self {
            Self::Delivered => matches!(prior, MessageState::Delivered | MessageState::Deleted),
            Self::Quarantined => {
                matches!(prior, MessageState::Quarantined | MessageState::Deleted)
            }
            Self::Rejected => prior == MessageState::Rejected,
        }
    }
}

/// Raises the `kind` total of `account` unless the message `uid` of `size`
/// is already counted there. Call it before the message's row changes.
pub(super) fn count(
    conn: &Connection,
    account: &str,
    uid: &str,
    size: u64,
    kind: Kind,
) -> rusqlite::Result<()> {
    let prior: Option<MessageState> = conn
        .prepare_cached("SELECT state FROM message WHERE account = ?1 AND uid = ?2 AND size = ?3")?
        .query_row(params![account, uid, sql_int(size)?], |row| row.get(0))
        .optional()?;
    if prior.is_some_and(|prior| kind.counted_in(prior)) {
        return Ok(());
    }
    raise(conn, "SELECT ?1, ?2, 1", params![account, kind.as_str()])
}

/// Raises the `deleted` total of `account` if `uid` is a message the server
/// may delete and has not been counted as deleted yet. Call it before the
/// row is marked deleted.
pub(super) fn count_deletion(conn: &Connection, account: &str, uid: &str) -> rusqlite::Result<()> {
    raise(
        conn,
        // `WHERE true` tells SQLite's parser the upsert clause is not a join.
        "SELECT ?1, 'deleted', 1 FROM message
         WHERE true AND account = ?1 AND uid = ?2 AND state IN ('delivered', 'quarantined')",
        params![account, uid],
    )
}

/// Adds the row `select` yields (account, kind, 1) to the totals.
fn raise(conn: &Connection, select: &str, params: &[&dyn rusqlite::ToSql]) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO total (account, kind, count) {select}
         ON CONFLICT (account, kind) DO UPDATE SET count = count + 1"
    ))?
    .execute(params)?;
    Ok(())
}
