//! The SQL of the running totals (`crate::ledger::totals` has the rules).

use rusqlite::{params, Connection, OptionalExtension};

use super::sql_int;
use crate::ledger::totals::Kind;
use crate::ledger::MessageState;

/// Raises the `kind` total of `account` unless the message `uid` of `size`
/// is already counted there. Call it before the message's row changes.
pub(super) fn count(
    conn: &Connection,
    account: &str,
    uid: &str,
    size: u64,
    kind: Kind,
) -> rusqlite::Result<()> {
    let prior: Option<MessageState> = conn
        .prepare_cached("SELECT state FROM message WHERE account = ?1 AND uid = ?2 AND size = ?3")?
        .query_row(params![account, uid, sql_int(size)?], |row| row.get(0))
        .optional()?;
    if prior.is_some_and(|prior| kind.counted_in(prior)) {
        return Ok(());
    }
    raise(conn, "SELECT ?1, ?2, 1", params![account, kind.as_str()])
}

/// Raises the `deleted` total of `account` if `uid` is a message the server
/// may delete and has not been counted as deleted yet. Call it before the
/// row is marked deleted.
pub(super) fn count_deletion(conn: &Connection, account: &str, uid: &str) -> rusqlite::Result<()> {
    raise(
        conn,
        // `WHERE true` tells SQLite's parser the upsert clause is not a join.
        "SELECT ?1, 'deleted', 1 FROM message
         WHERE true AND account = ?1 AND uid = ?2 AND state IN ('delivered', 'quarantined')",
        params![account, uid],
    )
}

/// Adds the row `select` yields (account, kind, 1) to the totals.
fn raise(conn: &Connection, select: &str, params: &[&dyn rusqlite::ToSql]) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO total (account, kind, count) {select}
         ON CONFLICT (account, kind) DO UPDATE SET count = count + 1"
    ))?
    .execute(params)?;
    Ok(())
}
