//! The pace a reply must keep: sans-IO, so the rule is tested with plain
//! instants rather than real trickling sockets.
//!
//! The per-read timeout alone cannot stop a server that sends one byte
//! just before each read would time out: it would hold the poll (and a
//! slot of `max_concurrent_polls`) for ever. So besides "nothing for
//! `timeout`", each `timeout` a reply takes must bring at least
//! [`MIN_RATE`] bytes a second.

use std::time::Duration;

use tokio::time::Instant;

/// The slowest a reply may arrive, in bytes a second, averaged over each
/// `timeout` it takes. 256 bytes a second is a thirtieth of a 56k modem,
/// so no real link comes near it, yet a trickle of one byte a second fails
/// within one timeout.
pub const MIN_RATE: u64 = 256;

/// How one reply is arriving.
#[derive(Debug)]
pub(super) struct Pace {
    timeout: Duration,
    /// When the current window of `timeout` began, and the bytes received
    /// in it.
    window: Instant,
    received: u64,
    /// When the last byte arrived (or the reply was first waited for).
    last: Instant,
}

/// What a read that ran into [`Pace::deadline`] means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expired {
    /// Nothing arrived for `timeout`.
    Stalled,
    /// A whole window brought only this many bytes.
    TooSlow { received: u64 },
    /// The window was slow enough to end but fast enough to pass: read on.
    NextWindow,
}

impl Pace {
    pub(super) fn new(timeout: Duration, now: Instant) -> Pace {
        Pace {
            timeout,
            window: now,
            received: 0,
            last: now,
        }
    }

    /// When the next read must have returned.
    pub(super) fn deadline(&self) -> Instant {
        (self.last + self.timeout).min(self.window + self.timeout)
    }

    pub(super) fn arrived(&mut self, bytes: usize, now: Instant) {
        self.received += bytes as u64;
        self.last = now;
    }

    /// The read waiting for [`Pace::deadline`] timed out.
    pub(super) fn expired(&mut self) -> Expired {
        let window_ends = self.window + self.timeout;
        if self.last + self.timeout <= window_ends {
            return Expired::Stalled;
        }
        if (self.received as f64) < MIN_RATE as f64 * self.timeout.as_secs_f64() {
            return Expired::TooSlow {
                received: self.received,
            };
        }
        self.window = window_ends;
        self.received = 0;
        Expired::NextWindow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(2);

    #[test]
    fn silence_is_a_stall_at_the_timeout() {
        let start = Instant::now();
        let mut pace = Pace::new(T, start);
        assert_eq!(pace.deadline(), start + T);
        assert_eq!(pace.expired(), Expired::Stalled);
    }

    #[test]
    fn one_byte_a_second_is_too_slow_after_one_window() {
        let start = Instant::now();
        let mut pace = Pace::new(T, start);
        pace.arrived(1, start + Duration::from_secs(1));
        pace.arrived(1, start + Duration::from_millis(1999));
        assert_eq!(pace.deadline(), start + T, "the window ends first");
        assert_eq!(pace.expired(), Expired::TooSlow { received: 2 });
    }

    #[test]
    fn a_fast_window_opens_the_next_and_a_stall_after_it_is_caught_by_the_last_byte() {
        let start = Instant::now();
        let mut pace = Pace::new(T, start);
        let burst = start + Duration::from_millis(100);
        pace.arrived(64 * 1024, burst);
        assert_eq!(pace.expired(), Expired::NextWindow);
        assert_eq!(pace.deadline(), burst + T, "silence since the burst");
        assert_eq!(pace.expired(), Expired::Stalled);
    }
}
