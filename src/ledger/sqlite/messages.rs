//! The per-message half of the SQLite ledger.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{params, ToSql, TransactionBehavior};

use super::{get_u64, recipients, Store};
use crate::ledger::{now, Change, LedgerError, MessageRecord, MessageState, Reconciled};

impl ToSql for MessageState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for MessageState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        Self::parse(text)
            .ok_or_else(|| FromSqlError::Other(format!("unknown message state {text:?}").into()))
    }
}

impl Store {
    /// See [`Ledger::messages`](crate::ledger::Ledger::messages).
    pub(in crate::ledger) async fn messages(
        self: &Arc<Self>,
        account: &str,
    ) -> Result<HashMap<String, MessageRecord>, LedgerError> {
        let account = account.to_owned();
        self.run("read the recorded messages", move |conn| {
            records(conn, &account)
        })
        .await
    }

    /// One change on its own, outside a transaction; returns the
    /// message's attempt count.
    pub(in crate::ledger) async fn record(
        self: &Arc<Self>,
        action: &'static str,
        account: &str,
        change: Change,
    ) -> Result<u32, LedgerError> {
        let account = account.to_owned();
        self.run(action, move |conn| change.apply(conn, &account, now()))
            .await
    }

    /// See [`Ledger::commit`](crate::ledger::Ledger::commit): one
    /// IMMEDIATE transaction, one fsync.
    pub(in crate::ledger) async fn commit(
        self: &Arc<Self>,
        account: &str,
        changes: Vec<Change>,
    ) -> Result<(), LedgerError> {
        let account = account.to_owned();
        self.run("record deliveries", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let at = now();
            for change in &changes {
                change.apply(&tx, &account, at)?;
            }
            tx.commit()
        })
        .await
    }

    /// See [`Ledger::reconcile`](crate::ledger::Ledger::reconcile).
    pub(in crate::ledger) async fn reconcile(
        self: &Arc<Self>,
        account: &str,
        listed: HashSet<String>,
    ) -> Result<Reconciled, LedgerError> {
        let account = account.to_owned();
        self.run(
            "compare the listing with the recorded messages",
            move |conn| {
                // Deleting the missing rows one by one keeps every statement
                // small however long the listing is; the transaction makes it
                // a single commit.
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut known = records(&tx, &account)?;
                let before = known.len();
                {
                    let mut delete =
                        tx.prepare_cached("DELETE FROM message WHERE account = ?1 AND uid = ?2")?;
                    for uid in known.keys().filter(|uid| !listed.contains(*uid)) {
                        delete.execute(params![account, uid])?;
                    }
                }
                tx.commit()?;
                known.retain(|uid, _| listed.contains(uid));
                let pruned = (before - known.len()) as u64;
                Ok(Reconciled { pruned, known })
            },
        )
        .await
    }
}

/// Every message recorded for `account`, with the recipients of those
/// whose next delivery depends on who already has them.
fn records(
    conn: &rusqlite::Connection,
    account: &str,
) -> rusqlite::Result<HashMap<String, MessageRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT uid, size, state, attempts, retry_at, last_error, size_known
         FROM message WHERE account = ?1",
    )?;
    let rows = stmt.query_map([account], |row| {
        let size_known: bool = row.get(6)?;
        Ok(MessageRecord {
            uid: row.get(0)?,
            size: size_known.then(|| get_u64(row, 1)).transpose()?,
            state: row.get(2)?,
            attempts: row.get(3)?,
            retry_at: row.get(4)?,
            last_error: row.get(5)?,
            recipients: Vec::new(),
        })
    })?;
    let mut records: HashMap<String, MessageRecord> = rows
        .map(|record| record.map(|r| (r.uid.clone(), r)))
        .collect::<rusqlite::Result<_>>()?;
    for (uid, list) in recipients::of_waiting_messages(conn, account)? {
        if let Some(record) = records.get_mut(&uid) {
            record.recipients = list;
        }
    }
    Ok(records)
}
