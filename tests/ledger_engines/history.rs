//! The poll history, the totals and what `status` reads.

use std::path::Path;

use popferry::ledger::{
    read_status, Change, Found, LedgerError, OnServer, PollOutcome, PollReport, RecipientState,
    Totals,
};

use crate::rows::recipient;
use crate::{report, Opened};

pub async fn totals_and_the_latest_poll(opened: &Opened) {
    let ledger = &opened.ledger;
    for uid in ["a", "b", "c"] {
        ledger.record_delivered("alice", uid, 1).await.unwrap();
    }
    ledger
        .mark_deleted("alice", &["a".to_owned()])
        .await
        .unwrap();
    // Deleting twice counts once.
    ledger
        .mark_deleted("alice", &["a".to_owned()])
        .await
        .unwrap();
    let quarantine = Path::new("q/d.eml");
    ledger
        .record_quarantined("alice", "d", 1, "554 no", quarantine)
        .await
        .unwrap();
    for uid in ["e", "f", "e"] {
        ledger
            .record_rejected("alice", uid, 1, "451 later", 9)
            .await
            .unwrap();
    }
    let first = ledger.start_poll("alice").await.unwrap();
    ledger
        .finish_poll(first, &report(PollOutcome::Ok))
        .await
        .unwrap();
    let second = ledger.start_poll("alice").await.unwrap();
    let failed = PollReport {
        error: Some("connection reset".into()),
        ..report(PollOutcome::Failed)
    };
    ledger.finish_poll(second, &failed).await.unwrap();
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
    let counts = (
        poll.listed,
        poll.delivered,
        poll.deleted,
        poll.deferred,
        poll.rejected,
    );
    assert_eq!(counts, (5, 2, 2, 1, 1));
    assert_eq!(poll.quiet_polls, 0, "the ok poll listed new mail");
    let bob = status[1].last_poll.as_ref().unwrap();
    assert_eq!(
        (bob.outcome, bob.finished_at),
        (None, None),
        "still running"
    );
}

pub async fn quiet_polls_count_and_reset(opened: &Opened) {
    let ledger = &opened.ledger;
    let poll = |outcome, new_listed| async move {
        let id = ledger.start_poll("alice").await.unwrap();
        let report = PollReport {
            outcome,
            new_listed,
            ..PollReport::default()
        };
        ledger.finish_poll(id, &report).await.unwrap();
    };
    assert_eq!(
        ledger.quiet_polls("alice").await.unwrap(),
        0,
        "never polled"
    );
    poll(PollOutcome::Ok, 0).await;
    poll(PollOutcome::Ok, 0).await;
    assert_eq!(ledger.quiet_polls("alice").await.unwrap(), 2);
    poll(PollOutcome::Failed, 3).await;
    assert_eq!(ledger.quiet_polls("alice").await.unwrap(), 2, "a failure");
    ledger.start_poll("alice").await.unwrap();
    assert_eq!(ledger.quiet_polls("alice").await.unwrap(), 2, "cut short");

    ledger.note_empty_poll("alice", 100, 101);
    ledger.note_empty_poll("alice", 160, 161);
    assert_eq!(ledger.quiet_polls("alice").await.unwrap(), 4, "in memory");
    ledger.flush_empty_polls().await.unwrap();
    ledger.note_empty_poll("alice", 220, 221);
    ledger.flush_empty_polls().await.unwrap();
    assert_eq!(ledger.quiet_polls("alice").await.unwrap(), 5, "written");
    let status = ledger.status().await.unwrap();
    let latest = status[0].last_poll.as_ref().unwrap();
    assert_eq!(
        (latest.empty_polls, latest.started_at, latest.finished_at),
        (3, 100, Some(221)),
        "one row for the run, extended in place"
    );
    poll(PollOutcome::Ok, 1).await;
    assert_eq!(ledger.quiet_polls("alice").await.unwrap(), 0, "new mail");
    assert_eq!(ledger.quiet_polls("bob").await.unwrap(), 0, "per account");
}

pub async fn status_snapshot(opened: &Opened) {
    let ledger = &opened.ledger;
    for (uid, retry_at) in [("late", 500), ("soon", 100)] {
        ledger
            .record_rejected("alice", uid, 10, "451 later", retry_at)
            .await
            .unwrap();
    }
    let partial = vec![
        Change::Partial {
            uid: "half".into(),
            size: 5,
        },
        recipient("half", "z@example.org", RecipientState::Delivered, None),
        recipient(
            "half",
            "y@example.org",
            RecipientState::Deferred,
            Some("452 full"),
        ),
    ];
    ledger.commit("alice", partial).await.unwrap();
    ledger.record_delivered("alice", "done", 3).await.unwrap();
    for n in 0..12 {
        let id = ledger.start_poll("alice").await.unwrap();
        let report = PollReport {
            listed: n,
            ..PollReport::default()
        };
        ledger.finish_poll(id, &report).await.unwrap();
    }

    let detailed = vec!["alice".to_owned()];
    let Found::Ledger(snapshot) = read_status(&opened.state, detailed).await.unwrap() else {
        panic!("a ledger with rows");
    };
    assert!(snapshot.counting_since > 1_600_000_000, "unix seconds");
    assert_eq!(snapshot.accounts.len(), 1);
    assert_eq!(snapshot.accounts[0].on_server.waiting, 1);
    assert_eq!(snapshot.accounts[0].on_server.rejected, 2);
    assert_eq!(snapshot.accounts[0].on_server.delivered, 1);
    assert_eq!(snapshot.refusals.len(), 1);
    let (name, detail) = &snapshot.details[0];
    assert_eq!(name, "alice");
    let listed: Vec<u64> = detail.polls.iter().map(|p| p.listed).collect();
    assert_eq!(listed, [11, 10, 9, 8, 7, 6, 5, 4, 3, 2], "newest ten first");
    let waiting: Vec<&str> = detail.waiting.iter().map(|m| m.uid.as_str()).collect();
    assert_eq!(waiting, ["half", "soon", "late"], "by retry time");
    let addresses: Vec<&str> = (detail.waiting[0].recipients.iter())
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(addresses, ["y@example.org", "z@example.org"]);
    assert_eq!(
        ledger.status().await.unwrap(),
        snapshot.accounts,
        "the poller's view and status agree"
    );
}

pub async fn a_poll_finishes_once(opened: &Opened) {
    let ledger = &opened.ledger;
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
