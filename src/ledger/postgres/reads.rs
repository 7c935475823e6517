//! What the PostgreSQL ledger reads: a poll's records, and everything
//! `popferry status` shows. Text is sorted byte by byte (`COLLATE "C"`) as
//! SQLite sorts it, whatever the database's collation.

use std::collections::HashMap;

use tokio_postgres::{GenericClient, IsolationLevel, Row};

use super::{unsigned, Failure, Store};
use crate::ledger::report::RECENT_POLLS;
use crate::ledger::{
    AccountDetail, AccountStatus, LedgerError, MessageRecord, MessageState, OnServer, PollOutcome,
    PollSummary, RecipientRecord, RecipientRefusal, RecipientState, Snapshot, Totals,
    WaitingMessage,
};

/// The poll columns [`poll_summary`] reads, in its order.
const POLL_COLUMNS: &str = "started_at, finished_at, outcome, listed, delivered, deleted, \
     deferred, rejected, error, empty_polls, new_listed, quiet_polls";

/// Every account seen in any table, with its counts and its latest poll:
/// SQLite's query, with `FILTER` for its sums of booleans.
const STATUS_SQL: &str = "
WITH accounts AS (
    SELECT account FROM message UNION SELECT account FROM poll
    UNION SELECT account FROM total
), listed AS (
    SELECT account,
           count(*) FILTER (WHERE state = 'delivered') AS delivered,
           count(*) FILTER (WHERE state = 'partial') AS waiting,
           count(*) FILTER (WHERE state = 'rejected') AS rejected,
           count(*) FILTER (WHERE state = 'quarantined') AS quarantined
    FROM message GROUP BY account
), totals AS (
    SELECT account,
           sum(count) FILTER (WHERE kind = 'delivered')::bigint AS delivered,
           sum(count) FILTER (WHERE kind = 'deleted')::bigint AS deleted,
           sum(count) FILTER (WHERE kind = 'rejected')::bigint AS rejected,
           sum(count) FILTER (WHERE kind = 'quarantined')::bigint AS quarantined
    FROM total GROUP BY account
), latest AS (
    SELECT account, max(id) AS id FROM poll GROUP BY account
)
SELECT a.account,
       coalesce(t.delivered, 0), coalesce(t.deleted, 0),
       coalesce(t.rejected, 0), coalesce(t.quarantined, 0),
       coalesce(l.delivered, 0), coalesce(l.waiting, 0),
       coalesce(l.rejected, 0), coalesce(l.quarantined, 0),
       p.started_at, p.finished_at, p.outcome,
       p.listed, p.delivered, p.deleted, p.deferred, p.rejected, p.error,
       p.empty_polls, p.new_listed, p.quiet_polls
FROM accounts AS a
LEFT JOIN totals AS t ON t.account = a.account
LEFT JOIN listed AS l ON l.account = a.account
LEFT JOIN latest ON latest.account = a.account
LEFT JOIN poll AS p ON p.id = latest.id
ORDER BY a.account COLLATE \"C\"";

pub(super) fn message_state(text: &str) -> Result<MessageState, Failure> {
    MessageState::parse(text).ok_or_else(|| Failure::Value(format!("unknown state {text:?}")))
}

fn recipient_state(text: &str) -> Result<RecipientState, Failure> {
    RecipientState::parse(text).ok_or_else(|| Failure::Value(format!("unknown state {text:?}")))
}

fn get_u64(row: &Row, index: usize) -> Result<u64, Failure> {
    unsigned(row.try_get(index)?)
}

fn get_u32(row: &Row, index: usize) -> Result<u32, Failure> {
    let n: i64 = row.try_get(index)?;
    u32::try_from(n).map_err(|_| Failure::Value(format!("{n} attempts")))
}

impl Store {
    /// See [`Ledger::messages`](crate::ledger::Ledger::messages).
    pub(in crate::ledger) async fn messages(
        &self,
        account: &str,
    ) -> Result<HashMap<String, MessageRecord>, LedgerError> {
        let result = async {
            let client = self.pool.get().await?;
            records(&**client, account).await
        };
        self.finish("read the recorded messages", result.await)
    }

