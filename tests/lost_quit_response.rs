//! The QUIT exchange goes wrong after every message was delivered and
//! DELEd. Whether or not the server committed the deletions, the next poll
//! must not deliver anything again.

mod harness;
mod pop3_server;
mod smtp_receiver;

use harness::{within, Rig};
use pop3_server::Fault;
use popferry::ledger::MessageState;

const UIDS: [&str; 3] = ["m1", "m2", "m3"];

async fn rig_with_messages() -> Rig {
    let rig = Rig::start("").await;
    for uid in UIDS {
        rig.add(uid, "");
    }
    rig
}

#[tokio::test]
async fn committed_deletions_with_lost_quit_reply_are_not_redelivered() {
    within(async {
        let rig = rig_with_messages().await;
        rig.pop3.set_fault(Some(Fault::LostQuitReply));

        let first = rig.poll().await;
        assert!(
            first.is_err(),
            "a lost QUIT reply must fail the poll: {first:?}"
        );
        assert_eq!(rig.pop3.faults_fired(), 1);
        assert!(rig.pop3.maildrop().is_empty(), "the server committed");
        rig.assert_delivered_once(&UIDS);
        // Without the +OK the deletions are unconfirmed: still Delivered.
        for uid in UIDS {
            let record = rig.record(uid).await.expect("recorded");
            assert_eq!(record.state, MessageState::Delivered, "{uid}");
        }

        let second = rig.poll().await.expect("second poll");
        assert_eq!((second.listed, second.delivered), (0, 0));
        assert_eq!(rig.smtp.offers().len(), UIDS.len(), "nothing offered again");
        rig.assert_delivered_once(&UIDS);
        // The server no longer lists them, so the ledger forgets them.
        let records = rig
            .ledger
            .messages(&rig.account.name)
            .await
            .expect("ledger");
        assert!(records.is_empty(), "{records:?}");
    })
    .await;
}

#[tokio::test]
async fn uncommitted_deletions_after_a_closed_quit_are_deleted_without_redelivery() {
    within(async {
        let rig = rig_with_messages().await;
        rig.pop3.set_fault(Some(Fault::CloseAfter { verb: "QUIT" }));

        let first = rig.poll().await;
        assert!(
            first.is_err(),
            "a closed QUIT must fail the poll: {first:?}"
        );
        assert_eq!(rig.pop3.faults_fired(), 1);
        assert_eq!(rig.pop3.uids(), UIDS, "nothing committed without QUIT");
        rig.assert_delivered_once(&UIDS);

        let retrs_before = rig.pop3.commands("RETR");
        let second = rig.poll().await.expect("second poll");
        assert_eq!(second.delivered, 0);
        assert_eq!(second.deleted, UIDS.len() as u64);
        assert_eq!(rig.pop3.commands("RETR"), retrs_before, "no second RETR");
        assert!(rig.pop3.maildrop().is_empty());
        rig.assert_delivered_once(&UIDS);
        for uid in UIDS {
            let record = rig.record(uid).await.expect("recorded");
            assert_eq!(record.state, MessageState::Deleted, "{uid}");
        }
    })
    .await;
}
