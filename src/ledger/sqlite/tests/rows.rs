use super::*;

#[tokio::test]
async fn delivered_message_reads_back() {
    let ledger = Ledger::open_in_memory().unwrap();
    ledger.record_delivered("alice", "u1", 1234).await.unwrap();
    let messages = ledger.messages("alice").await.unwrap();
    let expected = MessageRecord {
        uid: "u1".into(),
        size: Some(1234),
        state: MessageState::Delivered,
        attempts: 1,
        retry_at: None,
        last_error: None,
        recipients: Vec::new(),
    };
    assert_eq!(messages.len(), 1);
    assert_eq!(messages["u1"], expected);
    assert!(ledger.messages("bob").await.unwrap().is_empty());
}

#[tokio::test]
async fn rejections_count_attempts_until_delivery() {
    let ledger = Ledger::open_in_memory().unwrap();
    for (expected, retry_at) in [(1, 100), (2, 200), (3, 300)] {
        let attempts = ledger
            .record_rejected("alice", "u1", 50, "451 try later", retry_at)
            .await
            .unwrap();
        assert_eq!(attempts, expected);
    }
    let record = &ledger.messages("alice").await.unwrap()["u1"];
    assert_eq!(record.state, MessageState::Rejected);
    assert_eq!(record.retry_at, Some(300));
    assert_eq!(record.last_error.as_deref(), Some("451 try later"));

    ledger.record_delivered("alice", "u1", 50).await.unwrap();
    let record = &ledger.messages("alice").await.unwrap()["u1"];
    assert_eq!(record.state, MessageState::Delivered);
    assert_eq!(record.attempts, 4);
    assert_eq!(
        (record.retry_at, record.last_error.as_deref()),
        (None, None)
    );
}

#[tokio::test]
async fn reused_uid_with_another_size_is_a_new_message() {
    let ledger = Ledger::open_in_memory().unwrap();
    ledger.record_delivered("alice", "u1", 100).await.unwrap();
    ledger
        .mark_deleted("alice", &["u1".to_owned()])
        .await
        .unwrap();
    let attempts = ledger
        .record_rejected("alice", "u1", 999, "452 mailbox full", 10)
        .await
        .unwrap();
    assert_eq!(attempts, 1);
    let record = &ledger.messages("alice").await.unwrap()["u1"];
    assert_eq!(
        (record.size, record.state),
        (Some(999), MessageState::Rejected)
    );
}

#[tokio::test]
async fn quarantined_message_reads_back() {
    let ledger = Ledger::open_in_memory().unwrap();
    let path = Path::new("/var/lib/popferry/quarantine/alice-u1.eml");
    ledger
        .record_quarantined("alice", "u1", 70, "550 no such user", path)
        .await
        .unwrap();
    let record = &ledger.messages("alice").await.unwrap()["u1"];
    assert_eq!(record.state, MessageState::Quarantined);
    assert_eq!(record.last_error.as_deref(), Some("550 no such user"));
    let conn = conn(&ledger);
    let stored: String = conn
        .query_row("SELECT quarantine_path FROM message", [], |row| row.get(0))
        .unwrap();
    assert_eq!(Path::new(&stored), path);
}

#[tokio::test]
async fn mark_deleted_changes_only_messages_safe_to_delete() {
    let ledger = Ledger::open_in_memory().unwrap();
    ledger.record_delivered("alice", "sent", 1).await.unwrap();
    let quarantine = Path::new("q/kept.eml");
    ledger
        .record_quarantined("alice", "kept", 2, "554 spam", quarantine)
        .await
        .unwrap();
    ledger
        .record_rejected("alice", "waiting", 3, "451 later", 99)
        .await
        .unwrap();
    ledger.record_delivered("bob", "sent", 1).await.unwrap();

    let uids = ["sent", "kept", "waiting", "unknown"].map(String::from);
    ledger.mark_deleted("alice", &uids).await.unwrap();

    let alice = ledger.messages("alice").await.unwrap();
    assert_eq!(alice.len(), 3, "no row is invented for an unknown uid");
    assert_eq!(alice["sent"].state, MessageState::Deleted);
    assert_eq!(alice["kept"].state, MessageState::Deleted);
    assert_eq!(alice["waiting"].state, MessageState::Rejected);
    let bob = ledger.messages("bob").await.unwrap();
    assert_eq!(bob["sent"].state, MessageState::Delivered);
}

