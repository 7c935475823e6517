//! Every account of `popferry run` on its own clock.
//!
//! Each account is one task: sleep until due, wait for its [`Turn`] (its
//! mailbox, a connection to its server, the server's next login time, a
//! slot among the concurrent polls), poll, park the session, work out the
//! next delay. The first polls of one server's accounts are spread over
//! their interval ([`first_polls`]). A failing account backs off on its
//! own (doubling up to `max_backoff`; at once to `max_backoff` when the
//! server refused the password, since retrying a wrong password can get
//! the address banned) and recovers by itself. Delays carry a little
//! jitter so a hundred accounts on one server do not all arrive at once.
//!
//! Fair under load: every wait of a turn is first come, first served, so
//! an account due waits for at most one poll of each account due before
//! it, and a server's accounts hold at most `max_connections_per_server`
//! of the poll slots, so one that stalls leaves the rest to the others.

pub mod interval;

use std::hash::{BuildHasher as _, RandomState};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::config::{Account, Daemon};
use crate::deliver::Relay;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::poll::{PollOptions, Polled, StopFlag};
use crate::pool::Pool;
use crate::session::{Kept, KnownCapabilities};
use interval::Pace;

mod first;
mod turn;

pub use first::{first_polls, login_demand};
pub use turn::{Pooled, Turn};

/// What the account tasks share.
#[derive(Debug)]
pub struct Shared {
    pub ledger: Ledger,
    pub pool: Pool,
    polls: Semaphore,
    limits: Daemon,
    /// Where each account's polls report, when metrics are served.
    metrics: Option<Arc<Metrics>>,
    /// What each server answered to CAPA, for the next fresh login to it.
    known: KnownCapabilities,
}

impl Shared {
    pub fn new(ledger: Ledger, limits: Daemon) -> Shared {
        Shared {
            pool: Pool::new(limits, &ledger),
            ledger,
            polls: Semaphore::new(limits.max_concurrent_polls),
            limits,
            metrics: None,
            known: KnownCapabilities::default(),
        }
    }

    /// Every account's polls report to `metrics`.
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> Shared {
        Shared {
            metrics: Some(metrics),
            ..self
        }
    }
}

/// One running account.
#[derive(Debug)]
pub struct AccountTask {
    pub account: Arc<Account>,
    stop: StopFlag,
    wake: Arc<Notify>,
    join: JoinHandle<()>,
}

impl AccountTask {
    /// Starts polling `account`, the first time after `first` (see
    /// [`first_polls`]). A `predecessor` (the same account before a config
    /// reload changed it) is stopped and finished first, so two versions
    /// of one account never poll at once.
    pub fn spawn(
        account: Arc<Account>,
        relay: Relay,
        shared: Arc<Shared>,
        predecessor: Option<AccountTask>,
        first: Duration,
    ) -> AccountTask {
        let stop = StopFlag::default();
        let wake = Arc::new(Notify::new());
        let span = tracing::info_span!("account", account = %account.name);
        let task = {
            let (account, stop, wake) = (Arc::clone(&account), stop.clone(), Arc::clone(&wake));
            async move {
                if let Some(old) = predecessor {
                    Box::pin(old.finish()).await;
                }
                run(&account, &relay, &shared, &stop, &wake, first).await;
                Box::pin(shared.pool.discard(&account)).await;
            }
        };
        AccountTask {
            account,
            stop,
            wake,
            join: tokio::spawn(task.instrument(span)),
        }
    }

    /// Asks the task to stop: a poll in flight finishes its current
    /// message and logs out; a waiting task stops waiting.
    pub fn stop(&self) {
        self.stop.raise();
        self.wake.notify_one();
    }

    /// Stops the task and waits for it.
    pub async fn finish(self) {
        self.stop();
        self.join.await.ok();
    }
}

async fn run(
    account: &Account,
    relay: &Relay,
    shared: &Shared,
    stop: &StopFlag,
    wake: &Notify,
    first: Duration,
) {
    let options = PollOptions {
        stop: stop.clone(),
        events: (shared.metrics.as_ref()).map_or_else(Default::default, |m| m.account(account)),
        known: shared.known.clone(),
        ..PollOptions::default()
    };
    let mut resumed = None;
    let mut delay = first;
    loop {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = wake.notified() => {}
        }
        if stop.is_raised() {
            return;
        }
        // Read when the first poll is due, not at spawn: first polls are
        // spread, so 10,000 tasks do not all wait on the ledger at once,
        // each holding the read's future (boxed, as it is as large as the
        // largest engine's, over a kilobyte for PostgreSQL's).
        let pace = match &mut resumed {
            Some(pace) => pace,
            slot @ None => slot.insert(Box::pin(resumed_pace(account, &shared.ledger)).await),
        };
        // Boxed, as each is kilobytes of state: inline, every sleeping
        // account task would hold them, 10,000 of them on a big host.
        // Only `stop` wakes a task: one still waiting for its lease, a
        // connection or a poll slot ends at once, not after another sleep.
        let turn = tokio::select! {
            turn = Box::pin(shared.turn(account)) => turn,
            () = wake.notified() => return,
        };
        let polled = Box::pin(turn.poll(account, relay, &options, pace));
        delay = polled.await.next;
    }
}

