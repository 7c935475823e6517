//! The ledger's semantics on both engines: the same calls and the same
//! assertions against a SQLite file and against the private PostgreSQL of
//! `scripts/lib/postgres.sh` (each test in a database of its own), so the
//! code above the ledger cannot tell them apart. Then what only the
//! PostgreSQL engine has: its schema runner, its poller lock and fence.
//!
//! Needs the database: run with `scripts/test.sh`, or by hand with
//! `scripts/lib/postgres.sh start`, its env file sourced, and
//! `cargo test --features real-servers --test ledger_engines`.
#![cfg(feature = "real-servers")]

mod pg;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use popferry::config::{Config, State};
use popferry::ledger::{
    read_status, Change, Found, Ledger, LedgerError, MessageState, OnServer, PollOutcome,
    PollReport, RecipientState, Totals,
};

#[derive(Debug, Clone, Copy)]
enum Engine {
    Sqlite,
    Postgres,
}

/// A ledger opened as a poller opens it, with the `state` it came from.
struct Opened {
    ledger: Ledger,
    state: State,
    _dir: tempfile::TempDir,
}

/// The configuration text of a ledger at `state_lines`, with the one
/// account and relay every configuration needs.
fn config(state_lines: &str, dir: &Path) -> Config {
    let toml = format!(
        "{state_lines}[smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n\n\
         [[account]]\nname = \"alice\"\nhost = \"127.0.0.1\"\nusername = \"alice\"\n\
         password_env = \"UNUSED\"\ndeliver_to = [\"alice@example.org\"]\n"
    );
    Config::from_toml(&toml, &dir.join("popferry.toml")).expect("test config")
}

/// The `state` of a fresh ledger of `engine`, not opened yet.
async fn fresh_state(engine: Engine, test: &str, dir: &Path) -> State {
    let lines = match engine {
        Engine::Sqlite => "state = \"ledger.db\"\n".to_owned(),
        Engine::Postgres => {
            let pg = pg::env();
            let database = pg.fresh_database(test).await;
            pg.state_toml(&database, dir)
        }
    };
    config(&lines, dir).state
}

async fn open(engine: Engine, test: &str) -> Opened {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = fresh_state(engine, test, dir.path()).await;
    let ledger = Ledger::open_state(&state).await.expect("open the ledger");
    Opened {
        ledger,
        state,
        _dir: dir,
    }
}

fn report(outcome: PollOutcome) -> PollReport {
    PollReport {
        outcome,
        listed: 5,
        delivered: 2,
        deleted: 2,
        deferred: 1,
        rejected: 1,
        new_listed: 3,
        error: None,
    }
}

/// Each check once per engine, as `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_engines {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $check() {
                let opened = super::open(super::Engine::Sqlite, stringify!($check)).await;
                super::$check(&opened).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $check() {
                let opened = super::open(super::Engine::Postgres, stringify!($check)).await;
                super::$check(&opened).await;
            })*
        }
    };
}

on_both_engines!(
    rows_states_and_attempts,
    totals_and_the_latest_poll,
    quiet_polls_count_and_reset,
    recipients_and_refusals,
    reconcile_keeps_exactly_the_listed_uids,
    imported_uids_and_learned_sizes,
    status_snapshot,
    a_poll_finishes_once,
);

