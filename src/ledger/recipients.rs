//! The per-recipient half of the ledger: what each envelope recipient of a
//! message made of it (`migrations/0002_recipients.sql`).

use std::collections::HashMap;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use super::{Ledger, LedgerError};

/// Refusals kept per account for `status`, beyond the recipient rows of
/// the messages still on record: enough to see what went wrong last week,
/// bounded so a recipient refused on every poll cannot grow the file.
pub(super) const REFUSAL_HISTORY: i64 = 1000;

/// Where one recipient of a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecipientState {
    /// The relay took the message for this recipient.
    Delivered,
    /// Refused for now; tried again, alone, at the next poll.
    Deferred,
    /// Refused for good.
    Rejected,
}

impl RecipientState {
    /// The name the ledger stores, also used by `status --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Deferred => "deferred",
            Self::Rejected => "rejected",
        }
    }
}

impl ToSql for RecipientState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for RecipientState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "delivered" => Ok(Self::Delivered),
            "deferred" => Ok(Self::Deferred),
            "rejected" => Ok(Self::Rejected),
            other => Err(FromSqlError::Other(
                format!("unknown recipient state {other:?}").into(),
            )),
        }
    }
}

/// One recipient of a message as the ledger remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientRecord {
    pub address: String,
    pub state: RecipientState,
    /// The relay's words for a refusal.
    pub reply: Option<String>,
}

/// A recipient the relay refused, for `popferry status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientRefusal {
    pub account: String,
    pub uid: String,
    pub address: String,
    pub state: RecipientState,
    pub reply: String,
    /// Unix seconds of the refusal.
    pub at: i64,
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

impl Ledger {
    /// See [`refusals`].
    pub async fn refused_recipients(&self) -> Result<Vec<RecipientRefusal>, LedgerError> {
        self.run("read the refused recipients", |conn| refusals(conn))
            .await
    }
}
