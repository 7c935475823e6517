//! A database restart under `popferry run` with a PostgreSQL `state`:
//! polls fail while the database is away and recover when it is back,
//! nothing is lost, and duplicates stay within the README's bound for a
//! ledger failure mid-run (at most 16 per poll in flight). A file of its
//! own, since a restart cuts every connection to the test database.
//!
//! Needs the private PostgreSQL (`scripts/lib/postgres.sh`) and root for
//! its restart: run with `scripts/test.sh`.
#![cfg(feature = "real-servers")]

mod harness;
mod pg;
mod pop3_server;
mod smtp_receiver;
mod support;
#[path = "pg/world.rs"]
mod world;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use support::popferry::spawn_popferry;
use world::World;

/// The README's bound for a ledger commit that fails mid-run.
const UNRECORDED: usize = 16;

/// Restarts the test database with `mode` (`fast` or `immediate`).
fn restart_database(mode: &str) {
    let pg = pg::env();
    let status = Command::new(&pg.ctl)
        .args(["restart", mode])
        .status()
        .expect("run postgres.sh restart");
    assert!(status.success(), "postgres.sh restart {mode}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_run_fails_polls_that_recover_with_nothing_lost() {
    let world = World::new("restart_under_run").await;
    let log = world.dir.path().join("run.log");
    let _daemon = spawn_popferry(&world.config, &["run"], &log);
    let mut uids = Vec::new();
    let mut next = 0;
    let mut add = |world: &World, count: usize| {
        for _ in 0..count {
            next += 1;
            let uid = format!("r{next}");
            world.add(&uid);
            uids.push(uid);
        }
    };
    add(&world, 5);
    wait_for(&world, 5, Duration::from_secs(30)).await;

    // A poll fails only if it needs the database while it is away, which
    // a one-second interval makes likely but not certain per restart: so
    // restart until one did, at most ten times, with mail arriving on
    // both sides of each restart.
    let mut restarts = 0;
    let mut failed = false;
    while !failed && restarts < 10 {
        let mode = ["fast", "immediate"][restarts % 2];
        add(&world, 5);
        let started = Instant::now();
        tokio::task::spawn_blocking(move || restart_database(mode))
            .await
            .expect("restart");
        println!("restart {mode} took {:?}", started.elapsed());
        restarts += 1;
        add(&world, 5);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        failed = fs::read_to_string(&log)
            .expect("the daemon's log")
            .contains("poll failed");
    }
    assert!(failed, "no poll met any of {restarts} restarts");
    let recovered = Instant::now();
    let all = uids.len();
    wait_for(&world, all, Duration::from_secs(60)).await;
    println!(
        "all {all} delivered {:?} after the last restart",
        recovered.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !world.pop3.maildrop().is_empty() {
        assert!(
            Instant::now() < deadline,
            "left on the server: {:?}",
            world.pop3.uids()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let accepted = world.accepted();
    let lost: Vec<&String> = uids
        .iter()
        .filter(|uid| !accepted.contains_key(*uid))
        .collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    let duplicates: usize = accepted.values().map(|n| n - 1).sum();
    println!(
        "{restarts} restart(s), {duplicates} duplicate(s) (bound {UNRECORDED} per failed poll)"
    );
    assert!(
        duplicates <= restarts * UNRECORDED,
        "{duplicates} duplicates: {accepted:?}"
    );
    let text = fs::read_to_string(&log).expect("the daemon's log");
    assert!(
        !text.contains(&pg::env().password),
        "the password in the log"
    );
}

/// Waits until `count` distinct messages were accepted.
async fn wait_for(world: &World, count: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while world.accepted().len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} delivered",
            world.accepted().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
