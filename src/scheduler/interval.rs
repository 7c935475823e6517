//! How long an account waits between successful polls: the one rule,
//! used by the daemon's account tasks and by `popferry status`, a separate
//! process that rebuilds the same state from the ledger.
//!
//! Without `poll_interval_max` the interval is `poll_interval`, fixed.
//! With it, each successful poll in a row that found nothing new makes the
//! interval 1.5 times longer, up to `poll_interval_max`, and a poll whose
//! listing holds any message new to the ledger (delivered or not) brings
//! it back to `poll_interval`: a mailbox that gets mail is polled often,
//! one that never does costs its server little. A failed poll changes
//! nothing here; the backoff, LOGIN-DELAY and jitter of the scheduler
//! apply on top of the interval this gives.
//!
//! The state is one number, the count of quiet polls, which the ledger
//! keeps on each poll row (`migrations/0006_quiet_polls.sql`), so a
//! restart resumes every account's interval instead of starting over.

use std::time::Duration;

use crate::config::Account;
use crate::ledger::PollReport;
use crate::poll::PollError;

/// The interval `account` waits after `quiet` successful polls in a row
/// that found nothing new.
pub fn interval(account: &Account, quiet: u64) -> Duration {
    grown(account.poll_interval, account.poll_interval_max, quiet)
}

/// `min` grown ×1.5 `quiet` times, at most `max`. Integer nanoseconds, so
/// the daemon and `status` agree exactly; the loop ends at the cap, after
/// a few dozen steps at most, however large `quiet` is.
fn grown(min: Duration, max: Option<Duration>, quiet: u64) -> Duration {
    let Some(max) = max else { return min };
    let mut interval = min;
    for _ in 0..quiet {
        if interval >= max {
            break;
        }
        interval = interval.saturating_mul(3) / 2;
    }
    interval.min(max).max(min)
}

/// What an account task keeps between its polls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pace {
    /// Failed polls in a row, for the backoff.
    pub failures: u32,
    /// Successful polls in a row that found nothing new: the ledger's
    /// `quiet_polls` ([`crate::ledger::Ledger::quiet_polls`]).
    pub quiet: u64,
}

impl Pace {
    /// The pace of an account whose ledger counts `quiet` quiet polls.
    pub fn resumed(quiet: u64) -> Pace {
        Pace { failures: 0, quiet }
    }

    /// Counts a finished poll, and returns the interval it leaves: after a
    /// success the one its finding sets, after a failure the one before
    /// (which the backoff starts from).
    pub fn count(&mut self, account: &Account, result: &Result<PollReport, PollError>) -> Duration {
        match result {
            Ok(report) if report.new_listed > 0 => self.quiet = 0,
            Ok(_) => self.quiet = self.quiet.saturating_add(1),
            Err(_) => {}
        }
        interval(account, self.quiet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn grows_by_half_per_quiet_poll_up_to_the_max() {
        let max = Some(30 * MINUTE);
        let seen: Vec<Duration> = (0..=9).map(|n| grown(MINUTE, max, n)).collect();
        assert_eq!(
            seen,
            [
                ms(60_000),
                ms(90_000),
                ms(135_000),
                ms(202_500),
                ms(303_750),
                ms(455_625),
                Duration::from_micros(683_437_500),
                Duration::from_nanos(1_025_156_250_000),
                Duration::from_nanos(1_537_734_375_000),
                30 * MINUTE,
            ]
        );
        assert_eq!(grown(MINUTE, max, u64::MAX), 30 * MINUTE, "capped");
    }

    #[test]
    fn without_a_max_the_interval_stays_fixed() {
        assert_eq!(grown(MINUTE, None, 0), MINUTE);
        assert_eq!(grown(MINUTE, None, 50), MINUTE);
    }

    #[test]
    fn a_max_equal_to_the_interval_keeps_it_fixed() {
        assert_eq!(grown(MINUTE, Some(MINUTE), 7), MINUTE);
    }

    #[test]
    fn one_second_reaches_four_in_four_quiet_polls() {
        let max = Some(Duration::from_secs(4));
        let seen: Vec<Duration> = (0..5)
            .map(|n| grown(Duration::from_secs(1), max, n))
            .collect();
        assert_eq!(seen, [ms(1000), ms(1500), ms(2250), ms(3375), ms(4000)]);
    }

    fn adaptive() -> Account {
        let account = crate::config::Config::from_toml(
            "[smtp]\nhost = \"h\"\n[[account]]\nname = \"a\"\nhost = \"h\"\n\
             username = \"u\"\npassword_env = \"P\"\ndeliver_to = [\"u@example.org\"]\n\
             poll_interval = \"1m\"\npoll_interval_max = \"30m\"\n",
            std::path::Path::new("/nonexistent/popferry.toml"),
        )
        .expect("config")
        .accounts
        .remove(0);
        assert_eq!(account.poll_interval_max, Some(30 * MINUTE));
        account
    }

    fn found(new_listed: u64) -> Result<PollReport, PollError> {
        Ok(PollReport {
            listed: new_listed + 3,
            new_listed,
            ..PollReport::default()
        })
    }

    #[test]
    fn mail_resets_and_failures_leave_the_interval() {
        let account = adaptive();
        let mut pace = Pace::resumed(2);
        assert_eq!(pace.count(&account, &found(0)), ms(202_500));
        let failed = Err(PollError::FirstPoll {
            account: "a".into(),
            listed: 51,
        });
        assert_eq!(pace.count(&account, &failed), ms(202_500));
        assert_eq!(pace.quiet, 3, "a failure neither grows nor resets");
        assert_eq!(pace.count(&account, &found(1)), MINUTE);
        assert_eq!(pace.quiet, 0);
        assert_eq!(pace.count(&account, &found(0)), ms(90_000));
    }

    #[test]
    fn backoff_starts_from_the_grown_interval() {
        let account = adaptive();
        let failed = crate::poll::Polled {
            result: Err(PollError::Recipient {
                address: "x".into(),
            }),
            parked: None,
            login_delay: None,
        };
        let limits = crate::config::Daemon::default();
        let mut pace = Pace::resumed(3);
        let near = |d: Duration, want: Duration| d.abs_diff(want) <= Duration::from_secs(5);
        let first = super::super::next_delay(&account, &failed, &mut pace, &limits);
        assert!(near(first, ms(202_500)), "{first:?}");
        let second = super::super::next_delay(&account, &failed, &mut pace, &limits);
        assert!(near(second, ms(405_000)), "{second:?}");
        assert_eq!(
            pace,
            Pace {
                failures: 2,
                quiet: 3
            }
        );
    }
}
