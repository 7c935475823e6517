//! SIGKILL one of three `popferry run` instances sharing 300 accounts
//! while mail arrives: its accounts are polled again by the others within
//! the lease plus one interval (and a claim round), nothing is lost, and a
//! message arrives twice only if the killed instance had handed it to the
//! relay without recording it: at most `UNRECORDED` (16) per poll it had
//! running, which the README states as the fleet's duplicate window.
//!
//! Needs the private PostgreSQL (`scripts/lib/postgres.sh`): run with
//! `scripts/test.sh`.
#![cfg(feature = "real-servers")]

mod fleet;
mod harness;
mod pg;
mod pop3_server;
mod smtp_receiver;
mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use fleet::{user, Fleet, Plan};

const ACCOUNTS: usize = 300;
const LEASE: Duration = Duration::from_secs(3);
const INTERVAL: Duration = Duration::from_secs(2);
/// `[daemon] max_concurrent_polls`'s default: the most polls in flight.
const POLLS_IN_FLIGHT: usize = 16;
/// `popferry::poll::UNRECORDED`: deliveries a poll may have unrecorded.
const UNRECORDED: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instances_accounts_are_taken_over_within_the_lease() {
    let mut fleet = Fleet::new(
        "fleet_sigkill",
        Plan {
            accounts: ACCOUNTS,
            lease: LEASE,
            interval: INTERVAL,
            lock_maildrops: false,
            ..Plan::default()
        },
    )
    .await;
    for _ in 0..3 {
        fleet.spawn(None);
    }
    let claimed = fleet
        .wait_for(Duration::from_secs(30), || async {
            fleet.held().await.values().sum::<usize>() == ACCOUNTS
        })
        .await;
    assert!(
        claimed.is_some(),
        "{:?}\n{}",
        fleet.held().await,
        fleet.logs()
    );

    // Mail arrives all along; the kill lands in the middle of it.
    for i in 0..ACCOUNTS {
        fleet.add(i);
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let victim = fleet.owner_of(2).await.expect("instance 2 is registered");
    let rows = fleet
        .db
        .query("SELECT account FROM lease WHERE owner = $1", &[&victim])
        .await
        .expect("the victim's leases");
    let orphans: HashSet<String> = rows.iter().map(|row| row.get(0)).collect();
    assert!(!orphans.is_empty(), "instance 2 held nothing");
    fleet.instances[2].process.0.kill().expect("SIGKILL");
    let killed = Instant::now();
    fleet.instances[2].process.0.wait().expect("reap");
    // New mail for every orphaned account: its delivery shows that the
    // account is polled again.
    let fresh: Vec<String> = (0..ACCOUNTS)
        .filter(|i| orphans.contains(&user(*i)))
        .map(|i| fleet.add(i))
        .collect();
    for i in 0..ACCOUNTS {
        if !orphans.contains(&user(i)) {
            fleet.add(i);
        }
    }

    let taken_over = fleet
        .wait_for(Duration::from_secs(30), || async {
            let accepted = fleet.accepted();
            fresh.iter().all(|uid| accepted.contains_key(uid))
        })
        .await
        .unwrap_or_else(|| panic!("orphans not polled again\n{}", fleet.logs()));
    let since_kill = killed.elapsed();
    let bound = LEASE + INTERVAL + LEASE / 6 + Duration::from_secs(2);
    println!(
        "SIGKILL: {} orphaned accounts polled again and their new mail delivered within \
         {taken_over:?} (lease {LEASE:?} + interval {INTERVAL:?}; bound allowed {bound:?})",
        orphans.len()
    );
    assert!(taken_over <= bound, "{taken_over:?} > {bound:?}");
    // The last renewal was at most a third of the lease before the kill,
    // so no other instance may poll an orphan sooner than this.
    assert!(
        since_kill >= LEASE / 2,
        "an orphan was polled {since_kill:?} after the kill, while its lease still held"
    );

    fleet.wait_delivered(Duration::from_secs(60)).await;
    let twice = fleet.accepted().values().filter(|&&n| n > 1).count();
    let window = UNRECORDED * POLLS_IN_FLIGHT;
    println!("duplicates after the SIGKILL: {twice} (stated window: at most {window})");
    assert!(twice <= window, "{twice} duplicates > {window}");
    assert!(
        fleet.accepted().values().all(|&n| n <= 2),
        "a message arrived three times"
    );
}
