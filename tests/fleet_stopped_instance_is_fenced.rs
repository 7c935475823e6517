//! SIGSTOP one of three `popferry run` instances for twice its lease while
//! mail arrives, then SIGCONT: the others take its accounts over, and the
//! woken instance sends no DELE and no QUIT on the strength of its old
//! leases (the stopped instance reaches the server through a proxy that
//! stamps each command, so its traffic alone is seen). It only polls again
//! once it has claimed leases anew, under new epochs. Nothing is lost, and
//! duplicates stay within the stated window.
//!
//! The server locks maildrops and logs out silent sessions, as RFC 1939
//! lets a server do, so the frozen instance's open sessions end the way a
//! real server would end them.
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

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fleet::{Fleet, Plan};
use support::link_proxy::LinkProxy;

const ACCOUNTS: usize = 60;
const LEASE: Duration = Duration::from_secs(3);
/// `UNRECORDED` × `max_concurrent_polls`: the stated duplicate window.
const WINDOW: usize = 16 * 16;

fn unix(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_instance_woken_past_its_lease_deletes_nothing() {
    let mut fleet = Fleet::new(
        "fleet_sigstop",
        Plan {
            accounts: ACCOUNTS,
            lease: LEASE,
            interval: Duration::from_secs(1),
            lock_maildrops: true,
            ..Plan::default()
        },
    )
    .await;
    // Slow deliveries keep polls in flight, so the stop lands inside some.
    fleet.smtp.set_delay(Duration::from_millis(150));
    let port = fleet.pop3.port();
    // The proxy runs its own runtime, which cannot be started on this one.
    let proxy = (tokio::task::spawn_blocking(move || LinkProxy::start(port, None)).await)
        .expect("start the proxy");
    fleet.spawn(None);
    fleet.spawn(None);
    let stopped = fleet.spawn(Some(proxy.port()));
    let balanced = fleet
        .wait_for(Duration::from_secs(30), || async {
            let held = fleet.held().await;
            held.len() == 3 && held.values().all(|&n| n == ACCOUNTS / 3)
        })
        .await;
    assert!(
        balanced.is_some(),
        "{:?}\n{}",
        fleet.held().await,
        fleet.logs()
    );
    let victim = fleet.owner_of(stopped).await.expect("registered");
    for i in 0..ACCOUNTS {
        fleet.add(i);
    }
    tokio::time::sleep(Duration::from_millis(400)).await;

    fleet.instances[stopped].process.signal("STOP");
    let stopped_at = SystemTime::now();
    for round in 0..4 {
        for i in (round % 2..ACCOUNTS).step_by(2) {
            fleet.add(i);
        }
        tokio::time::sleep(LEASE / 2).await;
    }
    let held = fleet.held().await;
    assert!(
        !held.contains_key(&victim),
        "the stopped instance's leases outlived it: {held:?}"
    );
    // The others may be a claim round from holding every account (one
    // gives back a surplus as the other claims).
    let taken_over = fleet
        .wait_for(LEASE, || async {
            fleet.held().await.values().sum::<usize>() == ACCOUNTS
        })
        .await;
    assert!(taken_over.is_some(), "{:?}", fleet.held().await);

    fleet.instances[stopped].process.signal("CONT");
    let reclaimed = fleet
        .wait_for(Duration::from_secs(20), || async {
            fleet.held().await.contains_key(&victim)
        })
        .await;
    assert!(reclaimed.is_some(), "never claimed again\n{}", fleet.logs());
    let row = fleet
        .db
        .query_one(
            "SELECT extract(epoch FROM min(claimed_at))::float8 FROM lease WHERE owner = $1",
            &[&victim],
        )
        .await
        .expect("the new claims");
    let first_claim: f64 = row.get(0);
    assert!(first_claim > unix(stopped_at), "claimed under new epochs");

    // Commands still on their way when the process froze may be stamped a
    // moment after the STOP.
    let grace = unix(stopped_at) + 0.05;
    for verb in ["DELE", "QUIT"] {
        let stale: Vec<f64> = (proxy.sent_at(verb).into_iter())
            .map(unix)
            .filter(|&at| at > grace && at < first_claim)
            .collect();
        assert!(
            stale.is_empty(),
            "{} {verb}(s) sent on lapsed leases, {:.2} s to {:.2} s after the STOP\n{}",
            stale.len(),
            stale.first().map_or(0.0, |at| at - unix(stopped_at)),
            stale.last().map_or(0.0, |at| at - unix(stopped_at)),
            fleet.logs()
        );
    }
    let log = fleet.instances[stopped].log();
    assert!(
        log.contains("leases ran out") || log.contains("leases lost"),
        "the woken instance should say it lost its leases:\n{log}"
    );

    fleet.wait_delivered(Duration::from_secs(60)).await;
    let twice = fleet.accepted().values().filter(|&&n| n > 1).count();
    println!(
        "SIGSTOP for {:?}: {twice} duplicates (stated window: at most {WINDOW}); first new \
         claim {:.2} s after the STOP",
        LEASE * 2,
        first_claim - unix(stopped_at)
    );
    assert!(twice <= WINDOW, "{twice} duplicates");
}