async fn rows_states_and_attempts(opened: &Opened) {
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

async fn totals_and_the_latest_poll(opened: &Opened) {
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

async fn quiet_polls_count_and_reset(opened: &Opened) {
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

fn recipient(uid: &str, address: &str, state: RecipientState, reply: Option<&str>) -> Change {
    Change::Recipient {
        uid: uid.into(),
        address: address.into(),
        state,
        reply: reply.map(str::to_owned),
    }
}

async fn recipients_and_refusals(opened: &Opened) {
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

async fn reconcile_keeps_exactly_the_listed_uids(opened: &Opened) {
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

async fn imported_uids_and_learned_sizes(opened: &Opened) {
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

async fn status_snapshot(opened: &Opened) {
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

async fn a_poll_finishes_once(opened: &Opened) {
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

// ------------------------------------------------- PostgreSQL only --

async fn schema_version(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT version FROM popferry_schema", &[])
        .await
        .unwrap()
        .get(0)
}

/// Opens `state` again once the handle before it is gone: its session
/// ends, and its poller lock with it, a moment after the drop.
async fn reopen(state: &State) -> Ledger {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Ledger::open_state(state).await {
            Ok(ledger) => return ledger,
            Err(LedgerError::DatabaseInUse { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("reopen: {err:?}"),
        }
    }
}

/// Why opening `state` fails, once no earlier handle holds the lock.
async fn reopen_err(state: &State) -> LedgerError {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Ledger::open_state(state).await {
            Ok(_) => panic!("opened"),
            Err(LedgerError::DatabaseInUse { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => return err,
        }
    }
}

/// The test's database, as the tests' own connection.
async fn database_of(state: &State) -> tokio_postgres::Client {
    let State::Postgres(database) = state else {
        panic!("a PostgreSQL state");
    };
    pg::env().connect(&database.name).await
}

#[tokio::test]
async fn a_fresh_database_gets_every_step_and_a_second_open_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = fresh_state(Engine::Postgres, "schema", dir.path()).await;
    let before = read_status(&state, Vec::new()).await.unwrap();
    assert!(matches!(before, Found::Empty), "{before:?}");
    let ledger = Ledger::open_state(&state).await.unwrap();
    let client = database_of(&state).await;
    assert_eq!(schema_version(&client).await, 7);
    let fleet: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('lease', 'instance', 'server_slot')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(fleet, 3, "schema 7's fleet tables");
    drop(ledger);
    let again = reopen(&state).await;
    assert_eq!(schema_version(&client).await, 7);
    drop(again);

    // A newer schema is refused by pollers and by status alike.
    client
        .batch_execute("UPDATE popferry_schema SET version = 99")
        .await
        .unwrap();
    let err = reopen_err(&state).await;
    assert!(
        matches!(err, LedgerError::TooNew { found: 99, .. }),
        "{err:?}"
    );
    let err = read_status(&state, Vec::new()).await.unwrap_err();
    assert!(matches!(err, LedgerError::TooNew { .. }), "{err:?}");
}

#[tokio::test]
async fn a_second_poller_is_refused_until_the_first_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let state = fresh_state(Engine::Postgres, "second_poller", dir.path()).await;
    let first = Ledger::open_state(&state).await.unwrap();
    let clone = first.clone();
    let err = Ledger::open_state(&state).await.unwrap_err();
    assert!(matches!(err, LedgerError::DatabaseInUse { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("deliver a message twice"), "{message}");
    assert!(message.contains(&state.describe()), "{message}");
    drop(first);
    let err = Ledger::open_state(&state).await.unwrap_err();
    assert!(
        matches!(err, LedgerError::DatabaseInUse { .. }),
        "a clone keeps it: {err:?}"
    );
    drop(clone);
    let again = reopen(&state).await;
    again.record_delivered("alice", "u1", 1).await.unwrap();
}

/// The poller lock's session ends (as in a database restart) and another
/// process takes the lock: no write of this one may land until the lock
/// is its own again.
#[tokio::test]
async fn writes_stop_while_another_session_holds_the_poller_lock() {
    let dir = tempfile::tempdir().unwrap();
    let state = fresh_state(Engine::Postgres, "fence", dir.path()).await;
    let ledger = Ledger::open_state(&state).await.unwrap();
    ledger.record_delivered("alice", "before", 1).await.unwrap();

    let admin = database_of(&state).await;
    let holder: i32 = admin
        .query_one(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = 7466357
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    admin
        .query_one("SELECT pg_terminate_backend($1)", &[&holder])
        .await
        .unwrap();
    let thief = database_of(&state).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let taken: bool = thief
            .query_one("SELECT pg_try_advisory_lock(7466357)", &[])
            .await
            .unwrap()
            .get(0);
        if taken {
            break;
        }
        assert!(Instant::now() < deadline, "the old session never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let err = ledger
        .record_delivered("alice", "during", 1)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LedgerError::DatabaseInUse { .. } | LedgerError::LockLost { .. }
        ),
        "{err:?}"
    );
    let listed: HashSet<String> = ["before".to_owned()].into();
    assert!(ledger.reconcile("alice", listed.clone()).await.is_err());
    let records = ledger.messages("alice").await.unwrap();
    assert_eq!(records.len(), 1, "nothing written: {records:?}");

    thief
        .query_one("SELECT pg_advisory_unlock(7466357)", &[])
        .await
        .unwrap();
    ledger.record_delivered("alice", "after", 1).await.unwrap();
    let records = ledger.messages("alice").await.unwrap();
    let mut uids: Vec<&String> = records.keys().collect();
    uids.sort();
    assert_eq!(uids, ["after", "before"]);
}

#[tokio::test]
async fn status_of_a_database_that_does_not_exist_is_nothing_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let pg = pg::env();
    let lines = pg.state_toml("t_never_created", dir.path());
    let state = config(&lines, dir.path()).state;
    let found = read_status(&state, Vec::new()).await.unwrap();
    assert!(matches!(found, Found::Missing), "{found:?}");
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let pg = pg::env();
    let database = pg.fresh_database("wrong_password").await;
    let lines = pg.state_toml(&database, dir.path());
    std::fs::write(dir.path().join("pg-password"), "not-the-password-42").unwrap();
    let state = config(&lines, dir.path()).state;
    let err = Ledger::open_state(&state).await.unwrap_err();
    let shown = format!("{err:?} {err} {}", chain(&err));
    assert!(shown.contains("password authentication failed"), "{shown}");
    assert!(!shown.contains("not-the-password-42"), "{shown}");
    assert!(!shown.contains(&pg.password), "{shown}");
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = String::new();
    let mut source = err.source();
    while let Some(cause) = source {
        text += &format!(": {cause}");
        source = cause.source();
    }
    text
}

/// A database whose certificate chains to no anchor popferry trusts is
/// refused before any password is sent, with system trust as with a
/// `ca_file` of another CA.
#[tokio::test]
async fn a_database_certificate_from_an_unknown_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pg = pg::env();
    let database = pg.fresh_database("unknown_ca").await;
    let lines = pg.state_toml(&database, dir.path());
    let key = rcgen::KeyPair::generate().unwrap();
    let other = rcgen::CertificateParams::new(vec!["other CA".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, other.pem()).unwrap();
    let ca_line = format!("ca_file = {:?}\n", pg.ca_file.display().to_string());
    let other_line = format!("ca_file = {:?}\n", other_ca.display().to_string());
    for lines in [
        lines.replace(&ca_line, &other_line),
        lines.replace(&ca_line, ""),
    ] {
        let state = config(&lines, dir.path()).state;
        let err = Ledger::open_state(&state).await.unwrap_err();
        let shown = format!("{err} {}", chain(&err));
        assert!(shown.contains("certificate"), "{shown}");
        assert!(matches!(err, LedgerError::Database { .. }), "{err:?}");
    }
}
