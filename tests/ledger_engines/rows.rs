//! What the ledger records of messages, recipients and imports.

use std::collections::HashSet;
use std::path::Path;

use popferry::ledger::{Change, MessageState, PollOutcome, RecipientState};

use crate::{report, Opened};

pub async fn rows_states_and_attempts(opened: &Opened) {
    let ledger = &opened.ledger;
    ledger.record_delivered("alice", "u1", 1234).await.unwrap();
    let record = &ledger.messages("alice").await.unwrap()["u1"];
    assert_eq!(
        (record.size, record.state, record.attempts),
        (Some(1234), MessageState::Delivered, 1)
    );
    assert!(ledger.messages("bob").await.unwrap().is_empty());

    for (expected, retry_at) in [(1, 100), (2, 200), (3, 300)] {
        let attempts = ledger
            .record_rejected("alice", "r1", 50, "451 try later", retry_at)
            .await
            .unwrap();
        assert_eq!(attempts, expected);
    }
    let record = &ledger.messages("alice").await.unwrap()["r1"];
    assert_eq!(record.state, MessageState::Rejected);
    assert_eq!(record.retry_at, Some(300));
    assert_eq!(record.last_error.as_deref(), Some("451 try later"));
    ledger.record_delivered("alice", "r1", 50).await.unwrap();
    let record = &ledger.messages("alice").await.unwrap()["r1"];
    assert_eq!(
        (record.state, record.attempts),
        (MessageState::Delivered, 4)
    );
    assert_eq!(
        (record.retry_at, record.last_error.as_deref()),
        (None, None)
    );

    // A reused uid with another size is a new message.
    ledger
        .mark_deleted("alice", &["u1".to_owned()])
        .await
        .unwrap();
    let attempts = ledger
        .record_rejected("alice", "u1", 999, "452 mailbox full", 10)
        .await
        .unwrap();
    assert_eq!(attempts, 1);

    let quarantine = Path::new("q/kept.eml");
    ledger
        .record_quarantined("alice", "kept", 2, "554 spam", quarantine)
        .await
        .unwrap();
    ledger.record_delivered("bob", "sent", 1).await.unwrap();
    let uids = ["r1", "kept", "u1", "unknown"].map(String::from);
    ledger.mark_deleted("alice", &uids).await.unwrap();
    let alice = ledger.messages("alice").await.unwrap();
    assert_eq!(alice.len(), 3, "no row is invented for an unknown uid");
    assert_eq!(alice["r1"].state, MessageState::Deleted);
    assert_eq!(alice["kept"].state, MessageState::Deleted);
    assert_eq!(
        alice["u1"].state,
        MessageState::Rejected,
        "not safe to delete"
    );
    let bob = ledger.messages("bob").await.unwrap();
    assert_eq!(bob["sent"].state, MessageState::Delivered);
}

pub fn recipient(uid: &str, address: &str, state: RecipientState, reply: Option<&str>) -> Change {
    Change::Recipient {
        uid: uid.into(),
        address: address.into(),
        state,
        reply: reply.map(str::to_owned),
    }
}

pub async fn recipients_and_refusals(opened: &Opened) {
    let ledger = &opened.ledger;
    let partial = Change::Partial {
        uid: "u1".into(),
        size: 100,
    };
    let changes = vec![
        partial.clone(),
        recipient("u1", "a@example.org", RecipientState::Delivered, None),
        recipient(
            "u1",
            "b@example.org",
            RecipientState::Deferred,
            Some("451 later"),
        ),
        recipient(
            "u1",
            "c@example.org",
            RecipientState::Rejected,
            Some("550 no"),
        ),
    ];
    ledger.commit("alice", changes).await.unwrap();
    let record = &ledger.messages("alice").await.unwrap()["u1"];
    assert_eq!(record.state, MessageState::Partial);
    let mut seen: Vec<(String, RecipientState, Option<String>)> = record
        .recipients
        .iter()
        .map(|r| (r.address.clone(), r.state, r.reply.clone()))
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            ("a@example.org".into(), RecipientState::Delivered, None),
            (
                "b@example.org".into(),
                RecipientState::Deferred,
                Some("451 later".into())
            ),
            (
                "c@example.org".into(),
                RecipientState::Rejected,
                Some("550 no".into())
            ),
        ]
    );
    let refused: Vec<String> = (ledger.refused_recipients().await.unwrap().into_iter())
        .map(|r| r.address)
        .collect();
    assert_eq!(refused, ["b@example.org", "c@example.org"]);

    // b gets it on the next try: its refusal goes, the message settles.
    let settle = vec![
        Change::Delivered {
            uid: "u1".into(),
            size: 100,
        },
        recipient("u1", "b@example.org", RecipientState::Delivered, None),
    ];
    ledger.commit("alice", settle).await.unwrap();
    let record = &ledger.messages("alice").await.unwrap()["u1"];
    assert_eq!(
        (record.state, record.attempts),
        (MessageState::Delivered, 2)
    );
    assert!(
        record.recipients.is_empty(),
        "only waiting messages carry them"
    );
    let refused = ledger.refused_recipients().await.unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].address, "c@example.org");
    assert_eq!(refused[0].reply, "550 no");

    // The server forgets the message: its rows go, the refusal stays.
    let gone = ledger.reconcile("alice", HashSet::new()).await.unwrap();
    assert_eq!(gone.pruned, 1);
    assert!(ledger.messages("alice").await.unwrap().is_empty());
    assert_eq!(ledger.refused_recipients().await.unwrap().len(), 1);
    // A recipient row needs its message row.
    let orphan = vec![recipient(
        "gone",
        "a@example.org",
        RecipientState::Delivered,
        None,
    )];
    assert!(ledger.commit("alice", orphan).await.is_err());
}

