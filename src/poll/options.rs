//! What the caller of a poll decides: per-run choices, the shutdown flag
//! and how the poll ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Choices made per run, not per account.
#[derive(Debug, Clone, Default)]
pub struct PollOptions {
    /// Try rejected messages again now instead of waiting for their retry time.
    pub retry_rejected: bool,
    /// Deliver a kept mailbox the ledger knows nothing of even when it holds
    /// more than [`FIRST_POLL_LIMIT`](super::FIRST_POLL_LIMIT) messages:
    /// the explicit way past the first-poll guard.
    pub deliver_existing: bool,
    /// Raised at shutdown: finish the message in flight, then log out.
    pub stop: StopFlag,
}

/// A shutdown request a poll checks between messages.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How a poll ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// QUIT: the one-shot `fetch`, and servers without SLEE-WAKE.
    Quit,
    /// SLEE where the server offers it, and hand the session back.
    Park,
}
