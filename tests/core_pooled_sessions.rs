//! On a server that offers CORE (or its older name REFR) and not
//! SLEE-WAKE, `popferry run` ends a poll with CORE, which commits the
//! deletions and reloads the listing, and keeps the session logged in for
//! the account's next poll, which starts with CORE again.

mod harness;
mod pop3_server;
mod smtp_receiver;

use harness::{within, Rig};
use pop3_server::{Extensions, Fault, Options};
use popferry::ledger::MessageState;

fn core(refr: bool) -> Options {
    Options {
        extensions: Extensions {
            core: !refr,
            refr,
            uid_param: true,
            pipelining: true,
            ..Extensions::default()
        },
        ..Options::default()
    }
}

#[tokio::test]
async fn fifteen_polls_use_one_connection_and_one_login() {
    within(async {
        let rig = Rig::with_server(core(false), "deli = false").await;
        rig.add("m1", "");
        let daemon = rig.daemon();
        for round in 1..=15 {
            if round == 7 {
                rig.add("m7", "");
            }
            let report = rig.pooled_poll(&daemon).await.expect("poll");
            let expected = u64::from(round == 1 || round == 7);
            assert_eq!(report.delivered, expected, "round {round}");
        }
        assert_eq!((rig.pop3.accepts(), rig.pop3.logins()), (1, 1));
        assert_eq!(
            rig.pop3.commands("CORE"),
            14 + 2,
            "one to start each poll after the first, one to commit each DELE"
        );
        assert_eq!(
            rig.pop3.commands("UIDL"),
            2,
            "[ACTIVITY/NONE] after a settled poll skips the listing"
        );
        assert_eq!(rig.pop3.commands("QUIT"), 0);
        assert!(rig.pop3.maildrop().is_empty());
        rig.assert_delivered_once(&["m1", "m7"]);
    })
    .await;
}

#[tokio::test]
async fn core_ok_commits_the_deletions() {
    within(async {
        let rig = Rig::with_server(core(false), "deli = false").await;
        rig.add("m1", "");
        let daemon = rig.daemon();
        rig.pooled_poll(&daemon).await.expect("poll");
        assert_eq!(rig.pop3.commands("DELE"), 1);
        assert!(rig.pop3.maildrop().is_empty(), "CORE committed the DELE");
        let record = rig.record("m1").await.expect("recorded");
        assert_eq!(
            record.state,
            MessageState::Deleted,
            "the ledger took CORE's +OK"
        );
        assert_eq!(rig.pop3.open_connections(), 1, "kept, logged in");
    })
    .await;
}

#[tokio::test]
async fn refr_the_older_name_is_understood() {
    within(async {
        let rig = Rig::with_server(core(true), "deli = false").await;
        rig.add("m1", "");
        let daemon = rig.daemon();
        for _ in 0..3 {
            rig.pooled_poll(&daemon).await.expect("poll");
        }
        assert_eq!(rig.pop3.accepts(), 1);
        assert_eq!(rig.pop3.commands("REFR"), 3);
        assert_eq!(rig.pop3.commands("CORE"), 0);
        assert!(rig.pop3.maildrop().is_empty());
    })
    .await;
}

/// An `-ERR` to the CORE that ends a poll: QUIT instead, whose `+OK`
/// commits; the next poll connects afresh.
#[tokio::test]
async fn a_refused_core_drops_the_connection_and_loses_nothing() {
    within(async {
        let rig = Rig::with_server(core(false), "deli = false").await;
        for uid in ["m1", "m2"] {
            rig.add(uid, "");
        }
        rig.pop3.set_fault(Some(Fault::RefuseCore));
        let daemon = rig.daemon();
        let report = rig.pooled_poll(&daemon).await.expect("QUIT after CORE");
        assert_eq!((report.delivered, report.deleted), (2, 2));
        assert_eq!(rig.pop3.faults_fired(), 1);
        assert_eq!(rig.pop3.commands("QUIT"), 1);
        assert!(rig.pop3.maildrop().is_empty(), "QUIT committed");
        rig.add("m3", "");
        let report = rig.pooled_poll(&daemon).await.expect("next poll");
        assert_eq!(report.delivered, 1);
        assert_eq!((rig.pop3.accepts(), rig.pop3.logins()), (2, 2));
        rig.assert_delivered_once(&["m1", "m2", "m3"]);
    })
    .await;
}

/// An `-ERR` to the CORE that starts a poll: QUIT, log in afresh, poll.
#[tokio::test]
async fn a_refused_core_on_a_kept_session_means_a_fresh_login() {
    within(async {
        let rig = Rig::with_server(core(false), "deli = false").await;
        let daemon = rig.daemon();
        rig.pooled_poll(&daemon).await.expect("first poll");
        rig.pop3.set_fault(Some(Fault::RefuseCore));
        rig.add("m1", "");
        let report = rig.pooled_poll(&daemon).await.expect("poll after refusal");
        assert_eq!(rig.pop3.faults_fired(), 1);
        assert_eq!(report.delivered, 1);
        assert_eq!((rig.pop3.accepts(), rig.pop3.logins()), (2, 2));
        assert_eq!(
            rig.pop3.commands("QUIT"),
            1,
            "the refused session logged out"
        );
        assert!(rig.pop3.maildrop().is_empty());
        rig.assert_delivered_once(&["m1"]);
    })
    .await;
}

/// A CORE whose reply never comes leaves the deletions unconfirmed: the
/// next poll, on a new connection, deletes without delivering again.
#[tokio::test]
async fn a_lost_core_reply_redelivers_nothing() {
    within(async {
        let rig = Rig::with_server(core(false), "deli = false").await;
        rig.add("m1", "");
        rig.pop3.set_fault(Some(Fault::CloseAfter { verb: "CORE" }));
        let daemon = rig.daemon();
        assert!(rig.pooled_poll(&daemon).await.is_err());
        assert_eq!(rig.pop3.uids(), ["m1"], "nothing was committed");
        let record = rig.record("m1").await.expect("recorded");
        assert_eq!(record.state, MessageState::Delivered);
        let report = rig.pooled_poll(&daemon).await.expect("next poll");
        assert_eq!((report.delivered, report.deleted), (0, 1));
        assert!(rig.pop3.maildrop().is_empty());
        assert_eq!(rig.offered_count("m1"), 1);
    })
    .await;
}
