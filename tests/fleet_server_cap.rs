//! `[daemon] max_connections_per_server` caps the whole fleet: three
//! `popferry run` instances sharing 60 accounts on one server, with a cap
//! of 4, never have more than 4 connections open to it together, though
//! each alone would take 4; and no instance is starved of slots, even
//! when the server offers SLEE-WAKE and each instance would keep its
//! sessions parked (holding their slots) for as long as it polls.
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

use std::time::Duration;

use fleet::{Fleet, Plan};

const ACCOUNTS: usize = 60;
const CAP: usize = 4;

async fn cap_holds_for_the_fleet(test: &str, pooled: bool) {
    let mut fleet = Fleet::new(
        test,
        Plan {
            accounts: ACCOUNTS,
            per_server: CAP,
            pooled,
            ..Plan::default()
        },
    )
    .await;
    for _ in 0..3 {
        fleet.spawn(None);
    }
    // Three rounds of mail, each to every account: every instance must
    // get slots again and again, not once.
    for _ in 0..3 {
        for i in 0..ACCOUNTS {
            fleet.add(i);
        }
        fleet.wait_delivered_once(Duration::from_secs(60)).await;
    }
    let held = fleet.held().await;
    assert_eq!(held.len(), 3, "every instance holds accounts: {held:?}");
    let most = fleet.pop3.most_connections_at_once();
    assert!(
        most <= CAP,
        "{most} connections were open at once, over the fleet's cap of {CAP}\n{}",
        fleet.logs()
    );
    assert!(most > 1, "the instances polled one at a time: {most}");
    assert_eq!(fleet.pop3.most_sessions_at_once(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_with_fresh_logins_stay_under_one_cap() {
    cap_holds_for_the_fleet("fleet_cap_fresh", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_parking_sessions_stay_under_one_cap_and_share_it() {
    cap_holds_for_the_fleet("fleet_cap_pooled", true).await;
}
