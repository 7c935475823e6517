//! How many connections a relay may have open: `[smtp] max_connections`,
//! lowered for a while when the relay refuses one.
//!
//! A slot is the right to carry one message. A message takes a slot, then
//! an idle connection, or opens one only when none is idle; so the open
//! connections (idle and busy) never outnumber the slots, and every
//! account that shares the relay shares its slots.
//!
//! A relay that refuses connections beyond its own limit (Postfix's
//! `smtpd_client_connection_count_limit` answers the greeting with `421
//! 4.7.0`, others reset) while popferry has others open to it says how
//! many it takes: each refusal gives up one slot, down to one, and the
//! lowered count stays for [`REMEMBER`], so the next polls do not knock
//! again at once.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::futures::Notified;
use tokio::sync::{Notify, Semaphore, SemaphorePermit};

/// How long a relay's refusal lowers its slots.
pub const REMEMBER: Duration = Duration::from_secs(10 * 60);

pub(super) struct Slots {
    semaphore: Semaphore,
    configured: usize,
    lowered: Mutex<Lowered>,
    counter: Arc<Counter>,
}

/// The slots given up after refusals, and when the last was.
#[derive(Default)]
struct Lowered {
    by: usize,
    at: Option<Instant>,
}

/// Connections open or being opened, and a signal for those waiting for
/// one to come back idle or to close.
#[derive(Default)]
struct Counter {
    open: AtomicUsize,
    changed: Notify,
}

/// One connection counted as open until this is dropped.
pub(super) struct Counted(Arc<Counter>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

impl Slots {
    pub(super) fn new(configured: usize) -> Slots {
        Slots {
            semaphore: Semaphore::new(configured),
            configured,
            lowered: Mutex::new(Lowered::default()),
            counter: Arc::default(),
        }
    }

    pub(super) fn configured(&self) -> usize {
        self.configured
    }

    /// The slots in use now: the configured count less what refusals took.
    pub(super) fn current(&self) -> usize {
        self.configured - self.lock().by
    }

    /// Waits for a slot, first giving back those a refusal took once
    /// [`REMEMBER`] has passed.
    pub(super) async fn take(&self) -> SemaphorePermit<'_> {
        {
            let mut lowered = self.lock();
            if lowered.at.is_some_and(|at| at.elapsed() >= REMEMBER) {
                self.semaphore.add_permits(lowered.by);
                *lowered = Lowered::default();
            }
        }
        self.semaphore
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    /// The relay refused a connection while others were open: `slot` is
    /// given up for good (until [`REMEMBER`]), unless it is the last.
    /// Returns the slots left.
    pub(super) fn lower(&self, slot: SemaphorePermit<'_>) -> usize {
        let mut lowered = self.lock();
        if self.configured - lowered.by > 1 {
            slot.forget();
            lowered.by += 1;
        }
        lowered.at = Some(Instant::now());
        self.configured - lowered.by
    }

    /// Counts a connection about to be opened.
    pub(super) fn count(&self) -> Counted {
        self.counter.open.fetch_add(1, Ordering::SeqCst);
        Counted(Arc::clone(&self.counter))
    }

    /// Connections open or being opened.
    pub(super) fn open(&self) -> usize {
        self.counter.open.load(Ordering::SeqCst)
    }

    /// Wakes those waiting in [`Slots::changed`]: a connection came back.
    pub(super) fn notify(&self) {
        self.counter.changed.notify_waiters();
    }

    /// Resolves at the next [`Slots::notify`] or closed connection; to be
    /// created before looking, so nothing in between is missed.
    pub(super) fn changed(&self) -> Pin<Box<Notified<'_>>> {
        let mut notified = Box::pin(self.counter.changed.notified());
        notified.as_mut().enable();
        notified
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lowered> {
        self.lowered.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refusal_gives_up_a_slot_but_never_the_last() {
        let slots = Slots::new(3);
        let first = slots.take().await;
        assert_eq!(slots.lower(first), 2);
        let (a, b) = (slots.take().await, slots.take().await);
        assert_eq!(slots.semaphore.available_permits(), 0, "two slots left");
        assert_eq!(slots.lower(a), 1);
        assert_eq!(slots.lower(b), 1, "the last slot stays");
        assert_eq!(slots.current(), 1);
        assert_eq!(slots.semaphore.available_permits(), 1);
    }

    #[tokio::test]
    async fn given_up_slots_come_back_after_a_while() {
        let slots = Slots::new(2);
        let slot = slots.take().await;
        slots.lower(slot);
        slots.lock().at = Some(Instant::now() - REMEMBER);
        let (_a, _b) = (slots.take().await, slots.take().await);
        assert_eq!(slots.current(), 2);
    }

    #[tokio::test]
    async fn counted_connections_wake_waiters_when_they_close() {
        let slots = Slots::new(1);
        let counted = slots.count();
        assert_eq!(slots.open(), 1);
        let changed = slots.changed();
        drop(counted);
        changed.await;
        assert_eq!(slots.open(), 0);
    }
}
