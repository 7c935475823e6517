//! The ledger's unit tests: `file` for the database file itself (schema,
//! mode, lock, durability, a full disk), `rows` for what the methods write,
//! `totals` for the running totals, `read_only` for the handle of `status`,
//! `imported` for unique-ids another program delivered, `empty_polls` for
//! the pooled polls that found nothing, `quiet_polls` for the count adaptive
//! intervals grow with.

mod empty_polls;
mod file;
mod imported;
mod quiet_polls;
mod read_only;
mod recipients;
mod rows;
mod totals;

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, MutexGuard};

use rusqlite::Connection;
use tempfile::TempDir;

use super::migrate::MIGRATIONS;
use super::Store;
use crate::ledger::polls::POLL_HISTORY;
use crate::ledger::*;

/// The engine of a SQLite ledger, to run statements of the tests' own.
pub(super) fn store(ledger: &Ledger) -> &Arc<Store> {
    match &ledger.inner.engine {
        Engine::Sqlite(store) => store,
        Engine::Postgres(_) => unreachable!("these tests open SQLite ledgers"),
    }
}

/// The connection of a SQLite ledger, to look at what the methods wrote.
pub(super) fn conn(ledger: &Ledger) -> MutexGuard<'_, Connection> {
    store(ledger).conn.lock().unwrap()
}

/// A ledger in a fresh folder; the folder lives as long as the `TempDir`.
pub(super) fn file_ledger() -> (TempDir, PathBuf, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let ledger = Ledger::open(&path).unwrap();
    (dir, path, ledger)
}

/// A second connection, to look at the file as another process would.
pub(super) fn user_version(path: &Path) -> u32 {
    Connection::open(path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap()
}

pub(super) fn pragma<T: rusqlite::types::FromSql>(ledger: &Ledger, name: &str) -> T {
    let conn = conn(ledger);
    conn.pragma_query_value(None, name, |row| row.get(0))
        .unwrap()
}

pub(super) fn report(outcome: PollOutcome) -> PollReport {
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
