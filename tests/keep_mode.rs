//! Leaving mail on the server: with `keep = true` the ledger alone keeps
//! each message from being delivered twice. Also a server that reuses a
//! unique-id for a new message after the old one was deleted.

mod harness;
mod pop3_server;
mod smtp_receiver;

use harness::{message, within, Rig};
use popferry::ledger::MessageState;

const UIDS: [&str; 3] = ["m1", "m2", "m3"];

#[tokio::test]
async fn keep_mode_delivers_each_message_once_and_deletes_nothing() {
    within(async {
        let rig = Rig::start("keep = true").await;
        for uid in UIDS {
            rig.add(uid, "");
        }
        let before = rig.pop3.maildrop();

        for round in 1..=3 {
            let report = rig.poll().await.expect("poll");
            let expected = if round == 1 { 3 } else { 0 };
            assert_eq!(report.delivered, expected, "round {round}: {report:?}");
            assert_eq!(report.deleted, 0, "round {round}");
        }
        rig.assert_delivered_once(&UIDS);
        assert_eq!(rig.smtp.offers().len(), 3);
        assert_eq!(rig.pop3.commands("DELE"), 0);
        assert_eq!(rig.pop3.commands("RETR"), 3, "later polls do not fetch");
        assert_eq!(rig.pop3.maildrop(), before, "maildrop untouched");
        for uid in UIDS {
            let record = rig.record(uid).await.expect("recorded");
            assert_eq!(record.state, MessageState::Delivered, "{uid}");
        }
    })
    .await;
}

#[tokio::test]
async fn reused_uid_with_a_different_size_is_a_new_message() {
    within(async {
        let rig = Rig::start("").await;
        rig.add("u1", "");
        rig.poll().await.expect("first poll");
        assert!(rig.pop3.maildrop().is_empty());
        assert_eq!(
            rig.record("u1").await.expect("recorded").state,
            MessageState::Deleted
        );

        // Same unique-id, different message and size, with no poll in
        // between that could have pruned the ledger row.
        let newer = message("u1", "X-Newer: yes");
        assert_ne!(newer.len(), message("u1", "").len());
        rig.pop3.add("u1", &newer);

        let report = rig.poll().await.expect("second poll");
        assert_eq!((report.delivered, report.deleted), (1, 1), "{report:?}");
        let accepted = rig.smtp.accepted();
        assert_eq!(accepted.len(), 2);
        assert!(
            accepted[1].data.ends_with(&newer),
            "the newer message was sent"
        );
        assert!(rig.pop3.maildrop().is_empty());
    })
    .await;
}
