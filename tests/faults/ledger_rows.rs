//! The ledger as the test sees it: opened read-only with rusqlite, apart
//! from popferry's own code, so a check does not trust what it checks.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

/// uid to state (`delivered`, `deleted`, `rejected`, `quarantined`) of
/// every message row of `account`.
pub fn states(ledger: &Path, account: &str) -> HashMap<String, String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(ledger, flags)
        .unwrap_or_else(|err| panic!("open {} read-only: {err}", ledger.display()));
    let mut stmt = conn
        .prepare("SELECT uid, state FROM message WHERE account = ?1")
        .expect("prepare");
    let rows = stmt
        .query_map([account], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query");
    rows.collect::<rusqlite::Result<_>>().expect("read rows")
}

/// How many rows of `account` are in `state`.
pub fn count(states: &HashMap<String, String>, state: &str) -> usize {
    states.values().filter(|s| *s == state).count()
}
