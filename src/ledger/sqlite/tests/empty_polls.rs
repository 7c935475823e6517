//! Empty pooled polls: counted in memory, written as one row per run.

use super::*;

async fn recent(ledger: &Ledger, account: &str) -> Vec<PollSummary> {
    let account = account.to_owned();
    store(ledger)
        .run("read polls", move |conn| {
            super::super::report::snapshot(conn, &[account])
        })
        .await
        .unwrap()
        .details
        .remove(0)
        .1
        .polls
}

#[tokio::test]
async fn counted_empty_polls_are_written_only_when_flushed_and_extend_one_row() {
    let ledger = Ledger::open_in_memory().unwrap();
    ledger.note_empty_poll("alice", 100, 101);
    ledger.note_empty_poll("alice", 160, 161);
    assert!(
        recent(&ledger, "alice").await.is_empty(),
        "nothing written yet"
    );

    ledger.flush_empty_polls().await.unwrap();
    ledger.note_empty_poll("alice", 220, 222);
    ledger.flush_empty_polls().await.unwrap();
    ledger.flush_empty_polls().await.unwrap();

    let polls = recent(&ledger, "alice").await;
    assert_eq!(polls.len(), 1, "{polls:?}");
    let run = &polls[0];
    assert_eq!(run.empty_polls, 3);
    assert_eq!((run.started_at, run.finished_at), (100, Some(222)));
    assert_eq!(run.outcome, Some(PollOutcome::Ok));
}

#[tokio::test]
async fn another_poll_writes_the_run_before_it_and_ends_it() {
    let ledger = Ledger::open_in_memory().unwrap();
    ledger.note_empty_poll("alice", 100, 101);
    ledger.note_empty_poll("bob", 100, 101);
    let id = ledger.start_poll("alice").await.unwrap();
    let report = PollReport {
        delivered: 1,
        ..PollReport::default()
    };
    ledger.finish_poll(id, &report).await.unwrap();
    ledger.note_empty_poll("alice", 200, 201);
    ledger.flush_empty_polls().await.unwrap();

    let polls = recent(&ledger, "alice").await;
    let shape: Vec<(u64, u64)> = polls.iter().map(|p| (p.empty_polls, p.delivered)).collect();
    assert_eq!(shape, [(1, 0), (0, 1), (1, 0)], "newest first: {polls:?}");
    assert_eq!(
        recent(&ledger, "bob").await.len(),
        1,
        "bob's run waited for the flush"
    );
}

#[tokio::test]
async fn a_failed_flush_keeps_the_runs_for_the_next() {
    let ledger = Ledger::open_in_memory().unwrap();
    ledger.note_empty_poll("alice", 100, 101);
    store(&ledger)
        .run("break the poll table", |conn| {
            conn.execute_batch("ALTER TABLE poll RENAME TO hidden")
        })
        .await
        .unwrap();
    assert!(ledger.flush_empty_polls().await.is_err());
    ledger.note_empty_poll("alice", 160, 161);
    store(&ledger)
        .run("mend the poll table", |conn| {
            conn.execute_batch("ALTER TABLE hidden RENAME TO poll")
        })
        .await
        .unwrap();
    ledger.flush_empty_polls().await.unwrap();

    let polls = recent(&ledger, "alice").await;
    assert_eq!(polls.len(), 1);
    assert_eq!(polls[0].empty_polls, 2);
    assert_eq!(
        (polls[0].started_at, polls[0].finished_at),
        (100, Some(161))
    );
}
