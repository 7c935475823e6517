//! What the caller of a poll decides: per-run choices, the shutdown flag,
//! who watches the poll and how it ends.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::PollError;
use crate::ledger::PollReport;
use crate::session::KnownCapabilities;

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
    /// Told what the poll does as it happens; nobody by default.
    pub events: Events,
    /// What the run's servers answered to CAPA, shared by its polls.
    pub known: KnownCapabilities,
}

/// The one hook through which a poll reports its progress, so that the
/// poll knows nothing of who listens: the daemon's metrics and `fetch`'s
/// progress display are both fed from here. One watcher serves one
/// account, so it can resolve its labels once instead of per event.
///
/// Every method is called on the poll's own task, between I/O: it must
/// not block, and per message it should cost no more than an atomic add
/// or two (the progress bar's redraw is rate-limited by indicatif).
pub trait PollEvents: Send + Sync + fmt::Debug {
    /// The poll will RETR `messages` messages of `bytes` bytes (by LIST).
    fn planned(&self, _messages: u64, _bytes: u64) {}
    /// A message's body (`bytes` as read) has arrived from the server.
    fn fetched(&self, _bytes: u64) {}
    /// The relay accepted a message for at least one recipient, `latency`
    /// after popferry began reading its RETR reply.
    fn delivered(&self, _latency: Duration) {}
    /// An SMTP connection is taken (`true`) or handed back (`false`) for
    /// one message.
    fn relay_busy(&self, _busy: bool) {}
    /// One ledger transaction of outcomes committed in `took`.
    fn committed(&self, _took: Duration) {}
    /// The poll ended after `took`; `report` holds what it counted, also
    /// when it failed.
    fn finished(&self, _report: &PollReport, _error: Option<&PollError>, _took: Duration) {}
}

/// A shared [`PollEvents`]; the default tells nobody.
#[derive(Debug, Clone)]
pub struct Events(pub Arc<dyn PollEvents>);

impl Default for Events {
    fn default() -> Self {
        Events(Arc::new(Nobody))
    }
}

impl std::ops::Deref for Events {
    type Target = dyn PollEvents;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// The watcher of a poll nobody watches.
#[derive(Debug)]
struct Nobody;

impl PollEvents for Nobody {}

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
