use super::*;

fn uids(list: &[&str]) -> Vec<(String, Option<u64>)> {
    list.iter().map(|uid| ((*uid).to_owned(), None)).collect()
}

#[tokio::test]
async fn imported_uids_are_delivered_without_a_size_and_counted_once() {
    let ledger = Ledger::open_in_memory().unwrap();
    let first = ledger
        .record_delivered_elsewhere("alice", uids(&["u1", "u2", "u2", "u3"]))
        .await
        .unwrap();
    assert_eq!(first, Adopted { added: 3, known: 0 });
    let again = ledger
        .record_delivered_elsewhere("alice", uids(&["u3", "u4"]))
        .await
        .unwrap();
    assert_eq!(again, Adopted { added: 1, known: 1 });
    let messages = ledger.messages("alice").await.unwrap();
    assert_eq!(messages.len(), 4);
    let u1 = &messages["u1"];
    assert_eq!(
        (u1.size, u1.state, u1.attempts),
        (None, MessageState::Delivered, 0)
    );
    assert!(u1.is_for(1) && u1.is_for(5000));
    assert!(ledger.messages("bob").await.unwrap().is_empty());
}

#[tokio::test]
async fn adopted_uids_keep_their_listed_size() {
    let ledger = Ledger::open_in_memory().unwrap();
    let listed = vec![("u1".to_owned(), Some(120))];
    ledger
        .record_delivered_elsewhere("alice", listed)
        .await
        .unwrap();
    let record = &ledger.messages("alice").await.unwrap()["u1"];
    assert_eq!(record.size, Some(120));
    assert!(record.is_for(120) && !record.is_for(121));
}

#[tokio::test]
async fn importing_never_changes_a_row_already_there() {
    let ledger = Ledger::open_in_memory().unwrap();
    ledger
        .record_rejected("alice", "u1", 50, "451 later", 100)
        .await
        .unwrap();
    let adopted = ledger
        .record_delivered_elsewhere("alice", uids(&["u1"]))
        .await
        .unwrap();
    assert_eq!(adopted, Adopted { added: 0, known: 1 });
    let record = &ledger.messages("alice").await.unwrap()["u1"];
    assert_eq!(
        (record.size, record.state),
        (Some(50), MessageState::Rejected)
    );
}

#[tokio::test]
async fn the_first_listing_teaches_an_imported_uid_its_size_once() {
    let ledger = Ledger::open_in_memory().unwrap();
    ledger
        .record_delivered_elsewhere("alice", uids(&["u1"]))
        .await
        .unwrap();
    ledger.record_delivered("alice", "u2", 7).await.unwrap();
    let sizes = |n| vec![("u1".to_owned(), n), ("u2".to_owned(), n)];
    ledger.learn_sizes("alice", sizes(300)).await.unwrap();
    ledger.learn_sizes("alice", sizes(400)).await.unwrap();
    let messages = ledger.messages("alice").await.unwrap();
    assert_eq!(messages["u1"].size, Some(300));
    assert_eq!(messages["u2"].size, Some(7), "a known size is not touched");
}

#[tokio::test]
async fn a_delivery_under_an_imported_uid_records_its_size() {
    let ledger = Ledger::open_in_memory().unwrap();
    ledger
        .record_delivered_elsewhere("alice", uids(&["u1"]))
        .await
        .unwrap();
    ledger.record_delivered("alice", "u1", 42).await.unwrap();
    assert_eq!(ledger.messages("alice").await.unwrap()["u1"].size, Some(42));
}

#[tokio::test]
async fn an_account_is_known_by_its_messages_or_a_good_poll_that_listed_mail() {
    let ledger = Ledger::open_in_memory().unwrap();
    assert!(!ledger.knows_account("alice").await.unwrap());

    let poll = |listed, outcome| PollReport {
        outcome,
        listed,
        ..PollReport::default()
    };
    let id = ledger.start_poll("alice").await.unwrap();
    ledger
        .finish_poll(id, &poll(60, PollOutcome::Failed))
        .await
        .unwrap();
    assert!(
        !ledger.knows_account("alice").await.unwrap(),
        "a refused or failed poll proves nothing"
    );
    let id = ledger.start_poll("alice").await.unwrap();
    ledger
        .finish_poll(id, &poll(0, PollOutcome::Ok))
        .await
        .unwrap();
    assert!(
        !ledger.knows_account("alice").await.unwrap(),
        "an empty mailbox"
    );
    let id = ledger.start_poll("alice").await.unwrap();
    ledger
        .finish_poll(id, &poll(3, PollOutcome::Ok))
        .await
        .unwrap();
    assert!(ledger.knows_account("alice").await.unwrap());

    assert!(!ledger.knows_account("bob").await.unwrap());
    ledger.record_delivered("bob", "u1", 1).await.unwrap();
    assert!(ledger.knows_account("bob").await.unwrap());
}
