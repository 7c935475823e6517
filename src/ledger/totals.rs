//! Running totals per account (`migrations/0003_totals.sql`), raised by
//! each engine inside the commit that makes the change, by the rules here.
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

use super::MessageState;

/// Which total a change raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Delivered,
    Rejected,
    Quarantined,
}

impl Kind {
    pub(super) fn as_str(self) -> &'static str {
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
    pub(super) fn counted_in(self, prior: MessageState) -> bool {
        match self {
            Self::Delivered => matches!(prior, MessageState::Delivered | MessageState::Deleted),
            Self::Quarantined => {
                matches!(prior, MessageState::Quarantined | MessageState::Deleted)
            }
            Self::Rejected => prior == MessageState::Rejected,
        }
    }
}
