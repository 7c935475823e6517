//! Metrics and health of `popferry run`, for Prometheus and for whatever
//! checks that the daemon is alive.
//!
//! The poll path reports through [`PollEvents`]; [`Metrics::account`] makes
//! one watcher per account that holds that account's counters already
//! resolved, so an event is an atomic add and never a label lookup.
//! Histograms are per POP3 server and per relay, not per account: a
//! histogram is twenty series, and twenty per account made a scrape of
//! 10,000 accounts a 16 MB page (and 33 MB of the daemon's heap while it
//! was written) that Prometheus would have to store as 400,000 series.
//! Figures that belong to no poll (parked POP3 sessions, OAuth2 refreshes)
//! are read when Prometheus scrapes. [`http`] serves `/metrics` and
//! `/healthz`.

pub mod http;
mod refreshes;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::config::Account;
use crate::ledger::PollReport;
use crate::poll::{Events, PollError, PollEvents};

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AccountLabel {
    account: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PollLabels {
    account: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RelayLabel {
    relay: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ServerLabel {
    server: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric the daemon exports, and its health.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    delivered: Family<AccountLabel, Counter>,
    deferred: Family<AccountLabel, Counter>,
    rejected: Family<AccountLabel, Counter>,
    deleted: Family<AccountLabel, Counter>,
    polls: Family<PollLabels, Counter>,
    poll_duration: Histograms<ServerLabel>,
    latency: Histograms<RelayLabel>,
    last_success: Family<AccountLabel, Gauge>,
    smtp_in_use: Family<RelayLabel, Gauge>,
    parked: Family<ServerLabel, Gauge>,
    commit: Histogram,
    health: Arc<Health>,
    /// The length of the last exposition, so the next is written into a
    /// buffer of its size at once rather than one doubled a dozen times.
    last_len: AtomicUsize,
}

/// Poll and delivery times: 10 ms to about 20 minutes.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 18))
}

/// Ledger commits are one fsync: 0.5 ms to about 2 s.
fn commit_seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 13))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("popferry");
        let counters = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<AccountLabel, Counter>::default();
            registry.register(name, help, family.clone());
            family
        };
        let delivered = counters(
            &mut registry,
            "messages_delivered",
            "Messages the relay accepted (for at least one recipient)",
        );
        let deferred = counters(
            &mut registry,
            "messages_deferred",
            "Messages left on the server after a temporary refusal",
        );
        let rejected = counters(
            &mut registry,
            "messages_rejected",
            "Messages the relay refused for good",
        );
        let deleted = counters(
            &mut registry,
            "messages_deleted",
            "Messages deleted from the POP3 server",
        );
        let m = Metrics {
            delivered,
            deferred,
            rejected,
            deleted,
            polls: Family::default(),
            poll_duration: Family::new_with_constructor(seconds),
            latency: Family::new_with_constructor(seconds),
            last_success: Family::default(),
            smtp_in_use: Family::default(),
            parked: Family::default(),
            commit: commit_seconds(),
            health: Arc::default(),
            last_len: AtomicUsize::new(0),
            registry,
        };
        m.register_the_rest()
    }

    fn register_the_rest(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register("polls", "Polls by outcome (ok, failed)", self.polls.clone());
        r.register(
            "poll_duration_seconds",
            "Time from the start of a poll to its end, per POP3 server",
            self.poll_duration.clone(),
        );
        r.register(
            "delivery_latency_seconds",
            "Time from reading a message's RETR reply to the relay's acceptance, per relay",
            self.latency.clone(),
        );
        r.register(
            "last_successful_poll_timestamp_seconds",
            "When the account's last successful poll ended (unix time)",
            self.last_success.clone(),
        );
        r.register(
            "smtp_connections_in_use",
            "SMTP connections carrying a message now",
            self.smtp_in_use.clone(),
        );
        r.register(
            "pop3_parked_connections",
            "POP3 connections parked between polls (after SLEE, CORE or QAUT)",
            self.parked.clone(),
        );
        r.register(
            "ledger_commit_duration_seconds",
            "Time of one ledger transaction of delivery outcomes, fsync included",
            self.commit.clone(),
        );
        r.register_collector(Box::new(refreshes::Collector));
        self
    }

    /// The watcher for `account`'s polls; its label sets are made here,
    /// once.
    pub fn account(&self, account: &Account) -> Events {
        let label = AccountLabel {
            account: account.name.clone(),
        };
        let outcome = |outcome| PollLabels {
            account: account.name.clone(),
            outcome,
        };
        let relay = RelayLabel {
            relay: account.smtp.endpoint(),
        };
        let server = ServerLabel {
            server: account.pop3.address(),
        };
        Events(Arc::new(AccountMetrics {
            delivered: self.delivered.get_or_create_owned(&label),
            deferred: self.deferred.get_or_create_owned(&label),
            rejected: self.rejected.get_or_create_owned(&label),
            deleted: self.deleted.get_or_create_owned(&label),
            ok: self.polls.get_or_create_owned(&outcome("ok")),
            failed: self.polls.get_or_create_owned(&outcome("failed")),
            duration: self.poll_duration.get_or_create_owned(&server),
            latency: self.latency.get_or_create_owned(&relay),
            last_success: self.last_success.get_or_create_owned(&label),
            smtp_in_use: self.smtp_in_use.get_or_create_owned(&relay),
            commit: self.commit.clone(),
            health: Arc::clone(&self.health),
        }))
    }

    /// The exposition in Prometheus' text format, with `parked` (sessions
    /// per POP3 server, as the pool counts them now) filled in.
    pub fn encode(&self, parked: &[(String, usize)]) -> String {
        for (server, count) in parked {
            let label = ServerLabel {
                server: server.clone(),
            };
            self.parked.get_or_create(&label).set(*count as i64);
        }
        let mut text = String::with_capacity(self.last_len.load(Ordering::Relaxed));
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        self.last_len.store(text.len(), Ordering::Relaxed);
        text
    }

    pub fn health(&self) -> &Health {
        &self.health
    }
}