    /// See [`Ledger::knows_account`](crate::ledger::Ledger::knows_account).
    pub(in crate::ledger) async fn knows_account(
        &self,
        account: &str,
    ) -> Result<bool, LedgerError> {
        let result = async {
            let client = self.pool.get().await?;
            let row = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM message WHERE account = $1)
                         OR EXISTS (SELECT 1 FROM poll
                                    WHERE account = $1 AND outcome = 'ok' AND listed > 0)",
                    &[&account],
                )
                .await?;
            Ok(row.try_get(0)?)
        };
        self.finish("look up the account's history", result.await)
    }

    /// See [`Ledger::refused_recipients`](crate::ledger::Ledger::refused_recipients).
    pub(in crate::ledger) async fn refused_recipients(
        &self,
    ) -> Result<Vec<RecipientRefusal>, LedgerError> {
        let result = async {
            let client = self.pool.get().await?;
            refusals(&**client).await
        };
        self.finish("read the refused recipients", result.await)
    }

    /// See [`Ledger::status`](crate::ledger::Ledger::status).
    pub(in crate::ledger) async fn status(&self) -> Result<Vec<AccountStatus>, LedgerError> {
        let result = async {
            let client = self.pool.get().await?;
            statuses(&**client).await
        };
        self.finish("read the status", result.await)
    }
}

/// Every message recorded for `account`, with the recipients of those
/// whose next delivery depends on who already has them.
pub(super) async fn records(
    client: &impl GenericClient,
    account: &str,
) -> Result<HashMap<String, MessageRecord>, Failure> {
    let rows = client
        .query(
            "SELECT uid, size, state, attempts, retry_at, last_error, size_known
             FROM message WHERE account = $1",
            &[&account],
        )
        .await?;
    let mut records = HashMap::with_capacity(rows.len());
    for row in rows {
        let size_known: bool = row.try_get(6)?;
        let record = MessageRecord {
            uid: row.try_get(0)?,
            size: size_known.then(|| get_u64(&row, 1)).transpose()?,
            state: message_state(row.try_get(2)?)?,
            attempts: get_u32(&row, 3)?,
            retry_at: row.try_get(4)?,
            last_error: row.try_get(5)?,
            recipients: Vec::new(),
        };
        records.insert(record.uid.clone(), record);
    }
    for (uid, list) in of_waiting_messages(client, account).await? {
        if let Some(record) = records.get_mut(&uid) {
            record.recipients = list;
        }
    }
    Ok(records)
}

/// The recipients of `account`'s messages still to be delivered, by uid.
async fn of_waiting_messages(
    client: &impl GenericClient,
    account: &str,
) -> Result<HashMap<String, Vec<RecipientRecord>>, Failure> {
    let rows = client
        .query(
            "SELECT r.uid, r.address, r.state, r.reply
             FROM recipient AS r JOIN message AS m ON m.account = r.account AND m.uid = r.uid
             WHERE r.account = $1 AND m.state IN ('partial', 'rejected')",
            &[&account],
        )
        .await?;
    let mut by_uid: HashMap<String, Vec<RecipientRecord>> = HashMap::new();
    for row in rows {
        let record = RecipientRecord {
            address: row.try_get(1)?,
            state: recipient_state(row.try_get(2)?)?,
            reply: row.try_get(3)?,
        };
        by_uid.entry(row.try_get(0)?).or_default().push(record);
    }
    Ok(by_uid)
}

/// The latest refusal of every recipient, oldest first.
async fn refusals(client: &impl GenericClient) -> Result<Vec<RecipientRefusal>, Failure> {
    let rows = client
        .query(
            "SELECT account, uid, address, state, reply, at FROM refusal
             WHERE id IN (SELECT max(id) FROM refusal GROUP BY account, uid, address)
             ORDER BY at, id",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(RecipientRefusal {
                account: row.try_get(0)?,
                uid: row.try_get(1)?,
                address: row.try_get(2)?,
                state: recipient_state(row.try_get(3)?)?,
                reply: row.try_get(4)?,
                at: row.try_get(5)?,
            })
        })
        .collect()
}

