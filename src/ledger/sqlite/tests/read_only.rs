use std::fs;

use super::*;

/// The names in `dir`, sorted, to show nothing was created beside the
/// ledger.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn ready(path: &Path) -> LedgerReader {
    match LedgerReader::open(path).unwrap() {
        Opened::Ready(reader) => reader,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_ledger_is_reported_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/ledger.db");
    assert!(matches!(LedgerReader::open(&path), Ok(Opened::Missing)));
    assert!(names(dir.path()).is_empty());
}

#[test]
fn an_empty_file_is_a_ledger_with_nothing_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    fs::write(&path, b"").unwrap();
    assert!(matches!(LedgerReader::open(&path), Ok(Opened::Empty)));
}

#[test]
fn a_closed_ledger_is_read_without_creating_files_beside_it() {
    let (dir, path, ledger) = file_ledger();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(ledger.record_delivered("alice", "u1", 10))
        .unwrap();
    drop(ledger);
    let before = names(dir.path());
    assert_eq!(before, ["ledger.db"], "the poller cleaned up its WAL");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    let snapshot = ready(&path).snapshot(&[]).unwrap();
    assert_eq!(snapshot.accounts[0].totals.delivered, 1);
    assert_eq!(names(dir.path()), before);
}

#[tokio::test]
async fn a_ledger_in_use_is_read_with_the_pollers_latest_commits() {
    let (_dir, path, ledger) = file_ledger();
    ledger.record_delivered("alice", "u1", 10).await.unwrap();
    let mut reader = ready(&path);
    ledger.record_delivered("alice", "u2", 10).await.unwrap();
    let detailed = ["alice".to_owned()];
    let snapshot = reader.snapshot(&detailed).unwrap();
    assert_eq!(snapshot.accounts[0].totals.delivered, 2);
    assert!(snapshot.counting_since > 0);
}

#[test]
fn an_older_schema_is_refused_with_the_way_to_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let mut conn = Connection::open(&path).unwrap();
    super::super::migrate::migrate(&mut conn, &path, &MIGRATIONS[..2]).unwrap();
    drop(conn);
    let err = LedgerReader::open(&path).unwrap_err();
    assert!(
        matches!(err, LedgerError::Older { found: 2, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("run `popferry fetch` once"),
        "{err}"
    );
    assert_eq!(user_version(&path), 2, "status does not upgrade");
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    fs::write(&path, b"[[account]]\nname = \"alice\"\n").unwrap();
    let err = LedgerReader::open(&path).unwrap_err();
    assert!(matches!(err, LedgerError::NotALedger { .. }), "{err:?}");
}
