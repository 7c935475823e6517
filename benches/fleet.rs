//! Throughput of a fleet: how long 1 and then 3 `popferry run` instances
//! sharing a PostgreSQL ledger take to move a backlog of mail from 300
//! accounts (10 messages each) on the in-process test POP3 server to the
//! test SMTP receiver, each message once. Not a timed test: it prints the
//! figures (`bench/FLEET.md` keeps two runs', and what they mean).
//!
//! Needs the private PostgreSQL of `scripts/lib/postgres.sh`:
//! `scripts/services.sh start`, source the env file it names, then
//! `cargo bench --features real-servers --bench fleet` (the daemon is
//! the binary Cargo builds for the bench profile: release).

#[path = "../tests/fleet/mod.rs"]
mod fleet;
#[path = "../tests/harness/mod.rs"]
mod harness;
#[path = "../tests/pg/mod.rs"]
mod pg;
#[path = "../tests/pop3_server/mod.rs"]
mod pop3_server;
#[path = "../tests/smtp_receiver/mod.rs"]
mod smtp_receiver;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use fleet::{Fleet, Plan};

const ACCOUNTS: usize = 300;
const PER_ACCOUNT: usize = 10;

async fn backlog(instances: usize) -> (Duration, usize) {
    let mut fleet = Fleet::new(
        &format!("bench_fleet_{instances}"),
        Plan {
            accounts: ACCOUNTS,
            lease: Duration::from_secs(10),
            interval: Duration::from_secs(1),
            lock_maildrops: false,
            ..Plan::default()
        },
    )
    .await;
    for _ in 0..instances {
        fleet.spawn(None);
    }
    let claimed = fleet
        .wait_for(Duration::from_secs(60), || async {
            let held = fleet.held().await;
            held.len() == instances && held.values().sum::<usize>() == ACCOUNTS
        })
        .await;
    assert!(
        claimed.is_some(),
        "{:?}\n{}",
        fleet.held().await,
        fleet.logs()
    );
    for _ in 0..PER_ACCOUNT {
        for i in 0..ACCOUNTS {
            fleet.add(i);
        }
    }
    let started = Instant::now();
    let moved = fleet
        .wait_for(Duration::from_secs(300), || async {
            fleet.accepted().len() == fleet.added() && fleet.on_server() == 0
        })
        .await;
    assert!(moved.is_some(), "not moved\n{}", fleet.logs());
    let twice = fleet.accepted().values().filter(|&&n| n > 1).count();
    assert_eq!(twice, 0, "duplicates");
    (started.elapsed(), fleet.added())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("| instances | messages | time | messages per second |");
    println!("|---|---|---|---|");
    for instances in [1, 3] {
        let (took, messages) = backlog(instances).await;
        println!(
            "| {instances} | {messages} | {:.1} s | {:.0} |",
            took.as_secs_f64(),
            messages as f64 / took.as_secs_f64()
        );
    }
}
