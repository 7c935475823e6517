//! The recipients and refusals of the SQLite ledger.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use super::Store;
use crate::ledger::{LedgerError, RecipientRecord, RecipientRefusal, RecipientState};

impl ToSql for RecipientState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for RecipientState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        Self::parse(text)
            .ok_or_else(|| FromSqlError::Other(format!("unknown recipient state {text:?}").into()))
    }
}

/// The recipients of every message of `account` still to be delivered
/// (partial, or rejected after a partial delivery), by uid: the messages
/// whose next delivery depends on who already has them.
pub(super) fn of_waiting_messages(
    conn: &Connection,
    account: &str,
) -> rusqlite::Result<HashMap<String, Vec<RecipientRecord>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.uid, r.address, r.state, r.reply
         FROM recipient AS r JOIN message AS m ON m.account = r.account AND m.uid = r.uid
         WHERE r.account = ?1 AND m.state IN ('partial', 'rejected')",
    )?;
    let rows = stmt.query_map([account], |row| {
        let record = RecipientRecord {
            address: row.get(1)?,
            state: row.get(2)?,
            reply: row.get(3)?,
        };
        Ok((row.get::<_, String>(0)?, record))
    })?;
    let mut by_uid: HashMap<String, Vec<RecipientRecord>> = HashMap::new();
    for row in rows {
        let (uid, record) = row?;
        by_uid.entry(uid).or_default().push(record);
    }
    Ok(by_uid)
}

/// The latest refusal of every recipient that has not had the message
/// since, oldest first; kept after the message is forgotten.
pub(super) fn refusals(conn: &Connection) -> rusqlite::Result<Vec<RecipientRefusal>> {
    let mut stmt = conn.prepare(
        "SELECT account, uid, address, state, reply, at FROM refusal
         WHERE id IN (SELECT max(id) FROM refusal GROUP BY account, uid, address)
         ORDER BY at, id",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok(RecipientRefusal {
            account: row.get(0)?,
            uid: row.get(1)?,
            address: row.get(2)?,
            state: row.get(3)?,
            reply: row.get(4)?,
            at: row.get(5)?,
        })
    })?;
    rows.collect()
}

impl Store {
    /// See [`refusals`].
    pub(in crate::ledger) async fn refused_recipients(
        self: &Arc<Self>,
    ) -> Result<Vec<RecipientRefusal>, LedgerError> {
        self.run("read the refused recipients", |conn| refusals(conn))
            .await
    }
}