#[tokio::test]
async fn reconcile_keeps_exactly_the_listed_uids() {
    let ledger = Ledger::open_in_memory().unwrap();
    let uids: Vec<String> = (0..3000).map(|n| format!("uid-{n}")).collect();
    for uid in &uids {
        ledger.record_delivered("alice", uid, 1).await.unwrap();
    }
    ledger.record_delivered("bob", "uid-1", 1).await.unwrap();
    // The server still lists the even uids, plus one popferry never saw.
    let mut listed: HashSet<String> = uids.iter().step_by(2).cloned().collect();
    listed.insert("new".to_owned());

    let found = ledger.reconcile("alice", listed.clone()).await.unwrap();
    assert_eq!(found.pruned, 1500);
    let returned: HashSet<String> = found.known.into_keys().collect();

    let alice = ledger.messages("alice").await.unwrap();
    let kept: HashSet<String> = alice.into_keys().collect();
    listed.remove("new");
    assert_eq!(kept, listed);
    assert_eq!(
        returned, listed,
        "the records of the listed uids, no others"
    );
    assert_eq!(ledger.messages("bob").await.unwrap().len(), 1);
    assert_eq!(ledger.reconcile("alice", listed).await.unwrap().pruned, 0);
}

#[tokio::test]
async fn status_counts_messages_and_shows_the_latest_poll() {
    let ledger = Ledger::open_in_memory().unwrap();
    for uid in ["a", "b", "c"] {
        ledger.record_delivered("alice", uid, 1).await.unwrap();
    }
    ledger
        .mark_deleted("alice", &["a".to_owned()])
        .await
        .unwrap();
    let quarantine = Path::new("q/d.eml");
    ledger
        .record_quarantined("alice", "d", 1, "554 no", quarantine)
        .await
        .unwrap();
    for uid in ["e", "f"] {
        ledger
            .record_rejected("alice", uid, 1, "451 later", 9)
            .await
            .unwrap();
    }
    let first = ledger.start_poll("alice").await.unwrap();
    ledger
        .finish_poll(first, &report(PollOutcome::Failed))
        .await
        .unwrap();
    let second = ledger.start_poll("alice").await.unwrap();
    let failed = PollReport {
        error: Some("connection reset".into()),
        ..report(PollOutcome::Failed)
    };
    ledger.finish_poll(second, &failed).await.unwrap();
    // bob's only poll never finished: killed, or still going.
    ledger.start_poll("bob").await.unwrap();

    let status = ledger.status().await.unwrap();
    let names: Vec<&str> = status.iter().map(|s| s.account.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);

    let alice = &status[0];
    let totals = Totals {
        delivered: 3,
        deleted: 1,
        rejected: 2,
        quarantined: 1,
    };
    assert_eq!(alice.totals, totals);
    let on_server = OnServer {
        delivered: 2,
        waiting: 0,
        rejected: 2,
        quarantined: 1,
    };
    assert_eq!(alice.on_server, on_server);
    let poll = alice.last_poll.as_ref().unwrap();
    assert_eq!(poll.outcome, Some(PollOutcome::Failed));
    assert!(poll.finished_at.is_some_and(|at| at >= poll.started_at));
    assert_eq!(poll.error.as_deref(), Some("connection reset"));
    assert_eq!(
        (
            poll.listed,
            poll.delivered,
            poll.deleted,
            poll.deferred,
            poll.rejected
        ),
        (5, 2, 2, 1, 1)
    );

    let bob = &status[1];
    assert_eq!(
        (bob.totals, bob.on_server),
        (Totals::default(), OnServer::default())
    );
    let poll = bob.last_poll.as_ref().unwrap();
    assert_eq!(
        (poll.outcome, poll.finished_at, poll.listed),
        (None, None, 0)
    );
}

#[tokio::test]
async fn a_poll_finishes_once() {
    let ledger = Ledger::open_in_memory().unwrap();
    let id = ledger.start_poll("alice").await.unwrap();
    ledger
        .finish_poll(id, &report(PollOutcome::Ok))
        .await
        .unwrap();
    let err = ledger
        .finish_poll(id, &report(PollOutcome::Ok))
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::PollNotRunning { .. }), "{err:?}");
}

#[tokio::test]
async fn poll_history_is_bounded_per_account() {
    let ledger = Ledger::open_in_memory().unwrap();
    ledger.start_poll("bob").await.unwrap();
    let mut latest = Vec::new();
    for _ in 0..POLL_HISTORY + 3 {
        latest.push(ledger.start_poll("alice").await.unwrap());
    }
    // The newest poll survived the trimming and can still be finished.
    let newest = *latest.last().unwrap();
    ledger
        .finish_poll(newest, &report(PollOutcome::Ok))
        .await
        .unwrap();
    let conn = conn(&ledger);
    let count = |account: &str| -> i64 {
        conn.query_row(
            "SELECT count(*) FROM poll WHERE account = ?1",
            [account],
            |row| row.get(0),
        )
        .unwrap()
    };
    assert_eq!(count("alice"), POLL_HISTORY);
    assert_eq!(count("bob"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_commit_from_concurrent_tasks() {
    let (_dir, path, ledger) = file_ledger();
    let tasks: Vec<_> = ["alice", "bob"]
        .into_iter()
        .map(|account| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                for n in 0..25 {
                    ledger
                        .record_delivered(account, &format!("u{n}"), n)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    drop(ledger);
    let reopened = Ledger::open(&path).unwrap();
    for account in ["alice", "bob"] {
        assert_eq!(reopened.messages(account).await.unwrap().len(), 25);
    }
}