/// What `/healthz` answers.
#[derive(Debug, Default)]
pub struct Health {
    running: AtomicBool,
    /// Why the ledger last failed a write, until a poll writes again.
    ledger_fault: Mutex<Option<String>>,
}

impl Health {
    /// The scheduler has started (`true`) or is shutting down (`false`).
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::SeqCst);
    }

    /// `Ok` while the scheduler runs and the ledger takes writes, else the
    /// reason in one line.
    ///
    /// The ledger is judged by the polls' own writes (every poll records
    /// its start and end) rather than by a probe of its own, which would
    /// take the one connection the polls queue on.
    pub fn check(&self) -> Result<(), String> {
        if !self.running.load(Ordering::SeqCst) {
            return Err("the scheduler is not running".to_owned());
        }
        match &*self.fault() {
            Some(reason) => Err(format!("the ledger failed a write: {reason}")),
            None => Ok(()),
        }
    }

    fn fault(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.ledger_fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn poll_ended(&self, error: Option<&PollError>) {
        match error {
            Some(e @ PollError::Ledger(_)) => *self.fault() = Some(e.with_causes()),
            // Only a poll that reached its end wrote to the ledger, start
            // and finish; one failing elsewhere wrote only its start.
            Some(_) => {}
            None => *self.fault() = None,
        }
    }
}

/// One account's metrics, resolved.
#[derive(Debug)]
struct AccountMetrics {
    delivered: Counter,
    deferred: Counter,
    rejected: Counter,
    deleted: Counter,
    ok: Counter,
    failed: Counter,
    duration: Histogram,
    latency: Histogram,
    last_success: Gauge,
    smtp_in_use: Gauge,
    commit: Histogram,
    health: Arc<Health>,
}

impl PollEvents for AccountMetrics {
    fn delivered(&self, latency: Duration) {
        self.latency.observe(latency.as_secs_f64());
    }

    fn relay_busy(&self, busy: bool) {
        if busy {
            self.smtp_in_use.inc();
        } else {
            self.smtp_in_use.dec();
        }
    }

    fn committed(&self, took: Duration) {
        self.commit.observe(took.as_secs_f64());
    }

    /// The message counters move when a poll ends, from the same report the
    /// ledger's poll history and the log line show, so the three agree.
    fn finished(&self, report: &PollReport, error: Option<&PollError>, took: Duration) {
        self.delivered.inc_by(report.delivered);
        self.deferred.inc_by(report.deferred);
        self.rejected.inc_by(report.rejected);
        self.deleted.inc_by(report.deleted);
        self.duration.observe(took.as_secs_f64());
        if error.is_some() {
            self.failed.inc();
        } else {
            self.ok.inc();
            let now = SystemTime::now().duration_since(UNIX_EPOCH);
            self.last_success.set(now.map_or(0, |t| t.as_secs() as i64));
        }
        self.health.poll_ended(error);
    }
}

#[cfg(test)]
mod tests;