pub async fn reconcile_keeps_exactly_the_listed_uids(opened: &Opened) {
    let ledger = &opened.ledger;
    let uids: Vec<String> = (0..600).map(|n| format!("uid-{n}")).collect();
    let changes = (uids.iter())
        .map(|uid| Change::Delivered {
            uid: uid.clone(),
            size: 1,
        })
        .collect();
    ledger.commit("alice", changes).await.unwrap();
    ledger.record_delivered("bob", "uid-1", 1).await.unwrap();
    let mut listed: HashSet<String> = uids.iter().step_by(2).cloned().collect();
    listed.insert("new".to_owned());

    let found = ledger.reconcile("alice", listed.clone()).await.unwrap();
    assert_eq!(found.pruned, 300);
    let returned: HashSet<String> = found.known.into_keys().collect();
    let kept: HashSet<String> = ledger
        .messages("alice")
        .await
        .unwrap()
        .into_keys()
        .collect();
    listed.remove("new");
    assert_eq!(kept, listed);
    assert_eq!(
        returned, listed,
        "the records of the listed uids, no others"
    );
    assert_eq!(ledger.messages("bob").await.unwrap().len(), 1);
    assert_eq!(ledger.reconcile("alice", listed).await.unwrap().pruned, 0);
}

pub async fn imported_uids_and_learned_sizes(opened: &Opened) {
    let ledger = &opened.ledger;
    assert!(!ledger.knows_account("alice").await.unwrap());
    ledger.record_delivered("alice", "had", 7).await.unwrap();
    let uids = vec![
        ("had".to_owned(), None),
        ("i1".to_owned(), None),
        ("i2".to_owned(), Some(40)),
        ("i1".to_owned(), None),
    ];
    let adopted = ledger
        .record_delivered_elsewhere("alice", uids)
        .await
        .unwrap();
    assert_eq!((adopted.added, adopted.known), (2, 1));
    let records = ledger.messages("alice").await.unwrap();
    assert_eq!(records["had"].size, Some(7), "a known row is not changed");
    assert_eq!((records["i1"].size, records["i1"].attempts), (None, 0));
    assert_eq!(records["i2"].size, Some(40));
    assert!(
        records["i1"].is_for(123),
        "an unknown size fits any listing"
    );

    let sizes = vec![("i1".to_owned(), 123), ("i2".to_owned(), 99)];
    ledger.learn_sizes("alice", sizes).await.unwrap();
    let records = ledger.messages("alice").await.unwrap();
    assert_eq!(records["i1"].size, Some(123));
    assert_eq!(records["i2"].size, Some(40), "a known size is kept");
    assert!(ledger.knows_account("alice").await.unwrap());

    // Only a good poll that listed mail makes an account known.
    let id = ledger.start_poll("bob").await.unwrap();
    let failed = report(PollOutcome::Failed);
    ledger.finish_poll(id, &failed).await.unwrap();
    assert!(!ledger.knows_account("bob").await.unwrap());
    let id = ledger.start_poll("bob").await.unwrap();
    ledger
        .finish_poll(id, &report(PollOutcome::Ok))
        .await
        .unwrap();
    assert!(ledger.knows_account("bob").await.unwrap());
}
