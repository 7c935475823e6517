//! What to do with each listed message, from the ledger's record of it:
//! a pure function, so every case is a unit test.

use crate::config::Account;
use crate::ledger::{MessageRecord, MessageState};

/// What the ledger says to do with one listed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Fetch,
    /// Delivered before: delete without delivering again.
    Delete,
    Skip,
    /// Bigger than `max_message_size`: record it and leave it on the server.
    TooLarge,
}

/// First rejected retry after an hour, doubling up to a day.
const REJECT_RETRY_BASE: i64 = 3600;
const REJECT_RETRY_MAX: i64 = 24 * 3600;

/// Decide what to do with a listed message from its ledger record.
pub fn decide(
    record: Option<&MessageRecord>,
    size: u64,
    account: &Account,
    now: i64,
    retry_rejected: bool,
) -> Action {
    let record = record.filter(|r| r.is_for(size));
    match record.map(|r| (r.state, r.retry_at)) {
        Some((MessageState::Delivered | MessageState::Deleted | MessageState::Quarantined, _)) => {
            if account.keep {
                Action::Skip
            } else {
                Action::Delete
            }
        }
        Some((MessageState::Rejected, Some(at))) if at > now && !retry_rejected => Action::Skip,
        _ if size > account.max_message_size => Action::TooLarge,
        _ => Action::Fetch,
    }
}

/// When a rejected message is next tried: an hour after the first
/// rejection, doubling with each attempt, at most a day.
pub(super) fn retry_at(record: Option<&MessageRecord>, now: i64) -> i64 {
    let attempts = record
        .filter(|r| r.state == MessageState::Rejected)
        .map_or(0, |r| r.attempts);
    let delay = REJECT_RETRY_BASE
        .saturating_mul(1 << attempts.min(10))
        .min(REJECT_RETRY_MAX);
    now + delay
}

pub(super) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
