//! Brings a ledger file up to the schema this build knows.
//!
//! The schema version lives in `PRAGMA user_version` (a field of the file
//! header, so it needs no table of its own). Migration *n* is the *n*-th
//! entry of [`MIGRATIONS`]; it runs in one transaction together with the
//! bump to version *n*, so a crash mid-upgrade leaves the file at *n - 1*
//! with none of migration *n* applied, and the next start simply retries.

use std::cmp::Ordering;
use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::ledger::LedgerError;

/// Every migration, oldest first. Released entries are never edited or
/// reordered: a ledger in the field has already run them and would not run
/// them again.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/0001_ledger.sql"),
    include_str!("../../../migrations/0002_recipients.sql"),
    include_str!("../../../migrations/0003_totals.sql"),
    include_str!("../../../migrations/0004_imported.sql"),
    include_str!("../../../migrations/0005_empty_polls.sql"),
    include_str!("../../../migrations/0006_quiet_polls.sql"),
    include_str!("../../../migrations/0007_fleet.sql"),
    include_str!("../../../migrations/0008_slot_demand.sql"),
];

/// Applies the entries of `migrations` the file has not run yet.
///
/// Taking the list as an argument, rather than always using
/// [`MIGRATIONS`], lets tests stop at an older schema, fill it with fixture
/// rows and then upgrade it, as a user's real file would be upgraded.
///
/// Each step reads the version inside its own `IMMEDIATE` transaction, so
/// when two processes open a fresh file at once the second waits for the
/// first and then sees that there is nothing left to do, instead of running
/// a migration twice.
pub(super) fn migrate(
    conn: &mut Connection,
    path: &Path,
    migrations: &[&str],
) -> Result<(), LedgerError> {
    let open_error = |source| LedgerError::open(path, source);
    let mut first = None;
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(open_error)?;
        let found: u32 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(open_error)?;
        first.get_or_insert(found);
        let sql = match (found as usize).cmp(&migrations.len()) {
            Ordering::Less => migrations[found as usize],
            Ordering::Equal => {
                drop(tx);
                if first.is_some_and(|first| first < found) {
                    // The steps sit in the WAL until a checkpoint, and a
                    // daemon may write for hours before one: fold them in
                    // now, so the file itself carries the schema `status`
                    // looks for (src/ledger/read_only.rs reads its header).
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                        .map_err(open_error)?;
                }
                // One line for the whole climb: a new file goes through
                // every step, and that is news only as "created".
                match first {
                    Some(0) => tracing::info!(ledger = %path.display(), "ledger created"),
                    Some(from) if from < found => tracing::info!(
                        ledger = %path.display(), from, to = found, "ledger schema upgraded"
                    ),
                    _ => {}
                }
                return Ok(());
            }
            Ordering::Greater => {
                return Err(LedgerError::TooNew {
                    path: path.to_owned(),
                    found,
                    known: migrations.len(),
                })
            }
        };
        let version = found + 1;
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", version))
            .and_then(|()| tx.commit())
            .map_err(|source| LedgerError::migrate(path, version, source))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_version(conn: &Connection) -> u32 {
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap()
    }

    fn table_exists(conn: &Connection, name: &str) -> bool {
        conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [name],
            |row| row.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    }

    #[test]
    fn migrations_apply_one_by_one() {
        let mut conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        migrate(&mut conn, path, &[]).unwrap();
        assert_eq!(user_version(&conn), 0);
        for n in 1..=MIGRATIONS.len() {
            migrate(&mut conn, path, &MIGRATIONS[..n]).unwrap();
            assert_eq!(user_version(&conn) as usize, n);
        }
        assert!(table_exists(&conn, "message"));
        assert!(table_exists(&conn, "poll"));
        // Running the full list again finds nothing to do.
        migrate(&mut conn, path, MIGRATIONS).unwrap();
        assert_eq!(user_version(&conn) as usize, MIGRATIONS.len());
    }

    #[test]
    fn upgrade_keeps_rows_written_by_an_older_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        migrate(&mut conn, path, &MIGRATIONS[..1]).unwrap();
        conn.execute(
            "INSERT INTO message (account, uid, size, state, delivered_at, attempts)
             VALUES ('alice', 'uid-1', 1234, 'delivered', 1700000000, 1)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO message (account, uid, size, state, attempts, last_error, retry_at)
             VALUES ('alice', 'uid-2', 99, 'rejected', 3, '554 no', 1700003600)",
            [],
        )
        .unwrap();
        migrate(&mut conn, path, MIGRATIONS).unwrap();
        assert_eq!(user_version(&conn) as usize, MIGRATIONS.len());
        let rows: Vec<(String, i64, String, i64, Option<String>)> = conn
            .prepare("SELECT uid, size, state, attempts, last_error FROM message ORDER BY uid")
            .unwrap()
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                ("uid-1".into(), 1234, "delivered".into(), 1, None),
                (
                    "uid-2".into(),
                    99,
                    "rejected".into(),
                    3,
                    Some("554 no".into())
                ),
            ]
        );
        // Schema 2's new state and table are there.
        conn.execute(
            "INSERT INTO message (account, uid, size, state, attempts)
             VALUES ('alice', 'uid-3', 5, 'partial', 1)",
            [],
        )
        .unwrap();
        assert!(table_exists(&conn, "recipient"));
    }

    #[test]
    fn failed_migration_is_rolled_back_with_its_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        let broken = "CREATE TABLE half_done (x INTEGER); SELECT no_such_function();";
        let err = migrate(&mut conn, path, &[MIGRATIONS[0], broken]).unwrap_err();
        assert!(
            matches!(err, LedgerError::Migrate { version: 2, .. }),
            "{err:?}"
        );
        assert_eq!(user_version(&conn), 1);
        assert!(!table_exists(&conn, "half_done"));
    }

    #[test]
    fn newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 5).unwrap();
        let err = migrate(&mut conn, Path::new("/srv/ledger.db"), &MIGRATIONS[..1]).unwrap_err();
        assert!(
            matches!(
                err,
                LedgerError::TooNew {
                    found: 5,
                    known: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "ledger /srv/ledger.db was written by a newer popferry (schema 5, this build knows 1)"
        );
        assert_eq!(user_version(&conn), 5);
    }
}
