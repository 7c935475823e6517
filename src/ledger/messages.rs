//! The per-message half of the ledger: what happened to each unique-id.

use std::collections::HashMap;

use super::recipients::RecipientRecord;

/// Where a message stands. See `migrations/0001_ledger.sql` for the full
/// story of each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageState {
    /// The relay accepted it; the server has not confirmed a deletion yet.
    Delivered,
    /// The server confirmed the deletion.
    Deleted,
    /// The relay refused it for now; it must stay on the server.
    Rejected,
    /// Refused for good and saved to the quarantine; it may be deleted.
    Quarantined,
    /// Some recipients have it or refused it for good, others are still to
    /// be tried; it must stay on the server.
    Partial,
}

impl MessageState {
    /// The name the ledger stores, also used by `status --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Deleted => "deleted",
            Self::Rejected => "rejected",
            Self::Quarantined => "quarantined",
            Self::Partial => "partial",
        }
    }
}

impl MessageState {
    /// The state named `text` as the ledger stores it.
    pub(super) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "delivered" => Self::Delivered,
            "deleted" => Self::Deleted,
            "rejected" => Self::Rejected,
            "quarantined" => Self::Quarantined,
            "partial" => Self::Partial,
            _ => return None,
        })
    }
}

/// One message as the ledger remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub uid: String,
    /// The size the server listed when the message was handled. A listing
    /// with the same uid but another size is a different message.
    ///
    /// `None` for a unique-id imported from another tool's state, which
    /// names no sizes: it is the same message whatever size is listed,
    /// until a poll that lists it records the size (see [`Self::is_for`]).
    pub size: Option<u64>,
    pub state: MessageState,
    /// Delivery attempts for this uid and size, the latest included.
    pub attempts: u32,
    /// Unix seconds before which a rejected message should not be retried.
    pub retry_at: Option<i64>,
    /// The relay's reply to the latest refused attempt.
    pub last_error: Option<String>,
    /// What each recipient tried so far made of it; filled in only for a
    /// [`MessageState::Partial`] or [`MessageState::Rejected`] message, the
    /// states whose next attempt needs it.
    pub recipients: Vec<RecipientRecord>,
}

impl MessageRecord {
    /// Whether a listed message of `size` bytes is the one recorded here.
    /// A reused unique-id with a different size is a new message; an
    /// imported one, whose size is not known yet, is taken on its
    /// unique-id alone, since the tool that recorded it saw that message
    /// under that unique-id.
    pub fn is_for(&self, size: u64) -> bool {
        self.size.is_none_or(|recorded| recorded == size)
    }
}

/// What [`Ledger::reconcile`](super::Ledger::reconcile) found.
#[derive(Debug)]
pub struct Reconciled {
    /// Rows forgotten because the server no longer lists their uid.
    pub pruned: u64,
    /// The records of the listed uids the ledger knows.
    pub known: HashMap<String, MessageRecord>,
}
