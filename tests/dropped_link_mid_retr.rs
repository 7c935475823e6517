//! The link drops in the middle of a RETR. The messages before it were
//! delivered and DELEd, but with no QUIT the server committed nothing; the
//! next poll must delete those without redelivering, and deliver the rest.

mod harness;
mod pop3_server;
mod smtp_receiver;

use harness::{within, Rig};
use pop3_server::Fault;
use popferry::ledger::MessageState;

const UIDS: [&str; 5] = ["m1", "m2", "m3", "m4", "m5"];

#[tokio::test]
async fn link_dropped_mid_retr_delivers_each_message_exactly_once() {
    within(async {
        let rig = Rig::start("").await;
        for uid in UIDS {
            rig.add(uid, "");
        }
        rig.pop3.set_fault(Some(Fault::DropMidRetr { nth: 3 }));

        let first = rig.poll().await;
        let err = first.expect_err("a dropped link must fail the poll");
        assert!(err.to_string().contains("RETR"), "{err}");
        assert_eq!(rig.pop3.faults_fired(), 1);
        rig.assert_delivered_once(&UIDS[..2]);
        assert_eq!(
            rig.smtp.offers().len(),
            2,
            "the partial message was not relayed"
        );
        assert_eq!(rig.pop3.uids(), UIDS, "no QUIT, so nothing was committed");
        assert_eq!(rig.pop3.commands("QUIT"), 0);
        for uid in &UIDS[..2] {
            let record = rig.record(uid).await.expect("recorded");
            assert_eq!(record.state, MessageState::Delivered, "{uid}");
        }
        assert!(rig.record("m3").await.is_none(), "m3 was never delivered");

        let second = rig.poll().await.expect("second poll");
        assert_eq!(second.delivered, 3, "{second:?}");
        assert_eq!(second.deleted, 5, "{second:?}");
        assert_eq!(rig.smtp.offers().len(), 5);
        rig.assert_delivered_once(&UIDS);
        assert!(rig.pop3.maildrop().is_empty());
        for uid in UIDS {
            let record = rig.record(uid).await.expect("recorded");
            assert_eq!(record.state, MessageState::Deleted, "{uid}");
        }
    })
    .await;
}

#[tokio::test]
async fn delivered_bytes_are_the_retrieved_message_after_the_trace_header() {
    within(async {
        let rig = Rig::start("").await;
        rig.add("m1", "");
        let original = rig.pop3.maildrop()[0].bytes.clone();

        rig.poll().await.expect("poll");
        let accepted = rig.smtp.accepted();
        assert_eq!(accepted.len(), 1);
        let data = &accepted[0].data;
        assert!(data.starts_with(b"Received: from 127.0.0.1 by popferry"));
        assert!(data.ends_with(&original), "dot-stuffing must round-trip");
        assert_eq!(accepted[0].from, "sender@example.net", "from Return-Path");
        assert_eq!(accepted[0].to, ["alice@example.org"]);
    })
    .await;
}