/// Where an account's interval stands when its task starts: as the
/// ledger's polls left it, so a restart or reload does not reset it.
async fn resumed_pace(account: &Account, ledger: &Ledger) -> Pace {
    match ledger.quiet_polls(&account.name).await {
        Ok(quiet) => Pace::resumed(quiet),
        Err(e) => {
            tracing::warn!(
                error = crate::poll::line_with_causes(&e),
                "starting at the shortest interval"
            );
            Pace::default()
        }
    }
}

/// The wait before the next poll: the interval after success (adapted to
/// the mailbox, `interval.rs`), backing off after failures, and never a
/// fresh login sooner than the server's LOGIN-DELAY.
fn next_delay(account: &Account, polled: &Polled, pace: &mut Pace, limits: &Daemon) -> Duration {
    let interval = pace.count(account, &polled.result);
    let base = match &polled.result {
        Ok(_) => {
            pace.failures = 0;
            interval
        }
        Err(e) if e.needs_a_person() => limits.max_backoff.max(interval),
        Err(_) => {
            pace.failures += 1;
            backoff(interval, pace.failures, limits.max_backoff)
        }
    };
    // Only a session still logged in as this account spares the next
    // poll a login.
    let logged_in = matches!(polled.parked, Some(Kept::Session(_)));
    let base = match polled.login_delay {
        Some(login_delay) if !logged_in => base.max(login_delay),
        _ => base,
    };
    jitter(base)
}

/// `interval` after the first failure, doubling with each further one, at
/// most `cap` (but never less than the interval itself).
fn backoff(interval: Duration, failures: u32, cap: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    interval
        .saturating_mul(1 << doublings)
        .min(cap)
        .max(interval)
}

/// `base` moved by up to a tenth either way (at most five seconds).
fn jitter(base: Duration) -> Duration {
    let spread_width = (base / 10).min(Duration::from_secs(5));
    base.saturating_sub(spread_width) + spread(spread_width * 2)
}

/// A uniformly random duration in `[0, width)`.
fn spread(width: Duration) -> Duration {
    let random = RandomState::new().hash_one(std::time::Instant::now());
    let nanos = width.as_nanos() as u64;
    Duration::from_nanos(if nanos == 0 { 0 } else { random % nanos })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::PollReport;
    use crate::poll::PollError;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn backoff_doubles_from_the_interval_up_to_the_cap() {
        let cap = 30 * MINUTE;
        assert_eq!(backoff(MINUTE, 1, cap), MINUTE);
        assert_eq!(backoff(MINUTE, 2, cap), 2 * MINUTE);
        assert_eq!(backoff(MINUTE, 4, cap), 8 * MINUTE);
        assert_eq!(backoff(MINUTE, 9, cap), cap);
        assert_eq!(backoff(MINUTE, u32::MAX, cap), cap);
        assert_eq!(
            backoff(2 * cap, 3, cap),
            2 * cap,
            "never below the interval"
        );
    }

    #[test]
    fn jitter_stays_within_a_tenth_and_five_seconds() {
        for _ in 0..1000 {
            let j = jitter(MINUTE);
            assert!(
                j >= Duration::from_secs(54) && j <= Duration::from_secs(66),
                "{j:?}"
            );
            let j = jitter(10 * MINUTE);
            assert!(
                j >= Duration::from_secs(595) && j <= Duration::from_secs(605),
                "{j:?}"
            );
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_fresh_login_waits_for_the_servers_login_delay() {
        let account = crate::config::Config::from_toml(
            "[smtp]\nhost = \"h\"\n[[account]]\nname = \"a\"\nhost = \"h\"\n\
             username = \"u\"\npassword_env = \"P\"\ndeliver_to = [\"u@example.org\"]\n",
            std::path::Path::new("/nonexistent/popferry.toml"),
        )
        .expect("config")
        .accounts
        .remove(0);
        let report = PollReport::default();
        let polled = Polled {
            result: Ok(report),
            parked: None,
            login_delay: Some(10 * MINUTE),
        };
        let mut pace = Pace {
            failures: 3,
            quiet: 0,
        };
        let delay = next_delay(&account, &polled, &mut pace, &Daemon::default());
        assert_eq!(pace.failures, 0, "a good poll resets the backoff");
        assert!(delay >= 10 * MINUTE - Duration::from_secs(5), "{delay:?}");
        let quick = Polled {
            login_delay: None,
            ..polled
        };
        assert!(
            next_delay(&account, &quick, &mut pace, &Daemon::default()) <= Duration::from_secs(66)
        );
    }

    #[test]
    fn a_first_poll_the_guard_refused_waits_the_longest_backoff() {
        let account = crate::config::Config::from_toml(
            "[smtp]\nhost = \"h\"\n[[account]]\nname = \"a\"\nhost = \"h\"\nkeep = true\n\
             username = \"u\"\npassword_env = \"P\"\ndeliver_to = [\"u@example.org\"]\n",
            std::path::Path::new("/nonexistent/popferry.toml"),
        )
        .expect("config")
        .accounts
        .remove(0);
        let refused = Polled {
            result: Err(PollError::FirstPoll {
                account: "a".into(),
                listed: 51,
            }),
            parked: None,
            login_delay: None,
        };
        let limits = Daemon::default();
        let delay = next_delay(&account, &refused, &mut Pace::default(), &limits);
        assert!(
            delay >= limits.max_backoff - Duration::from_secs(5),
            "{delay:?}"
        );
    }

    #[test]
    fn spread_is_not_constant() {
        let draws: std::collections::HashSet<_> =
            (0..50).map(|_| spread(Duration::from_secs(1))).collect();
        assert!(draws.len() > 40, "{} distinct of 50", draws.len());
    }
}
