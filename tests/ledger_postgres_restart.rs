//! A database restart under `popferry run` with a PostgreSQL `state`:
//! polls fail while the database is away and recover when it is back,
//! nothing is lost, and duplicates stay within the README's bound for a
//! ledger failure mid-run (at most 16 per poll in flight). And a server
//! that runs without `fsync` is refused. A file of its own, since these
//! change the server under every other test using it.
//!
//! Needs the private PostgreSQL (`scripts/lib/postgres.sh`) and root for
//! its restart: run with `scripts/test.sh`.
#![cfg(feature = "real-servers")]

mod fleet;
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

/// One test at a time: each changes the server under the other.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    let _serial = SERIAL.lock().await;
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

/// Server settings changed for one test, put back when it ends however it
/// ends, so the cluster never stays without `fsync` for the next test.
struct ServerSetting(&'static str);

impl ServerSetting {
    fn set(name: &'static str, value: &str) -> ServerSetting {
        superuser_sql(&format!("ALTER SYSTEM SET {name} = {value}"));
        superuser_sql("SELECT pg_reload_conf()");
        ServerSetting(name)
    }
}

impl Drop for ServerSetting {
    fn drop(&mut self) {
        superuser_sql(&format!("ALTER SYSTEM RESET {}", self.0));
        superuser_sql("SELECT pg_reload_conf()");
    }
}

fn superuser_sql(sql: &str) {
    let status = Command::new(pg::env().ctl)
        .args(["psql", "-c", sql])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run postgres.sh psql");
    assert!(status.success(), "{sql}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_fsync_is_refused_at_start() {
    let _serial = SERIAL.lock().await;
    let world = World::new("fsync_off").await;
    world.add("m1");
    let off = ServerSetting::set("fsync", "off");
    let fetch = world.run(&["fetch"]).await;
    drop(off);
    assert_eq!(fetch.code, Some(2), "{fetch}");
    assert!(fetch.stderr.contains("fsync = off"), "{fetch}");
    assert!(world.accepted().is_empty(), "nothing delivered");
    assert_eq!(world.pop3.uids(), ["m1"], "nothing deleted");
    let fetch = world.run(&["fetch"]).await;
    assert_eq!(fetch.code, Some(0), "with fsync back on: {fetch}");
    assert_eq!(world.accepted().len(), 1);
}

/// The poller lock is taken again after its session ended, and the server
/// is checked again then: one that came back without `fsync` takes no
/// write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_lost_fsync_takes_no_write_after_a_lost_session() {
    let _serial = SERIAL.lock().await;
    let world = World::new("fsync_lost").await;
    let config = popferry::config::Config::load(&world.config).expect("config");
    let ledger = popferry::ledger::Ledger::open_state(&config.state)
        .await
        .expect("open");
    ledger.record_delivered("alice", "before", 1).await.unwrap();
    let off = ServerSetting::set("fsync", "off");
    superuser_sql(
        "SELECT pg_terminate_backend(pid) FROM pg_locks
         WHERE locktype = 'advisory' AND objid = 7466357 AND granted",
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let err = loop {
        match ledger.record_delivered("alice", "during", 1).await {
            // The fence saw the lock gone before the client saw its session
            // end: that write is refused, and the next takes the lock again.
            Err(popferry::ledger::LedgerError::LockLost { .. }) if Instant::now() < deadline => {}
            Err(err) => break err,
            // The session's end can take a moment to be seen.
            Ok(()) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(()) => panic!("the lost session was never noticed"),
        }
    };
    drop(off);
    assert!(err.to_string().contains("fsync = off"), "{err}");
    ledger.record_delivered("alice", "after", 1).await.unwrap();
    let records = ledger.messages("alice").await.unwrap();
    assert!(records.contains_key("after"), "{records:?}");
}

/// Three instances of a fleet under load through a fast and an immediate
/// restart: their polls and renewals fail while the database is down, and
/// they recover by themselves (the leases are rows, so a restart shorter
/// than the lease keeps every owner); nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_recovers_from_database_restarts_with_nothing_lost() {
    let _serial = SERIAL.lock().await;
    let mut fleet = fleet::Fleet::new(
        "fleet_restart",
        fleet::Plan {
            accounts: 90,
            lease: Duration::from_secs(5),
            interval: Duration::from_secs(1),
            lock_maildrops: false,
            ..fleet::Plan::default()
        },
    )
    .await;
    for _ in 0..3 {
        fleet.spawn(None);
    }
    let claimed = fleet
        .wait_for(Duration::from_secs(30), || async {
            fleet.held().await.values().sum::<usize>() == 90
        })
        .await;
    assert!(
        claimed.is_some(),
        "{:?}\n{}",
        fleet.held().await,
        fleet.logs()
    );
    for mode in ["fast", "immediate"] {
        for i in 0..90 {
            fleet.add(i);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        tokio::task::spawn_blocking(move || restart_database(mode))
            .await
            .expect("restart");
        println!("fleet: restart {mode} took {:?}", started.elapsed());
        for i in 0..90 {
            fleet.add(i);
        }
    }
    // The database connection of the test itself ended with the restart.
    let db = fleet.pg.connect(&fleet.database).await;
    fleet.db = db;
    fleet.wait_delivered(Duration::from_secs(60)).await;
    let failed: usize = (fleet.instances.iter())
        .map(|instance| instance.log().matches("poll failed").count())
        .sum();
    let duplicates: usize = fleet.accepted().values().map(|n| n - 1).sum();
    println!("fleet: {failed} failed poll(s), {duplicates} duplicate(s) over two restarts");
    assert!(
        duplicates <= failed * UNRECORDED,
        "{duplicates} duplicates for {failed} failed polls"
    );
    let recovered = fleet
        .wait_for(Duration::from_secs(20), || async {
            fleet.held().await.values().sum::<usize>() == 90
        })
        .await;
    assert!(
        recovered.is_some(),
        "{:?}\n{}",
        fleet.held().await,
        fleet.logs()
    );
}
