//! The relay refuses single messages, for now (451) or for good (554). A
//! refused message must never hold up the others, must stay on the server
//! unless it was quarantined, and a permanent refusal must not be retried
//! on every poll.

mod harness;
mod pop3_server;
mod smtp_receiver;

use harness::{within, Rig};
use popferry::ledger::MessageState;
use popferry::poll::PollOptions;
use smtp_receiver::{by_marker, Verdict};

/// m2 is deferred and m4 rejected by the default judge.
async fn mixed_mailbox(extra: &str) -> Rig {
    let rig = Rig::start(extra).await;
    rig.add("m1", "");
    rig.add("m2", "X-Test-Reject: 451");
    rig.add("m3", "");
    rig.add("m4", "X-Test-Reject: 554");
    rig.add("m5", "");
    rig
}

#[tokio::test]
async fn refused_messages_do_not_block_the_others() {
    within(async {
        let rig = mixed_mailbox("").await;

        let report = rig.poll().await.expect("poll");
        assert_eq!(
            (
                report.delivered,
                report.deferred,
                report.rejected,
                report.deleted
            ),
            (3, 1, 1, 3),
            "{report:?}"
        );
        rig.assert_delivered_once(&["m1", "m3", "m5"]);
        assert_eq!(rig.pop3.uids(), ["m2", "m4"], "refused messages stay");
        let rejected = rig.record("m4").await.expect("m4 recorded");
        assert_eq!(rejected.state, MessageState::Rejected);
        assert!(rejected.last_error.is_some_and(|e| e.contains("554")));
    })
    .await;
}

#[tokio::test]
async fn deferred_message_is_delivered_once_the_relay_accepts() {
    within(async {
        let rig = mixed_mailbox("").await;
        rig.poll().await.expect("first poll");
        assert_eq!(rig.offered_count("m2"), 1);
        assert_eq!(rig.accepted_count("m2"), 0);

        // The relay recovers from whatever made it say 451.
        rig.smtp.set_judge(|data| match by_marker(data) {
            Verdict::Defer => Verdict::Accept,
            other => other,
        });
        let report = rig.poll().await.expect("second poll");
        assert_eq!(report.delivered, 1, "{report:?}");
        rig.assert_delivered_once(&["m1", "m2", "m3", "m5"]);
        assert_eq!(rig.pop3.uids(), ["m4"]);
    })
    .await;
}

#[tokio::test]
async fn rejected_message_waits_for_its_retry_time_unless_forced() {
    within(async {
        let rig = mixed_mailbox("").await;
        rig.poll().await.expect("first poll");
        assert_eq!(rig.offered_count("m4"), 1);

        let report = rig.poll().await.expect("second poll");
        assert_eq!(report.rejected, 0, "{report:?}");
        assert_eq!(rig.offered_count("m4"), 1, "not retried before retry_at");
        assert!(rig.pop3.uids().contains(&"m4".to_owned()));

        let forced = PollOptions {
            retry_rejected: true,
            ..PollOptions::default()
        };
        let report = rig.poll_with(&forced).await.expect("forced poll");
        assert_eq!(report.rejected, 1, "{report:?}");
        assert_eq!(rig.offered_count("m4"), 2, "retry_rejected retries it");
        let record = rig.record("m4").await.expect("m4 recorded");
        assert_eq!((record.state, record.attempts), (MessageState::Rejected, 2));

        // Once the relay takes everything, m4 (and the deferred m2) are
        // delivered and deleted like any other message.
        rig.smtp.set_judge(|_| Verdict::Accept);
        let report = rig.poll_with(&forced).await.expect("accepted poll");
        assert_eq!(report.delivered, 2, "{report:?}");
        rig.assert_delivered_once(&["m1", "m2", "m3", "m4", "m5"]);
        assert!(rig.pop3.maildrop().is_empty());
    })
    .await;
}

#[tokio::test]
async fn rejected_message_is_quarantined_and_deleted_when_configured() {
    within(async {
        let rig = mixed_mailbox("quarantine_dir = \"quarantine\"").await;
        let original = rig.pop3.maildrop()[3].bytes.clone();

        let report = rig.poll().await.expect("poll");
        assert_eq!((report.rejected, report.deleted), (1, 4), "{report:?}");
        assert_eq!(rig.pop3.uids(), ["m2"], "quarantined m4 was deleted");

        let folder = rig.dir.path().join("quarantine").join("alice");
        let files: Vec<_> = std::fs::read_dir(&folder)
            .expect("quarantine folder")
            .map(|entry| entry.expect("entry").path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("m4-") && name.ends_with(".eml"), "{name}");

        let saved = std::fs::read(&files[0]).expect("read quarantined file");
        assert!(saved.starts_with(b"Received: from 127.0.0.1 by popferry"));
        assert!(saved.ends_with(&original), "the whole message was saved");
        let offered = rig.smtp.offers();
        let refused = offered
            .iter()
            .find(|offer| offer.verdict == Verdict::Reject)
            .expect("the refused offer");
        assert_eq!(saved, refused.data, "the file is what the relay refused");

        let record = rig.record("m4").await.expect("m4 recorded");
        assert_eq!(record.state, MessageState::Deleted, "QUIT confirmed it");
    })
    .await;
}
