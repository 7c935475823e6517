//! The per-recipient half of the ledger: what each envelope recipient of a
//! message made of it (`migrations/0002_recipients.sql`).

/// Refusals kept per account for `status`, beyond the recipient rows of
/// the messages still on record: enough to see what went wrong last week,
/// bounded so a recipient refused on every poll cannot grow the file.
pub(super) const REFUSAL_HISTORY: i64 = 1000;

/// Where one recipient of a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecipientState {
    /// The relay took the message for this recipient.
    Delivered,
    /// Refused for now; tried again, alone, at the next poll.
    Deferred,
    /// Refused for good.
    Rejected,
}

impl RecipientState {
    /// The name the ledger stores, also used by `status --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Deferred => "deferred",
            Self::Rejected => "rejected",
        }
    }
}

impl RecipientState {
    /// The state named `text` as the ledger stores it.
    pub(super) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "delivered" => Self::Delivered,
            "deferred" => Self::Deferred,
            "rejected" => Self::Rejected,
            _ => return None,
        })
    }
}

/// One recipient of a message as the ledger remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientRecord {
    pub address: String,
    pub state: RecipientState,
    /// The relay's words for a refusal.
    pub reply: Option<String>,
}

/// A recipient the relay refused, for `popferry status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientRefusal {
    pub account: String,
    pub uid: String,
    pub address: String,
    pub state: RecipientState,
    pub reply: String,
    /// Unix seconds of the refusal.
    pub at: i64,
}
