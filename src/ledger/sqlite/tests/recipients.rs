use super::*;
use crate::ledger::recipients::REFUSAL_HISTORY;

fn recipient(uid: &str, address: &str, state: RecipientState, reply: Option<&str>) -> Change {
    Change::Recipient {
        uid: uid.into(),
        address: address.into(),
        state,
        reply: reply.map(str::to_owned),
    }
}

fn rows(ledger: &Ledger, table: &str) -> i64 {
    let conn = conn(ledger);
    let count = format!("SELECT count(*) FROM {table}");
    conn.query_row(&count, [], |row| row.get(0)).unwrap()
}

fn partial(uid: &str, size: u64) -> Change {
    Change::Partial {
        uid: uid.into(),
        size,
    }
}

#[tokio::test]
async fn a_partial_message_reads_back_with_its_recipients() {
    let ledger = Ledger::open_in_memory().unwrap();
    let changes = vec![
        partial("u1", 100),
        recipient("u1", "a@x", RecipientState::Delivered, None),
        recipient("u1", "b@x", RecipientState::Deferred, Some("450 busy")),
        recipient("u1", "c@x", RecipientState::Rejected, Some("550 unknown")),
    ];
    ledger.commit("alice", changes).await.unwrap();
    let record = ledger
        .messages("alice")
        .await
        .unwrap()
        .remove("u1")
        .unwrap();
    assert_eq!(record.state, MessageState::Partial);
    let mut seen: Vec<_> = (record.recipients.iter())
        .map(|r| (r.address.as_str(), r.state))
        .collect();
    seen.sort_by_key(|(address, _)| *address);
    assert_eq!(
        seen,
        [
            ("a@x", RecipientState::Delivered),
            ("b@x", RecipientState::Deferred),
            ("c@x", RecipientState::Rejected)
        ]
    );
    // Refusals are listed for status, with the relay's words.
    let refused = ledger.refused_recipients().await.unwrap();
    let refused: Vec<_> = refused
        .iter()
        .map(|r| (r.address.as_str(), r.reply.as_str()))
        .collect();
    assert_eq!(refused, [("b@x", "450 busy"), ("c@x", "550 unknown")]);
}

#[tokio::test]
async fn a_later_attempt_updates_a_recipient_and_settles_the_message() {
    let ledger = Ledger::open_in_memory().unwrap();
    let first = vec![
        partial("u1", 100),
        recipient("u1", "a@x", RecipientState::Delivered, None),
        recipient("u1", "b@x", RecipientState::Deferred, Some("450 busy")),
    ];
    ledger.commit("alice", first).await.unwrap();
    let second = vec![
        Change::Delivered {
            uid: "u1".into(),
            size: 100,
        },
        recipient("u1", "b@x", RecipientState::Delivered, None),
    ];
    ledger.commit("alice", second).await.unwrap();
    let record = ledger
        .messages("alice")
        .await
        .unwrap()
        .remove("u1")
        .unwrap();
    assert_eq!(record.state, MessageState::Delivered);
    assert!(
        record.recipients.is_empty(),
        "only partial messages load them"
    );
    assert!(ledger.refused_recipients().await.unwrap().is_empty());
}

#[tokio::test]
async fn recipients_go_with_their_message_but_refusals_stay_for_status() {
    let ledger = Ledger::open_in_memory().unwrap();
    for uid in ["u1", "u2"] {
        let changes = vec![
            partial(uid, 100),
            recipient(uid, "b@x", RecipientState::Rejected, Some("550 no")),
        ];
        ledger.commit("alice", changes).await.unwrap();
    }
    // A new message under a reused uid starts without the old recipients.
    ledger.record_delivered("alice", "u1", 200).await.unwrap();
    let record = ledger
        .messages("alice")
        .await
        .unwrap()
        .remove("u2")
        .unwrap();
    assert_eq!(record.recipients.len(), 1);
    let listed: HashSet<String> = ["u1".to_owned()].into();
    ledger.reconcile("alice", listed).await.unwrap();
    assert_eq!(
        rows(&ledger, "recipient"),
        0,
        "forgetting a message forgets its recipients"
    );
    // What status shows outlives both.
    let refused = ledger.refused_recipients().await.unwrap();
    let uids: Vec<&str> = refused.iter().map(|r| r.uid.as_str()).collect();
    assert_eq!(uids, ["u1", "u2"]);
}

#[tokio::test]
async fn a_recipient_refused_again_shows_once_and_the_history_is_bounded() {
    let ledger = Ledger::open_in_memory().unwrap();
    ledger
        .commit("alice", vec![partial("u1", 100)])
        .await
        .unwrap();
    for n in 0..1005 {
        let reply = format!("450 busy {n}");
        let change = recipient("u1", "b@x", RecipientState::Deferred, Some(&reply));
        ledger.commit("alice", vec![change]).await.unwrap();
    }
    let refused = ledger.refused_recipients().await.unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].reply, "450 busy 1004", "the latest");
    assert_eq!(rows(&ledger, "refusal"), REFUSAL_HISTORY);
}

#[tokio::test]
async fn a_recipient_row_needs_its_message_row() {
    let ledger = Ledger::open_in_memory().unwrap();
    let orphan = vec![recipient("u9", "a@x", RecipientState::Delivered, None)];
    assert!(ledger.commit("alice", orphan).await.is_err());
}
