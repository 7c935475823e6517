//! The real binary with a PostgreSQL `state`, against the in-process test
//! POP3 server and SMTP receiver: `fetch` delivers each message once and a
//! second `fetch` delivers nothing again; `check` and `status` name the
//! database; and a second poller on the same database is refused. The
//! database restarts are in `ledger_postgres_restart.rs`, apart, since
//! they would cut these tests' connections.
//!
//! Needs the private PostgreSQL (`scripts/lib/postgres.sh`): run with
//! `scripts/test.sh`.
#![cfg(feature = "real-servers")]

mod harness;
mod pg;
mod pop3_server;
mod smtp_receiver;
mod support;
#[path = "pg/world.rs"]
mod world;

use std::fs;
use std::time::{Duration, Instant};

use support::popferry::{spawn_popferry, RunOutput};
use world::World;

fn assert_ok(output: &RunOutput, what: &str) {
    assert_eq!(output.code, Some(0), "{what}:\n{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_delivers_once_and_a_second_fetch_delivers_nothing() {
    let world = World::new("fetch_twice").await;
    let uids: Vec<String> = (1..=5).map(|n| format!("m{n}")).collect();
    for uid in &uids {
        world.add(uid);
    }
    let started = Instant::now();
    assert_ok(&world.run(&["fetch"]).await, "first fetch");
    let first = started.elapsed();
    let accepted = world.accepted();
    for uid in &uids {
        assert_eq!(accepted.get(uid), Some(&1), "{uid}: {accepted:?}");
    }
    assert!(world.pop3.maildrop().is_empty(), "deleted after recording");

    assert_ok(&world.run(&["fetch"]).await, "second fetch");
    assert_eq!(world.smtp.accepted().len(), uids.len(), "nothing again");

    let status = world.run(&["status", "--json"]).await;
    assert_ok(&status, "status");
    let json: serde_json::Value = serde_json::from_str(&status.stdout).expect("JSON");
    assert_eq!(json["ledger"], world.url.as_str(), "{json}");
    let alice = &json["accounts"][0];
    assert_eq!(alice["totals"]["delivered"], 5, "{json}");
    assert_eq!(alice["totals"]["deleted"], 5, "{json}");

    let check = world.run(&["check"]).await;
    assert_ok(&check, "check");
    let text = check.text();
    assert!(
        text.contains(&format!("PostgreSQL {}", world.url)),
        "{text}"
    );
    assert!(text.contains("TLS required"), "{text}");
    let connect = world.run(&["check", "--connect"]).await;
    assert_ok(&connect, "check --connect");
    let text = connect.text();
    let logged_in = format!(
        "PostgreSQL {}: logged in; the ledger knows 1 account(s)",
        world.url
    );
    assert!(text.contains(&logged_in), "{text}");
    println!("first fetch of 5 messages with a fresh PostgreSQL ledger: {first:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_poller_on_the_database_is_refused() {
    let world = World::new("second_poller_cli").await;
    let log = world.dir.path().join("run.log");
    let _daemon = spawn_popferry(&world.config, &["run"], &log);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("running")
    {
        assert!(Instant::now() < deadline, "the daemon never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fetch = world.run(&["fetch"]).await;
    assert_eq!(fetch.code, Some(2), "{fetch}");
    assert!(fetch.stderr.contains("need it to themselves"), "{fetch}");
}
