//! Three `popferry run` instances on one PostgreSQL ledger share 300
//! accounts: each holds its fair share of the leases, no mailbox ever has
//! two sessions at once, and every message arrives exactly once. A fourth
//! instance that joins takes a share without a restart of the others; one
//! that gets SIGTERM gives its leases back at once, so the others take
//! them over without waiting for them to run out.
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

use std::time::{Duration, Instant};

use fleet::{Fleet, Plan};

const ACCOUNTS: usize = 300;
const LEASE: Duration = Duration::from_secs(3);

fn plan() -> Plan {
    Plan {
        accounts: ACCOUNTS,
        lease: LEASE,
        interval: Duration::from_secs(2),
        lock_maildrops: false,
        ..Plan::default()
    }
}

/// Waits until every account is held, each of `instances` holding
/// `share`; panics with the lease table and the logs otherwise.
async fn wait_for_shares(fleet: &Fleet, instances: usize, share: usize, limit: Duration) {
    let balanced = fleet
        .wait_for(limit, || async {
            let held = fleet.held().await;
            held.len() == instances && held.values().all(|&n| n == share)
        })
        .await;
    if balanced.is_none() {
        panic!(
            "no {instances} shares of {share} within {limit:?}: {:?}\n{}",
            fleet.held().await,
            fleet.logs()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_the_accounts_and_each_message_arrives_once() {
    let mut fleet = Fleet::new("fleet_share", plan()).await;
    for _ in 0..3 {
        fleet.spawn(None);
    }
    wait_for_shares(&fleet, 3, ACCOUNTS / 3, Duration::from_secs(30)).await;
    for round in 0..2 {
        for i in 0..ACCOUNTS {
            fleet.add(i);
        }
        if round == 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    fleet.wait_delivered_once(Duration::from_secs(60)).await;
    assert_eq!(fleet.pop3.most_sessions_at_once(), 1);
    assert_eq!(fleet.pop3.overlapping_logins(), 0);

    // A fourth instance joins: the others give it a share as their polls
    // end, and mail arriving meanwhile still comes once.
    let joined = Instant::now();
    fleet.spawn(None);
    for i in 0..ACCOUNTS {
        fleet.add(i);
    }
    wait_for_shares(&fleet, 4, ACCOUNTS / 4, Duration::from_secs(30)).await;
    println!(
        "a fourth instance had its share of 75 after {:?}",
        joined.elapsed()
    );
    fleet.wait_delivered_once(Duration::from_secs(60)).await;
    assert_eq!(fleet.pop3.most_sessions_at_once(), 1, "during the handover");
    assert_eq!(fleet.pop3.overlapping_logins(), 0, "during the handover");

    // SIGTERM: the leases come back at once, well inside a lease time.
    let leaving = fleet.owner_of(0).await.expect("instance 0 is registered");
    let stopped = Instant::now();
    fleet.instances[0].process.signal("TERM");
    let taken = fleet
        .wait_for(Duration::from_secs(20), || async {
            let held = fleet.held().await;
            !held.contains_key(&leaving) && held.values().sum::<usize>() == ACCOUNTS
        })
        .await;
    let Some(taken) = taken else {
        panic!("not taken over: {:?}\n{}", fleet.held().await, fleet.logs());
    };
    println!("after SIGTERM, the others held every account after {taken:?}");
    assert!(
        taken < LEASE,
        "SIGTERM should give the leases back, not let them run out ({taken:?})"
    );
    let status = fleet.instances[0].process.0.wait().expect("wait");
    assert!(status.success(), "{status}\n{}", fleet.logs());
    assert!(
        fleet.instances[0].log().contains("gave back every lease"),
        "{}",
        fleet.instances[0].log()
    );
    println!("stopping took {:?}", stopped.elapsed());
    for i in 0..ACCOUNTS {
        fleet.add(i);
    }
    fleet.wait_delivered_once(Duration::from_secs(60)).await;
}
