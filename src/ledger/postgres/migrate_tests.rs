//! The schema runner against the private PostgreSQL of
//! `scripts/lib/postgres.sh` (hence the `real-servers` feature): each test
//! in a database of its own.

use std::fs;

use tokio_postgres::Client;

use super::connect::Connector;
use super::migrate::{migrate, version, MIGRATIONS};
use super::Failure;
use crate::config::{Database, DatabaseHost, PasswordSource, Secret, Trust};
use crate::ledger::LedgerError;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/test.sh"))
}

fn database(name: &str) -> Database {
    let password = fs::read_to_string(var("POPFERRY_TEST_PG_PASSWORD_FILE")).expect("password");
    Database {
        host: DatabaseHost::Tcp(var("POPFERRY_TEST_PG_HOST")),
        port: var("POPFERRY_TEST_PG_PORT").parse().expect("a port"),
        user: var("POPFERRY_TEST_PG_USER"),
        name: name.to_owned(),
        password: Some(PasswordSource::Inline(Secret::new(
            password.trim_end().to_owned(),
        ))),
        trust: Trust::Roots {
            ca_file: Some(var("POPFERRY_TEST_PG_CA").into()),
        },
        max_connections: 1,
        fleet: crate::config::Fleet::default(),
    }
}

async fn connect(name: &str) -> Client {
    let connector = Connector::new(&database(name), name)
        .await
        .expect("connector");
    match connector.connect().await {
        Ok(client) => client,
        Err(_) => panic!("cannot connect to {name}: run scripts/test.sh"),
    }
}

/// A fresh database named after `test`, and a connection to it.
async fn fresh(test: &str) -> Client {
    let name = format!("m_{test}_{}", std::process::id());
    let admin = connect("popferry").await;
    let sql = format!("DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}");
    for statement in sql.split("; ") {
        admin
            .batch_execute(statement)
            .await
            .expect("a test database");
    }
    connect(&name).await
}

async fn exists(client: &Client, table: &str) -> bool {
    let sql = format!("SELECT to_regclass('{table}') IS NOT NULL");
    client.query_one(&sql, &[]).await.unwrap().get(0)
}

fn ok<T>(result: Result<T, Failure>) -> T {
    match result {
        Ok(value) => value,
        Err(failure) => panic!("{}", failure.into_error("test", "migrate")),
    }
}

#[tokio::test]
async fn migrations_apply_one_by_one() {
    let mut client = fresh("one_by_one").await;
    assert_eq!(ok(version(&client).await), None, "no version table yet");
    for n in 1..=MIGRATIONS.len() {
        ok(migrate(&mut client, "test", &MIGRATIONS[..n]).await);
        assert_eq!(ok(version(&client).await), Some(n as u32));
    }
    for table in ["message", "poll", "recipient", "total", "lease"] {
        assert!(exists(&client, table).await, "{table}");
    }
    ok(migrate(&mut client, "test", MIGRATIONS).await);
    assert_eq!(ok(version(&client).await), Some(MIGRATIONS.len() as u32));
}

#[tokio::test]
async fn upgrade_keeps_rows_written_by_an_older_schema() {
    let mut client = fresh("upgrade").await;
    ok(migrate(&mut client, "test", &MIGRATIONS[..1]).await);
    client
        .batch_execute(
            "INSERT INTO message (account, uid, size, state, delivered_at, attempts)
             VALUES ('alice', 'uid-1', 1234, 'delivered', 1700000000, 1);
             INSERT INTO message (account, uid, size, state, attempts, last_error, retry_at)
             VALUES ('alice', 'uid-2', 99, 'rejected', 3, '554 no', 1700003600)",
        )
        .await
        .unwrap();
    ok(migrate(&mut client, "test", MIGRATIONS).await);
    let rows = client
        .query(
            "SELECT uid, size, state, attempts, last_error, size_known FROM message ORDER BY uid",
            &[],
        )
        .await
        .unwrap();
    let rows: Vec<(String, i64, String, i64, Option<String>, bool)> = (rows.iter())
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    assert_eq!(
        rows,
        [
            ("uid-1".into(), 1234, "delivered".into(), 1, None, true),
            (
                "uid-2".into(),
                99,
                "rejected".into(),
                3,
                Some("554 no".into()),
                true
            ),
        ]
    );
    // Schema 2's new state and table are there.
    client
        .batch_execute(
            "INSERT INTO message (account, uid, size, state, attempts)
             VALUES ('alice', 'uid-3', 5, 'partial', 1)",
        )
        .await
        .unwrap();
    assert!(exists(&client, "recipient").await);
}

#[tokio::test]
async fn a_failed_step_is_rolled_back_with_its_version() {
    let mut client = fresh("failed_step").await;
    let broken = "CREATE TABLE half_done (x BIGINT); SELECT no_such_function();";
    let failure = migrate(&mut client, "test", &[MIGRATIONS[0], broken]).await;
    let Err(failure) = failure else {
        panic!("the broken step ran");
    };
    let err = failure.into_error("test", "migrate");
    assert!(
        matches!(err, LedgerError::MigrateDatabase { version: 2, .. }),
        "{err:?}"
    );
    assert_eq!(ok(version(&client).await), Some(1));
    assert!(!exists(&client, "half_done").await);
}

#[tokio::test]
async fn two_runners_at_once_apply_each_step_once() {
    let mut first = fresh("two_runners").await;
    let name = format!("m_two_runners_{}", std::process::id());
    let mut second = connect(&name).await;
    let (a, b) = tokio::join!(
        migrate(&mut first, "test", MIGRATIONS),
        migrate(&mut second, "test", MIGRATIONS)
    );
    ok(a);
    ok(b);
    assert_eq!(ok(version(&first).await), Some(MIGRATIONS.len() as u32));
}