/// A poll row's columns from `first` on, in the order of [`POLL_COLUMNS`].
fn poll_summary(row: &Row, first: usize) -> Result<PollSummary, Failure> {
    let outcome: &str = row.try_get(first + 2)?;
    Ok(PollSummary {
        started_at: row.try_get(first)?,
        finished_at: row.try_get(first + 1)?,
        outcome: PollOutcome::parse(outcome).map_err(Failure::Value)?,
        listed: get_u64(row, first + 3)?,
        delivered: get_u64(row, first + 4)?,
        deleted: get_u64(row, first + 5)?,
        deferred: get_u64(row, first + 6)?,
        rejected: get_u64(row, first + 7)?,
        error: row.try_get(first + 8)?,
        empty_polls: get_u64(row, first + 9)?,
        new_listed: get_u64(row, first + 10)?,
        quiet_polls: get_u64(row, first + 11)?,
    })
}

async fn statuses(client: &impl GenericClient) -> Result<Vec<AccountStatus>, Failure> {
    let rows = client.query(STATUS_SQL, &[]).await?;
    rows.iter()
        .map(|row| {
            let started_at: Option<i64> = row.try_get(9)?;
            Ok(AccountStatus {
                account: row.try_get(0)?,
                totals: Totals {
                    delivered: get_u64(row, 1)?,
                    deleted: get_u64(row, 2)?,
                    rejected: get_u64(row, 3)?,
                    quarantined: get_u64(row, 4)?,
                },
                on_server: OnServer {
                    delivered: get_u64(row, 5)?,
                    waiting: get_u64(row, 6)?,
                    rejected: get_u64(row, 7)?,
                    quarantined: get_u64(row, 8)?,
                },
                last_poll: started_at.map(|_| poll_summary(row, 9)).transpose()?,
            })
        })
        .collect()
}

async fn detail(client: &impl GenericClient, account: &str) -> Result<AccountDetail, Failure> {
    let polls = client
        .query(
            &format!(
                "SELECT {POLL_COLUMNS} FROM poll WHERE account = $1 ORDER BY id DESC LIMIT $2"
            ),
            &[&account, &RECENT_POLLS],
        )
        .await?;
    let polls = polls
        .iter()
        .map(|row| poll_summary(row, 0))
        .collect::<Result<_, _>>()?;
    let mut by_uid = of_waiting_messages(client, account).await?;
    let rows = client
        .query(
            "SELECT uid, size, state, attempts, last_error, retry_at FROM message
             WHERE account = $1 AND state IN ('partial', 'rejected')
             ORDER BY coalesce(retry_at, 0), uid COLLATE \"C\"",
            &[&account],
        )
        .await?;
    let mut waiting = Vec::with_capacity(rows.len());
    for row in rows {
        let uid: String = row.try_get(0)?;
        let mut recipients = by_uid.remove(&uid).unwrap_or_default();
        recipients.sort_by(|a, b| a.address.cmp(&b.address));
        waiting.push(WaitingMessage {
            uid,
            size: get_u64(&row, 1)?,
            state: message_state(row.try_get(2)?)?,
            attempts: get_u32(&row, 3)?,
            reason: row.try_get(4)?,
            retry_at: row.try_get(5)?,
            recipients,
        });
    }
    Ok(AccountDetail { polls, waiting })
}

/// Everything `status` shows, in one read-only REPEATABLE READ
/// transaction: one moment, even while a poller commits beside it.
pub(super) async fn snapshot(
    client: &mut tokio_postgres::Client,
    detailed: &[String],
) -> Result<Snapshot, Failure> {
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let counting_since: i64 = tx
        .query_one("SELECT since FROM counting", &[])
        .await?
        .try_get(0)?;
    let accounts = statuses(&tx).await?;
    let refusals = refusals(&tx).await?;
    let mut details = Vec::with_capacity(detailed.len());
    for account in detailed {
        details.push((account.clone(), detail(&tx, account).await?));
    }
    tx.commit().await?;
    Ok(Snapshot {
        counting_since,
        accounts,
        refusals,
        details,
    })
}
