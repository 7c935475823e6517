//! `popferry run` counts polls that found nothing (a WAKE answered
//! `[ACTIVITY/NONE]`, or a fresh login whose listing has nothing new) in
//! memory and writes them every `[daemon] empty_poll_flush` and at
//! shutdown; `popferry fetch` writes them when it ends. `status` shows them
//! at most that late, exactly after SIGTERM; a poll that delivers is written
//! at once; SIGKILL loses the empty polls counted since the last write and
//! nothing else.

mod pop3_server;
mod smtp_receiver;
mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pop3_server::{Extensions, Options, Pop3Server};
use serde_json::Value;
use smtp_receiver::SmtpReceiver;
use support::popferry::{spawn_popferry, AccountConfig, KillOnDrop, TestConfig};

const LIMIT: Duration = Duration::from_secs(30);

fn message(uid: &str) -> Vec<u8> {
    format!("From: a@example.net\r\nSubject: {uid}\r\nX-Test-Uid: {uid}\r\n\r\nbody {uid}\r\n")
        .into_bytes()
}

/// A server with `extensions` holding `m1`, a sink, and a config whose
/// one account `idle` polls every second.
async fn setup(flush: &str, extensions: Extensions) -> (Pop3Server, SmtpReceiver, TestConfig) {
    let options = Options {
        extensions,
        ..Options::default()
    };
    let account = AccountConfig::plain("idle", 0, &options.user, &options.password);
    let pop3 = Pop3Server::start(options).await;
    pop3.add("m1", &message("m1"));
    let smtp = SmtpReceiver::start().await;
    let config = TestConfig {
        dir: tempfile::tempdir().expect("temp dir"),
        smtp_port: smtp.port(),
        smtp_table: None,
        daemon: format!("empty_poll_flush = \"{flush}\""),
        accounts: vec![AccountConfig {
            port: pop3.port(),
            ..account
        }],
    };
    (pop3, smtp, config)
}

