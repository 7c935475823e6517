//! The per-message half of the ledger: what happened to each unique-id.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{params, ToSql, TransactionBehavior};

use super::recipients::{self, RecipientRecord};
use super::{get_u64, now, Change, Ledger, LedgerError};

/// Where a message stands. See `migrations/0001_ledger.sql` for the full
/// story of each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageState {
    /// The relay accepted it; the server has not confirmed a deletion yet.
    Delivered,
    /// The server confirmed the deletion.
    Deleted,
    /// The relay refused it for now; it must stay on the server.
    Rejected,
    /// Refused for good and saved to the quarantine; it may be deleted.
    Quarantined,
    /// Some recipients have it or refused it for good, others are still to
    /// be tried; it must stay on the server.
    Partial,
}

impl MessageState {
    /// The name the ledger stores, also used by `status --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Deleted => "deleted",
            Self::Rejected => "rejected",
            Self::Quarantined => "quarantined",
            Self::Partial => "partial",
        }
    }
}

impl ToSql for MessageState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for MessageState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "delivered" => Ok(Self::Delivered),
            "deleted" => Ok(Self::Deleted),
            "rejected" => Ok(Self::Rejected),
            "quarantined" => Ok(Self::Quarantined),
            "partial" => Ok(Self::Partial),
            other => Err(FromSqlError::Other(
                format!("unknown message state {other:?}").into(),
            )),
        }
    }
}

/// One message as the ledger remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub uid: String,
    /// The size the server listed when the message was handled. A listing
    /// with the same uid but another size is a different message.
    ///
    /// `None` for a unique-id imported from another tool's state, which
    /// names no sizes: it is the same message whatever size is listed,
    /// until a poll that lists it records the size (see [`Self::is_for`]).
    pub size: Option<u64>,
    pub state: MessageState,
    /// Delivery attempts for this uid and size, the latest included.
    pub attempts: u32,
    /// Unix seconds before which a rejected message should not be retried.
    pub retry_at: Option<i64>,
    /// The relay's reply to the latest refused attempt.
    pub last_error: Option<String>,
    /// What each recipient tried so far made of it; filled in only for a
    /// [`MessageState::Partial`] or [`MessageState::Rejected`] message, the
    /// states whose next attempt needs it.
    pub recipients: Vec<RecipientRecord>,
}

impl MessageRecord {
    /// Whether a listed message of `size` bytes is the one recorded here.
    /// A reused unique-id with a different size is a new message; an
    /// imported one, whose size is not known yet, is taken on its
    /// unique-id alone, since the tool that recorded it saw that message
    /// under that unique-id.
    pub fn is_for(&self, size: u64) -> bool {
        self.size.is_none_or(|recorded| recorded == size)
    }
}

impl Ledger {
    /// Every message recorded for `account`, keyed by uid.
    pub async fn messages(
        &self,
        account: &str,
    ) -> Result<HashMap<String, MessageRecord>, LedgerError> {
        let account = account.to_owned();
        self.run("read the recorded messages", move |conn| {
            records(conn, &account)
        })
        .await
    }

    /// Records that the relay accepted the message. Once this returns `Ok`
    /// the message may be deleted from the server.
    pub async fn record_delivered(
        &self,
        account: &str,
        uid: &str,
        size: u64,
    ) -> Result<(), LedgerError> {
        let change = Change::Delivered {
            uid: uid.to_owned(),
            size,
        };
        self.record("record a delivery", account, change).await?;
        Ok(())
    }

    /// Records that the relay refused the message for now, with its reply;
    /// the message stays on the server until `retry_at`. Returns the number
    /// of attempts made so far, for the caller's give-up policy.
    pub async fn record_rejected(
        &self,
        account: &str,
        uid: &str,
        size: u64,
        reply: &str,
        retry_at: i64,
    ) -> Result<u32, LedgerError> {
        let change = Change::Rejected {
            uid: uid.to_owned(),
            size,
            reply: reply.to_owned(),
            retry_at,
        };
        self.record("record a rejection", account, change).await
    }

    /// Records that the message was given up on and saved at `path`. Call it
    /// only once that copy is durably written: from here on the message may
    /// be deleted from the server.
    pub async fn record_quarantined(
        &self,
        account: &str,
        uid: &str,
        size: u64,
        reply: &str,
        path: &Path,
    ) -> Result<(), LedgerError> {
        let change = Change::Quarantined {
            uid: uid.to_owned(),
            size,
            reply: reply.to_owned(),
            path: path.to_owned(),
        };
        self.record("record a quarantine", account, change).await?;
        Ok(())
    }

    async fn record(
        &self,
        action: &'static str,
        account: &str,
        change: Change,
    ) -> Result<u32, LedgerError> {
        let account = account.to_owned();
        self.run(action, move |conn| change.apply(conn, &account, now()))
            .await
    }

    /// Applies `changes` in order, in one transaction: one fsync for a
    /// whole batch of messages. Once this returns `Ok` every delivered or
    /// quarantined message in the batch may be deleted from the server;
    /// on an error none of them may. No changes is no transaction: a poll
    /// that found nothing should not pay a trip to the blocking pool.
    pub async fn commit(&self, account: &str, changes: Vec<Change>) -> Result<(), LedgerError> {
        if changes.is_empty() {
            return Ok(());
        }
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

    /// Records that the server confirmed deleting `uids` (its +OK to QUIT),
    /// all in one transaction.
    pub async fn mark_deleted(&self, account: &str, uids: &[String]) -> Result<(), LedgerError> {
        let changes = uids
            .iter()
            .map(|uid| Change::Deleted { uid: uid.clone() })
            .collect();
        self.commit(account, changes).await
    }

    /// Forgets the messages of `account` whose uid is not in `listed` and
    /// returns how many that was, with the records of the rest, keyed by
    /// uid: what a poll needs to know of its listing, in one transaction and
    /// one trip to the blocking pool.
    ///
    /// `listed` must be the server's complete UIDL listing from this
    /// session: a uid missing from it is gone from the server, so its row
    /// can no longer prevent a duplicate. A partial listing would make the
    /// ledger forget messages still on the server and deliver them again.
    pub async fn reconcile(
        &self,
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

/// What [`Ledger::reconcile`] found.
#[derive(Debug)]
pub struct Reconciled {
    /// Rows forgotten because the server no longer lists their uid.
    pub pruned: u64,
    /// The records of the listed uids the ledger knows.
    pub known: HashMap<String, MessageRecord>,
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
