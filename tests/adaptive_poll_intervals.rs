//! `popferry run` with `poll_interval = "1s"` and `poll_interval_max =
//! "3s"`: the polls of an empty mailbox spread out (×1.5 each, never
//! beyond the max plus jitter), `status` shows the interval the daemon
//! uses, a restarted daemon keeps the grown interval, and a message
//! arriving brings it back to 1 s. Once over fresh logins, once over
//! pooled sessions (SLEE/WAKE), whose empty polls are only counted in
//! memory and written in batches.

mod pop3_server;
mod smtp_receiver;
mod support;

use std::time::{Duration, Instant};

use pop3_server::{Extensions, Options, Pop3Server};
use serde_json::Value;
use smtp_receiver::SmtpReceiver;
use support::popferry::{spawn_popferry, AccountConfig, KillOnDrop, TestConfig};

const LIMIT: Duration = Duration::from_secs(20);

/// The expected gap between polls when the rule asks for `interval`: the
/// jitter moves it by a tenth either way, and a loaded machine adds the
/// poll itself and some scheduling on top.
fn about(interval: f64) -> (f64, f64) {
    (interval * 0.9 - 0.05, interval * 1.1 + 0.4)
}

fn message(uid: &str) -> Vec<u8> {
    format!("From: a@example.net\r\nSubject: {uid}\r\nX-Test-Uid: {uid}\r\n\r\nbody {uid}\r\n")
        .into_bytes()
}

async fn setup(extensions: Extensions) -> (Pop3Server, SmtpReceiver, TestConfig) {
    let options = Options {
        extensions,
        ..Options::default()
    };
    let account = AccountConfig::plain("quiet", 0, &options.user, &options.password);
    let pop3 = Pop3Server::start(options).await;
    let smtp = SmtpReceiver::start().await;
    let config = TestConfig {
        dir: tempfile::tempdir().expect("temp dir"),
        smtp_port: smtp.port(),
        smtp_table: None,
        daemon: "empty_poll_flush = \"1s\"".to_owned(),
        accounts: vec![AccountConfig {
            port: pop3.port(),
            extra: "poll_interval_max = \"3s\"\n".to_owned(),
            ..account
        }],
    };
    (pop3, smtp, config)
}

/// Every poll the server sees: a login, or a WAKE of a pooled session.
fn polls(pop3: &Pop3Server) -> usize {
    pop3.logins() + pop3.commands("WAKE")
}

/// Waits for `n` more polls and returns the seconds between consecutive
/// ones, the first counted from the poll seen last before the call.
async fn gaps(pop3: &Pop3Server, n: usize) -> Vec<f64> {
    let deadline = Instant::now() + LIMIT;
    let mut seen = polls(pop3);
    let mut last = Instant::now();
    let mut out = Vec::new();
    // The first poll's own time is not known, only that it happened.
    let mut first = true;
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "{n} polls: only {out:?} in {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = polls(pop3);
        if now > seen {
            if !first {
                out.push(last.elapsed().as_secs_f64());
            }
            first = false;
            seen = now;
            last = Instant::now();
        }
    }
    out
}

fn status(config: &TestConfig) -> Value {
    let out = config.run(&["status", "quiet", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let doc: Value = serde_json::from_str(&out.stdout).expect("status JSON");
    doc["accounts"][0].clone()
}

fn start(config: &TestConfig, run: u32) -> KillOnDrop {
    let log = config.dir.path().join(format!("popferry-{run}.log"));
    spawn_popferry(&config.write(), &["run"], &log)
}

async fn adapts(extensions: Extensions) {
    let (pop3, smtp, config) = setup(extensions).await;
    let mut daemon = start(&config, 1);

    // After the first poll 1.5 s, 2.25 s, then the max of 3 s (not 3.375).
    let grown = gaps(&pop3, 3).await;
    for (gap, want) in grown.iter().zip([1.5, 2.25, 3.0]) {
        let (low, high) = about(want);
        assert!(*gap >= low && *gap <= high, "gaps {grown:?}, wanted {want}");
    }

    // The pooled polls reach the ledger at the next flush, a second on.
    let deadline = Instant::now() + LIMIT;
    let entry = loop {
        let entry = status(&config);
        if entry["interval"]["quiet_polls"].as_u64() >= Some(3) {
            break entry;
        }
        assert!(
            Instant::now() < deadline,
            "status never counted 3 quiet polls: {entry}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let interval = &entry["interval"];
    assert_eq!(interval["adaptive"], true, "{entry}");
    assert_eq!(interval["seconds"], 3.0, "{entry}");
    assert_eq!(interval["min_seconds"], 1.0, "{entry}");
    assert_eq!(interval["max_seconds"], 3.0, "{entry}");
    let text = config.run(&["status", "quiet"]).stdout;
    assert!(
        text.contains("  interval:   every 3s, the most: grew from 1s over "),
        "{text}"
    );

    // A restart resumes at the grown interval, not at 1 s.
    daemon.signal("TERM");
    assert!(daemon.0.wait().expect("wait").success());
    let before = status(&config)["interval"]["quiet_polls"].clone();
    let _daemon = start(&config, 2);
    let resumed = gaps(&pop3, 1).await;
    let (low, high) = about(3.0);
    assert!(
        resumed[0] >= low && resumed[0] <= high,
        "after the restart {resumed:?}, {before} quiet polls on record"
    );

    // Mail: the poll that lists it (the next, or the one after if a poll
    // was past its listing as the message came) resets the interval to
    // 1 s, and the poll after that finds nothing again: 1 s, then 1.5 s.
    pop3.add("m1", &message("m1"));
    let after = gaps(&pop3, 3).await;
    assert_eq!(smtp.accepted().len(), 1, "m1 delivered once");
    let within = |gap: f64, want: f64| {
        let (low, high) = about(want);
        gap >= low && gap <= high
    };
    assert!(
        after
            .windows(2)
            .any(|w| within(w[0], 1.0) && within(w[1], 1.5)),
        "after mail {after:?}"
    );
    // On record: the count ran on through the restart, and the poll that
    // listed m1 set it back to 0.
    let entry = status(&config);
    let polls = entry["recent_polls"].as_array().expect("recent polls");
    let found = (polls.iter())
        .position(|p| p["delivered"] == 1)
        .unwrap_or_else(|| panic!("no delivering poll: {entry}"));
    assert_eq!(polls[found]["new_listed"], 1, "{entry}");
    assert_eq!(polls[found]["quiet_polls"], 0, "{entry}");
    let before_mail = polls[found + 1]["quiet_polls"].as_u64().expect("count");
    assert!(before_mail >= 4, "{entry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_logins_spread_out_while_the_mailbox_is_empty_and_reset_on_mail() {
    adapts(Extensions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_polls_spread_out_while_the_mailbox_is_empty_and_reset_on_mail() {
    adapts(Extensions::all()).await;
}