/// `status idle --json`: the account's entry.
fn status(config: &TestConfig) -> Value {
    let out = config.run(&["status", "idle", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let doc: Value = serde_json::from_str(&out.stdout).expect("status JSON");
    doc["accounts"][0].clone()
}

fn count(poll: &Value, key: &str) -> u64 {
    poll[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {poll}"))
}

/// SIGTERM, and a clean exit: the counted polls are written by then.
fn terminate(mut daemon: KillOnDrop) {
    daemon.signal("TERM");
    let exit = daemon.0.wait().expect("wait for popferry");
    assert!(exit.success(), "{exit:?}");
}

/// `idle`'s status once its history is the poll that delivered `m1` and
/// one run of empty polls after it: the entry and the run's count.
fn delivery_then_one_run(config: &TestConfig) -> (Value, u64) {
    let entry = status(config);
    let polls = entry["recent_polls"].as_array().expect("recent polls");
    assert_eq!(polls.len(), 2, "the delivering poll, then one run: {entry}");
    assert_eq!(count(&polls[1], "delivered"), 1, "{entry}");
    assert_eq!(count(&polls[1], "empty_polls"), 0, "{entry}");
    assert_eq!(entry["last_poll"], polls[0], "{entry}");
    let run = count(&polls[0], "empty_polls");
    (entry, run)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_polls_show_in_status_within_the_flush_interval_and_exactly_after_sigterm() {
    let (pop3, _smtp, config) = setup("1s", Extensions::all()).await;
    let log = config.dir.path().join("popferry.log");
    let daemon = spawn_popferry(&config.write(), &["run"], &log);
    wait_until("three empty pooled polls", || pop3.commands("WAKE") >= 3).await;

    // Flushed every second, polled every second (± a tenth), times in
    // whole seconds: the last poll shown is at most 3 s old.
    let entry = status(&config);
    let last = &entry["last_poll"];
    assert!(count(last, "empty_polls") >= 1, "{entry}");
    let age = unix_now().saturating_sub(count(last, "finished_at_unix"));
    assert!(age <= 3, "last poll shown is {age}s old: {entry}");

    terminate(daemon);
    let (entry, run) = delivery_then_one_run(&config);
    assert_eq!(
        run,
        pop3.commands("WAKE") as u64,
        "every WAKE found nothing, and each is on record after SIGTERM: {entry}"
    );
    let text = config.run(&["status", "idle"]).stdout;
    let line = format!(
        "ok: nothing new ({} empty polls since ",
        pop3.commands("WAKE")
    );
    assert!(text.contains(&line), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_only_the_empty_polls_since_the_last_write() {
    let (pop3, smtp, config) = setup("1h", Extensions::all()).await;
    let log = config.dir.path().join("popferry.log");
    let daemon = spawn_popferry(&config.write(), &["run"], &log);

    // A poll that delivers is on record at once, not at the next flush.
    wait_until("m1 delivered and on record", || {
        pop3.maildrop().is_empty() && status(&config)["last_poll"]["delivered"] == 1
    })
    .await;
    wait_until("two empty polls", || pop3.commands("WAKE") >= 2).await;
    pop3.add("m2", &message("m2"));
    wait_until("m2 delivered and on record", || {
        let polls = status(&config)["recent_polls"].clone();
        pop3.maildrop().is_empty() && polls[0]["delivered"] == 1 && polls[2]["delivered"] == 1
    })
    .await;
    let wakes_before_m2 = pop3.commands("WAKE") as u64;
    wait_until("empty polls after m2", || {
        pop3.commands("WAKE") as u64 >= wakes_before_m2 + 2
    })
    .await;
    drop(daemon);

    let entry = status(&config);
    let polls = entry["recent_polls"].as_array().expect("recent polls");
    assert_eq!(
        polls.len(),
        3,
        "m2's poll, the run before it, m1's: {entry}"
    );
    assert_eq!(count(&polls[0], "delivered"), 1, "{entry}");
    assert_eq!(count(&polls[2], "delivered"), 1, "{entry}");
    let written = count(&polls[1], "empty_polls");
    assert!(
        written >= 2 && written < wakes_before_m2,
        "the empty polls before m2's were written with its poll \
         ({written} of {wakes_before_m2} WAKEs, one of them m2's): {entry}"
    );
    assert_eq!(entry["last_poll"], polls[0], "those after it are lost");
    let totals = &entry["totals"];
    assert_eq!(count(totals, "delivered"), 2, "{entry}");
    assert_eq!(count(totals, "deleted"), 2, "{entry}");
    for uid in ["m1", "m2"] {
        let copies = (smtp.accepted().iter())
            .filter(|offer| {
                String::from_utf8_lossy(&offer.data).contains(&format!("X-Test-Uid: {uid}\r\n"))
            })
            .count();
        assert_eq!(copies, 1, "{uid} arrived once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_logins_that_find_nothing_are_one_run_written_at_sigterm() {
    let (pop3, _smtp, config) = setup("1h", Extensions::default()).await;
    let log = config.dir.path().join("popferry.log");
    let daemon = spawn_popferry(&config.write(), &["run"], &log);
    wait_until("three listings after m1's", || {
        pop3.maildrop().is_empty() && pop3.commands("UIDL") >= 4
    })
    .await;
    // Within the hour's flush interval only the delivering poll is written.
    let entry = status(&config);
    assert_eq!(count(&entry["last_poll"], "delivered"), 1, "{entry}");

    terminate(daemon);
    let (entry, run) = delivery_then_one_run(&config);
    assert_eq!(
        run,
        pop3.commands("UIDL") as u64 - 1,
        "every login after m1's found nothing: {entry}"
    );
    let lines = std::fs::read_to_string(&log).expect("popferry's log");
    assert_eq!(
        lines.matches("poll finished").count(),
        1,
        "only the poll that delivered is logged at info: {lines}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_writes_the_polls_that_found_nothing_when_it_ends() {
    let (pop3, _smtp, config) = setup("1h", Extensions::default()).await;
    for round in 0..3 {
        let out = config.run(&["fetch"]);
        assert_eq!(out.code, Some(0), "fetch {round}: {out}");
    }
    assert!(pop3.maildrop().is_empty());
    let (entry, run) = delivery_then_one_run(&config);
    assert_eq!(run, 2, "m1's poll, then one run of two: {entry}");
    let text = config.run(&["status", "idle"]).stdout;
    assert!(
        text.contains("ok: nothing new (2 empty polls since "),
        "{text}"
    );
}
