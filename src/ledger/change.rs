//! Changes to the ledger's record of messages and their recipients, as
//! applied inside one commit. What a change means is decided here, once;
//! each engine only writes the [`Step`] it comes down to.

use std::path::PathBuf;

use super::recipients::RecipientState;
use super::MessageState;

/// One change to the ledger's record of a message, for [`Ledger::commit`](super::Ledger::commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The relay accepted the message.
    Delivered { uid: String, size: u64 },
    /// The relay refused it; keep it on the server until `retry_at`.
    Rejected {
        uid: String,
        size: u64,
        reply: String,
        retry_at: i64,
    },
    /// Refused for good and durably saved at `path`.
    Quarantined {
        uid: String,
        size: u64,
        reply: String,
        path: PathBuf,
    },
    /// Some recipients are settled and others still to be tried; keep it
    /// on the server.
    Partial { uid: String, size: u64 },
    /// What one recipient made of the message; written after the change
    /// to the message itself in the same commit.
    Recipient {
        uid: String,
        address: String,
        state: RecipientState,
        reply: Option<String>,
    },
    /// The server confirmed the deletion (DELI's +OK, or QUIT's after DELE).
    Deleted { uid: String },
}

/// The outcome of one delivery attempt: every column of the message row
/// that an attempt overwrites.
#[derive(Debug)]
pub(super) struct Attempt {
    pub state: MessageState,
    pub delivered_at: Option<i64>,
    pub last_error: Option<String>,
    pub retry_at: Option<i64>,
    pub quarantine_path: Option<String>,
}

/// What a [`Change`] writes, in the terms both engines share.
#[derive(Debug)]
pub(super) enum Step<'a> {
    /// An attempt at the message `uid` of `size` bytes: the totals rule
    /// (`totals.rs`) first, then the row's upsert.
    Message {
        uid: &'a str,
        size: u64,
        attempt: Attempt,
    },
    /// A recipient's outcome and the refusal history it changes.
    Recipient {
        uid: &'a str,
        address: &'a str,
        state: RecipientState,
        reply: Option<&'a str>,
    },
    /// A confirmed deletion.
    Deleted { uid: &'a str },
}

impl Change {
    /// What this change writes when applied at time `at`.
    pub(super) fn step(&self, at: i64) -> Step<'_> {
        let attempt = |state, delivered_at, last_error: Option<&String>, retry_at| Attempt {
            state,
            delivered_at,
            last_error: last_error.cloned(),
            retry_at,
            quarantine_path: None,
        };
        match self {
            Change::Delivered { uid, size } => Step::Message {
                uid,
                size: *size,
                attempt: attempt(MessageState::Delivered, Some(at), None, None),
            },
            Change::Rejected {
                uid,
                size,
                reply,
                retry_at,
            } => Step::Message {
                uid,
                size: *size,
                attempt: attempt(MessageState::Rejected, None, Some(reply), Some(*retry_at)),
            },
            Change::Quarantined {
                uid,
                size,
                reply,
                path,
            } => Step::Message {
                uid,
                size: *size,
                attempt: Attempt {
                    // Kept for the operator to find the file, never read
                    // back, so a lossy rendering of a non-UTF-8 path will do.
                    quarantine_path: Some(path.to_string_lossy().into_owned()),
                    ..attempt(MessageState::Quarantined, Some(at), Some(reply), None)
                },
            },
            Change::Partial { uid, size } => Step::Message {
                uid,
                size: *size,
                attempt: attempt(MessageState::Partial, None, None, None),
            },
            Change::Recipient {
                uid,
                address,
                state,
                reply,
            } => Step::Recipient {
                uid,
                address,
                state: *state,
                reply: reply.as_deref(),
            },
            Change::Deleted { uid } => Step::Deleted { uid },
        }
    }
}
