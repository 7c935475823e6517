use super::*;

async fn counts(ledger: &Ledger, account: &str) -> (Totals, OnServer) {
    let status = ledger.status().await.unwrap();
    let found = status.iter().find(|s| s.account == account).unwrap();
    (found.totals, found.on_server)
}

fn deleted(uids: &[&str]) -> Vec<String> {
    uids.iter().map(|uid| (*uid).to_owned()).collect()
}

#[tokio::test]
async fn a_quarantined_message_stays_quarantined_after_its_deletion() {
    let ledger = Ledger::open_in_memory().unwrap();
    ledger.record_delivered("alice", "ok", 1).await.unwrap();
    let path = Path::new("q/bad.eml");
    ledger
        .record_quarantined("alice", "bad", 2, "554 spam", path)
        .await
        .unwrap();
    ledger
        .mark_deleted("alice", &deleted(&["ok", "bad"]))
        .await
        .unwrap();
    let (totals, on_server) = counts(&ledger, "alice").await;
    let expected = Totals {
        delivered: 1,
        deleted: 2,
        rejected: 0,
        quarantined: 1,
    };
    assert_eq!(totals, expected);
    assert_eq!(on_server, OnServer::default());
}

#[tokio::test]
async fn totals_outlive_the_rows_they_were_counted_from() {
    let ledger = Ledger::open_in_memory().unwrap();
    for uid in ["a", "b", "c", "d", "e"] {
        ledger.record_delivered("alice", uid, 1).await.unwrap();
    }
    let first = deleted(&["a", "b", "c", "d", "e"]);
    ledger.mark_deleted("alice", &first).await.unwrap();
    // The next listing no longer shows them: the rows go, the totals stay.
    ledger.reconcile("alice", HashSet::new()).await.unwrap();
    for uid in ["f", "g"] {
        ledger.record_delivered("alice", uid, 1).await.unwrap();
    }
    ledger
        .mark_deleted("alice", &deleted(&["f", "g"]))
        .await
        .unwrap();
    let (totals, _) = counts(&ledger, "alice").await;
    assert_eq!((totals.delivered, totals.deleted), (7, 7));
}

#[tokio::test]
async fn a_retried_rejection_counts_once_and_a_deletion_once() {
    let ledger = Ledger::open_in_memory().unwrap();
    for retry_at in [10, 20, 30] {
        ledger
            .record_rejected("alice", "r", 5, "554 no", retry_at)
            .await
            .unwrap();
    }
    ledger.record_delivered("alice", "r", 5).await.unwrap();
    // A QUIT confirmation repeated for a message already marked deleted.
    ledger
        .mark_deleted("alice", &deleted(&["r"]))
        .await
        .unwrap();
    ledger
        .mark_deleted("alice", &deleted(&["r"]))
        .await
        .unwrap();
    let (totals, _) = counts(&ledger, "alice").await;
    let expected = Totals {
        delivered: 1,
        deleted: 1,
        rejected: 1,
        quarantined: 0,
    };
    assert_eq!(totals, expected);
}

#[tokio::test]
async fn a_reused_uid_is_a_new_message_and_counts_again() {
    let ledger = Ledger::open_in_memory().unwrap();
    ledger.record_delivered("alice", "u", 100).await.unwrap();
    ledger
        .mark_deleted("alice", &deleted(&["u"]))
        .await
        .unwrap();
    ledger.record_delivered("alice", "u", 200).await.unwrap();
    let (totals, on_server) = counts(&ledger, "alice").await;
    assert_eq!((totals.delivered, totals.deleted), (2, 1));
    assert_eq!(on_server.delivered, 1);
}

#[tokio::test]
async fn partial_messages_wait_and_count_when_they_settle() {
    let ledger = Ledger::open_in_memory().unwrap();
    let partial = Change::Partial {
        uid: "p".into(),
        size: 3,
    };
    ledger.commit("alice", vec![partial]).await.unwrap();
    let (totals, on_server) = counts(&ledger, "alice").await;
    assert_eq!((totals, on_server.waiting), (Totals::default(), 1));
    ledger.record_delivered("alice", "p", 3).await.unwrap();
    let (totals, on_server) = counts(&ledger, "alice").await;
    assert_eq!((totals.delivered, on_server.waiting), (1, 0));
}
