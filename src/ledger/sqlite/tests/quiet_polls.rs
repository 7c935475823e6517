//! The count of successful polls in a row that found nothing new, which
//! adaptive intervals grow with (`migrations/0006_quiet_polls.sql`).

use super::*;

async fn poll(ledger: &Ledger, outcome: PollOutcome, new_listed: u64) {
    let id = ledger.start_poll("alice").await.unwrap();
    let report = PollReport {
        outcome,
        new_listed,
        ..PollReport::default()
    };
    ledger.finish_poll(id, &report).await.unwrap();
}

#[tokio::test]
async fn empty_polls_count_up_failures_carry_it_and_new_mail_resets_it() {
    let ledger = Ledger::open_in_memory().unwrap();
    assert_eq!(
        ledger.quiet_polls("alice").await.unwrap(),
        0,
        "never polled"
    );
    poll(&ledger, PollOutcome::Ok, 0).await;
    poll(&ledger, PollOutcome::Ok, 0).await;
    assert_eq!(ledger.quiet_polls("alice").await.unwrap(), 2);
    poll(&ledger, PollOutcome::Failed, 0).await;
    assert_eq!(ledger.quiet_polls("alice").await.unwrap(), 2, "a failure");
    poll(&ledger, PollOutcome::Failed, 3).await;
    assert_eq!(
        ledger.quiet_polls("alice").await.unwrap(),
        2,
        "even one that listed mail"
    );
    ledger.start_poll("alice").await.unwrap();
    assert_eq!(
        ledger.quiet_polls("alice").await.unwrap(),
        2,
        "a poll cut short"
    );
    poll(&ledger, PollOutcome::Ok, 1).await;
    assert_eq!(ledger.quiet_polls("alice").await.unwrap(), 0, "new mail");
    assert_eq!(ledger.quiet_polls("bob").await.unwrap(), 0, "per account");
}

#[tokio::test]
async fn pooled_empty_polls_count_before_and_after_they_are_written() {
    let ledger = Ledger::open_in_memory().unwrap();
    poll(&ledger, PollOutcome::Ok, 0).await;
    ledger.note_empty_poll("alice", 100, 101);
    ledger.note_empty_poll("alice", 160, 161);
    assert_eq!(
        ledger.quiet_polls("alice").await.unwrap(),
        3,
        "counted in memory"
    );
    ledger.flush_empty_polls().await.unwrap();
    assert_eq!(ledger.quiet_polls("alice").await.unwrap(), 3, "written");
    ledger.note_empty_poll("alice", 220, 221);
    ledger.flush_empty_polls().await.unwrap();
    assert_eq!(
        ledger.quiet_polls("alice").await.unwrap(),
        4,
        "the run extended"
    );
    ledger.note_empty_poll("alice", 280, 281);
    poll(&ledger, PollOutcome::Ok, 0).await;
    assert_eq!(
        ledger.quiet_polls("alice").await.unwrap(),
        6,
        "written by the next poll"
    );
}
