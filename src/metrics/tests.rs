use std::time::Duration;

use super::*;
use crate::config::Config;
use crate::ledger::LedgerError;

fn account(name: &str) -> Account {
    let toml = format!(
        "[smtp]\nhost = \"relay.example\"\nport = 2525\n[[account]]\nname = \"{name}\"\n\
         host = \"pop.example\"\nusername = \"u\"\npassword_env = \"P\"\n\
         deliver_to = [\"u@example.org\"]\n"
    );
    Config::from_toml(&toml, std::path::Path::new("/nonexistent/popferry.toml"))
        .expect("config")
        .accounts
        .remove(0)
}

/// The sample line for `series` (name and labels exactly), as a number.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("a number"))
}

#[test]
fn a_finished_poll_moves_its_accounts_counters_and_no_others() {
    let metrics = Metrics::new();
    let alice = metrics.account(&account("alice"));
    let _bob = metrics.account(&account("bob"));
    let report = PollReport {
        delivered: 3,
        deferred: 1,
        rejected: 2,
        deleted: 3,
        ..PollReport::default()
    };
    alice.finished(&report, None, Duration::from_millis(250));
    alice.finished(&report, None, Duration::from_millis(250));
    let text = metrics.encode(&[]);
    let alice_delivered = r#"popferry_messages_delivered_total{account="alice"}"#;
    assert_eq!(value(&text, alice_delivered), Some(6.0), "{text}");
    let bob_delivered = r#"popferry_messages_delivered_total{account="bob"}"#;
    assert_eq!(value(&text, bob_delivered), Some(0.0), "{text}");
    let deferred = r#"popferry_messages_deferred_total{account="alice"}"#;
    assert_eq!(value(&text, deferred), Some(2.0));
    let rejected = r#"popferry_messages_rejected_total{account="alice"}"#;
    assert_eq!(value(&text, rejected), Some(4.0));
    let ok = r#"popferry_polls_total{account="alice",outcome="ok"}"#;
    assert_eq!(value(&text, ok), Some(2.0));
    let durations = r#"popferry_poll_duration_seconds_count{server="pop.example:995"}"#;
    assert_eq!(value(&text, durations), Some(2.0));
    let last = r#"popferry_last_successful_poll_timestamp_seconds{account="alice"}"#;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    assert!(value(&text, last).unwrap() >= now.as_secs() as f64 - 5.0);
    let never = r#"popferry_last_successful_poll_timestamp_seconds{account="bob"}"#;
    assert_eq!(value(&text, never), Some(0.0));
}

#[test]
fn a_failed_poll_counts_as_failed_and_leaves_the_last_success_alone() {
    let metrics = Metrics::new();
    let alice = metrics.account(&account("alice"));
    let error = PollError::Recipient {
        address: "x".to_owned(),
    };
    alice.finished(&PollReport::default(), Some(&error), Duration::ZERO);
    let text = metrics.encode(&[]);
    let failed = r#"popferry_polls_total{account="alice",outcome="failed"}"#;
    assert_eq!(value(&text, failed), Some(1.0), "{text}");
    let last = r#"popferry_last_successful_poll_timestamp_seconds{account="alice"}"#;
    assert_eq!(value(&text, last), Some(0.0));
    assert_eq!(
        metrics.health().check(),
        Err("the scheduler is not running".into())
    );
}

#[test]
fn latency_commits_and_relay_use_reach_the_exposition() {
    let metrics = Metrics::new();
    let alice = metrics.account(&account("alice"));
    alice.delivered(Duration::from_millis(30));
    alice.committed(Duration::from_millis(2));
    alice.relay_busy(true);
    alice.relay_busy(true);
    alice.relay_busy(false);
    let text = metrics.encode(&[("pop.example:995".to_owned(), 2)]);
    let latency =
        r#"popferry_delivery_latency_seconds_bucket{relay="relay.example:2525",le="0.04"}"#;
    assert_eq!(value(&text, latency), Some(1.0), "{text}");
    let below = r#"popferry_delivery_latency_seconds_bucket{relay="relay.example:2525",le="0.02"}"#;
    assert_eq!(value(&text, below), Some(0.0), "{text}");
    assert_eq!(
        value(&text, "popferry_ledger_commit_duration_seconds_count"),
        Some(1.0)
    );
    let in_use = r#"popferry_smtp_connections_in_use{relay="relay.example:2525"}"#;
    assert_eq!(value(&text, in_use), Some(1.0), "{text}");
    let parked = r#"popferry_pop3_parked_connections{server="pop.example:995"}"#;
    assert_eq!(value(&text, parked), Some(2.0), "{text}");
    let refreshes = r#"popferry_oauth_token_refreshes_total{outcome="failed"}"#;
    assert!(value(&text, refreshes).is_some(), "{text}");
}

#[test]
fn every_family_has_help_and_type_in_the_text_format() {
    let metrics = Metrics::new();
    metrics.account(&account("alice"));
    let text = metrics.encode(&[("pop.example:995".to_owned(), 0)]);
    for name in [
        "popferry_messages_delivered_total counter",
        "popferry_messages_deleted_total counter",
        "popferry_polls_total counter",
        "popferry_poll_duration_seconds histogram",
        "popferry_delivery_latency_seconds histogram",
        "popferry_last_successful_poll_timestamp_seconds gauge",
        "popferry_smtp_connections_in_use gauge",
        "popferry_pop3_parked_connections gauge",
        "popferry_ledger_commit_duration_seconds histogram",
        "popferry_oauth_token_refreshes_total counter",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name}\n")),
            "{name} in {text}"
        );
    }
    assert!(
        !text.contains("# EOF"),
        "Prometheus text format, not OpenMetrics"
    );
    let help = text.lines().filter(|line| line.starts_with("# HELP "));
    assert_eq!(help.count(), 12, "{text}");
}

#[test]
fn health_fails_on_a_ledger_write_and_recovers_with_the_next_good_poll() {
    let metrics = Metrics::new();
    let alice = metrics.account(&account("alice"));
    metrics.health().set_running(true);
    assert_eq!(metrics.health().check(), Ok(()));
    let full = PollError::Ledger(LedgerError::InUse {
        path: "/var/lib/popferry/ledger.db".into(),
    });
    alice.finished(&PollReport::default(), Some(&full), Duration::ZERO);
    let reason = metrics.health().check().expect_err("unhealthy");
    assert!(
        reason.starts_with("the ledger failed a write: "),
        "{reason}"
    );
    assert!(!reason.contains('\n'), "one line: {reason}");
    let relay_down = PollError::Recipient {
        address: "x".to_owned(),
    };
    alice.finished(&PollReport::default(), Some(&relay_down), Duration::ZERO);
    assert!(
        metrics.health().check().is_err(),
        "other failures say nothing of the ledger"
    );
    alice.finished(&PollReport::default(), None, Duration::ZERO);
    assert_eq!(metrics.health().check(), Ok(()));
    metrics.health().set_running(false);
    assert!(metrics.health().check().is_err());
}
