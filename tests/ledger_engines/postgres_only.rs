//! What only the PostgreSQL engine has: its schema runner, its poller
//! lock and fence, and its refusals of a server it cannot trust.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use popferry::config::State;
use popferry::ledger::{read_status, Found, Ledger, LedgerError};

use crate::{config, fresh_state, pg, Engine};

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
    assert_eq!(schema_version(&client).await, 8);
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
    assert_eq!(schema_version(&client).await, 8);
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
    assert!(message.contains("need it to themselves"), "{message}");
    assert!(message.contains(&state.describe()), "{message}");
    let holder = format!(
        "pid {}, connected from 127.0.0.1 since ",
        std::process::id()
    );
    assert!(message.contains(&holder), "names the holder: {message}");
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

/// Two fleet instances on one database: the first claims the account and
/// writes under its lease; once it stops renewing (a stalled process) and
/// the lease runs out, the second claims it under a new epoch, and the
/// first one's writes and deletions are refused, while the second's go
/// through. A `fetch`, which polls without leases, is refused meanwhile.
#[tokio::test]
async fn a_write_under_a_lapsed_lease_is_fenced_and_the_next_owner_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = fresh_state(Engine::Postgres, "fenced", dir.path()).await;
    if let State::Postgres(database) = &mut state {
        database.fleet.lease = Duration::from_secs(2);
    }
    let accounts = || vec!["alice".to_owned()];
    let first = Ledger::open_for_fleet(&state)
        .await
        .expect("first instance");
    first.offer(&accounts()).await.expect("offer");
    let keeper = tokio::spawn({
        let first = first.clone();
        async move { first.keep_leases(accounts).await }
    });
    let stale = tokio::time::timeout(Duration::from_secs(10), first.hold("alice"))
        .await
        .expect("the first instance claims alice");
    (stale.ledger().record_delivered("alice", "m1", 10).await).expect("a write under the lease");
    stale.ledger().still_holds("alice").expect("may delete");
    assert!(
        matches!(
            Ledger::open_state(&state).await,
            Err(LedgerError::DatabaseInUse { .. })
        ),
        "a fetch beside a fleet"
    );

    keeper.abort();
    let second = Ledger::open_for_fleet(&state)
        .await
        .expect("second instance");
    let _keeper = tokio::spawn({
        let second = second.clone();
        async move { second.keep_leases(accounts).await }
    });
    let taken = Instant::now();
    let held = tokio::time::timeout(Duration::from_secs(15), second.hold("alice"))
        .await
        .expect("the second instance takes alice over once the lease ran out");
    println!(
        "taken over {:?} after the first stopped renewing",
        taken.elapsed()
    );

    let refused = stale.ledger().record_delivered("alice", "m2", 10).await;
    assert!(
        matches!(refused, Err(LedgerError::Fenced { .. })),
        "{refused:?}"
    );
    assert!(matches!(
        stale.ledger().still_holds("alice"),
        Err(LedgerError::Fenced { .. })
    ));
    let message = refused.unwrap_err().to_string();
    assert!(
        message.contains("no longer holds the account's lease"),
        "{message}"
    );
    (held.ledger().record_delivered("alice", "m2", 10).await).expect("the new owner writes");
    let rows = second.messages("alice").await.expect("messages");
    assert_eq!(rows.len(), 2, "{rows:?}");

    let client = database_of(&state).await;
    let row = client
        .query_one(
            "SELECT epoch, owner FROM lease WHERE account = 'alice'",
            &[],
        )
        .await
        .unwrap();
    let epoch: i64 = row.get(0);
    assert!(epoch >= 2, "a new epoch for the new owner: {epoch}");
}
