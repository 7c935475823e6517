use super::*;
use crate::ledger::sqlite::polls;
use rusqlite::StatementStatus;

#[tokio::test]
async fn fresh_file_is_at_the_latest_schema() {
    let (_dir, path, _ledger) = file_ledger();
    assert_eq!(user_version(&path) as usize, MIGRATIONS.len());
}

#[tokio::test]
async fn reopening_keeps_rows_and_schema() {
    let (_dir, path, ledger) = file_ledger();
    ledger.record_delivered("alice", "u1", 10).await.unwrap();
    drop(ledger);
    let ledger = Ledger::open(&path).unwrap();
    assert_eq!(user_version(&path) as usize, MIGRATIONS.len());
    assert!(ledger.messages("alice").await.unwrap().contains_key("u1"));
}

#[test]
fn newer_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let found = MIGRATIONS.len() as u32 + 3;
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", found)
        .unwrap();
    let err = Ledger::open(&path).unwrap_err();
    assert!(matches!(err, LedgerError::TooNew { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "ledger {} was written by a newer popferry (schema {found}, this build knows {})",
            path.display(),
            MIGRATIONS.len()
        )
    );
    assert_eq!(user_version(&path), found);
}

#[test]
fn file_is_private_and_folders_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/popferry/ledger.db");
    Ledger::open(&path).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
}

#[test]
fn second_polling_handle_is_refused_until_the_first_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let first = Ledger::open(&path).unwrap();
    let clone = first.clone();
    let err = Ledger::open(&path).unwrap_err();
    assert!(matches!(err, LedgerError::InUse { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(
        matches!(LedgerReader::open(&path), Ok(Opened::Ready(_))),
        "status reads beside a poller"
    );
    drop(first);
    let err = Ledger::open(&path).unwrap_err();
    assert!(
        matches!(err, LedgerError::InUse { .. }),
        "a clone keeps the lock"
    );
    drop(clone);
    Ledger::open(&path).expect("free once every clone is gone");
}

#[tokio::test]
async fn connection_is_durable_and_in_wal_mode() {
    let (_dir, path, ledger) = file_ledger();
    let mode: String = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(pragma::<i64>(&ledger, "synchronous"), 2, "FULL");
    assert_eq!(pragma::<i64>(&ledger, "foreign_keys"), 1);
    assert_eq!(pragma::<i64>(&ledger, "busy_timeout"), 5000);
    ledger.start_poll("alice").await.unwrap();
    assert_eq!(
        pragma::<i64>(&ledger, "synchronous"),
        1,
        "NORMAL for history"
    );
    ledger.messages("alice").await.unwrap();
    assert_eq!(pragma::<i64>(&ledger, "synchronous"), 2, "FULL again after");
    ledger.start_poll("bob").await.unwrap();
    assert_eq!(pragma::<i64>(&ledger, "synchronous"), 1, "NORMAL again");
    ledger.start_poll("carol").await.unwrap();
    ledger.reconcile("alice", HashSet::new()).await.unwrap();
    assert_eq!(pragma::<i64>(&ledger, "synchronous"), 2, "FULL for a write");
}

/// Each poll runs the same few statements with other values; parsing them
/// again each time was most of the ledger's CPU.
#[tokio::test]
async fn a_polls_statements_are_prepared_once() {
    let ledger = Ledger::open_in_memory().unwrap();
    for account in ["alice", "bob", "carol", "alice"] {
        let id = ledger.start_poll(account).await.unwrap();
        ledger.reconcile(account, HashSet::new()).await.unwrap();
        (ledger.finish_poll(id, &PollReport::default()).await).unwrap();
    }
    let conn = conn(&ledger);
    for sql in [polls::START_POLL, polls::TRIM_HISTORY, polls::FINISH_POLL] {
        let statement = conn.prepare_cached(sql).unwrap();
        let runs = statement.get_status(StatementStatus::Run);
        let again = statement.get_status(StatementStatus::RePrepare);
        assert_eq!((runs, again), (4, 0), "runs and re-preparations of {sql}");
    }
}

#[tokio::test]
async fn full_disk_is_reported_as_such() {
    let ledger = Ledger::open_in_memory().unwrap();
    {
        let conn = conn(&ledger);
        let pages: i64 = conn
            .pragma_query_value(None, "page_count", |row| row.get(0))
            .unwrap();
        conn.pragma_update(None, "max_page_count", pages).unwrap();
    }
    let huge_reply = "4".repeat(1 << 20);
    let err = ledger
        .record_rejected("alice", "u1", 1, &huge_reply, 0)
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::DiskFull { .. }), "{err:?}");
    assert!(err.to_string().contains("is full"), "{err}");
}
