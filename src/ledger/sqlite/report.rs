//! What `popferry status` reads from a SQLite ledger: plain queries over
//! a connection, so the read-only handle of `read_only.rs` and the
//! poller's [`Store`] share them.

use std::sync::Arc;

use rusqlite::{Connection, Row};

use super::polls::{poll_summary, POLL_COLUMNS};
use super::{get_u64, recipients, Store};
use crate::ledger::report::RECENT_POLLS;
use crate::ledger::{
    AccountDetail, AccountStatus, LedgerError, OnServer, PollSummary, Snapshot, Totals,
    WaitingMessage,
};

/// Every account seen in any table, with its counts and the poll with the
/// highest id.
const STATUS_SQL: &str = "
WITH accounts AS (
    SELECT account FROM message UNION SELECT account FROM poll
    UNION SELECT account FROM total
), listed AS (
    SELECT account,
           sum(state = 'delivered') AS delivered,
           sum(state = 'partial') AS waiting,
           sum(state = 'rejected') AS rejected,
           sum(state = 'quarantined') AS quarantined
    FROM message GROUP BY account
), totals AS (
    SELECT account,
           sum(count * (kind = 'delivered')) AS delivered,
           sum(count * (kind = 'deleted')) AS deleted,
           sum(count * (kind = 'rejected')) AS rejected,
           sum(count * (kind = 'quarantined')) AS quarantined
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
ORDER BY a.account";

fn account_status(row: &Row<'_>) -> rusqlite::Result<AccountStatus> {
    let started_at: Option<i64> = row.get(9)?;
    Ok(AccountStatus {
        account: row.get(0)?,
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
}

pub(super) fn statuses(conn: &Connection) -> rusqlite::Result<Vec<AccountStatus>> {
    let mut stmt = conn.prepare(STATUS_SQL)?;
    let rows = stmt.query_map([], account_status)?;
    rows.collect()
}

fn recent_polls(conn: &Connection, account: &str) -> rusqlite::Result<Vec<PollSummary>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {POLL_COLUMNS} FROM poll WHERE account = ?1 ORDER BY id DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map((account, RECENT_POLLS), |row| poll_summary(row, 0))?;
    rows.collect()
}

fn waiting(conn: &Connection, account: &str) -> rusqlite::Result<Vec<WaitingMessage>> {
    let mut stmt = conn.prepare(
        "SELECT uid, size, state, attempts, last_error, retry_at FROM message
         WHERE account = ?1 AND state IN ('partial', 'rejected')
         ORDER BY coalesce(retry_at, 0), uid",
    )?;
    let mut by_uid = recipients::of_waiting_messages(conn, account)?;
    let rows = stmt.query_map([account], |row| {
        Ok(WaitingMessage {
            uid: row.get(0)?,
            size: get_u64(row, 1)?,
            state: row.get(2)?,
            attempts: row.get(3)?,
            reason: row.get(4)?,
            retry_at: row.get(5)?,
            recipients: Vec::new(),
        })
    })?;
    rows.map(|message| {
        message.map(|mut message| {
            message.recipients = by_uid.remove(&message.uid).unwrap_or_default();
            message.recipients.sort_by(|a, b| a.address.cmp(&b.address));
            message
        })
    })
    .collect()
}

/// Reads a [`Snapshot`] inside one read transaction, so every count comes
/// from the same moment even while a poller commits beside it.
pub(super) fn snapshot(conn: &mut Connection, detailed: &[String]) -> rusqlite::Result<Snapshot> {
    let tx = conn.transaction()?;
    let counting_since = tx.query_row("SELECT since FROM counting", [], |row| row.get(0))?;
    let accounts = statuses(&tx)?;
    let refusals = recipients::refusals(&tx)?;
    let details = detailed
        .iter()
        .map(|account| {
            let detail = AccountDetail {
                polls: recent_polls(&tx, account)?,
                waiting: waiting(&tx, account)?,
            };
            Ok((account.clone(), detail))
        })
        .collect::<rusqlite::Result<_>>()?;
    tx.finish()?;
    Ok(Snapshot {
        counting_since,
        accounts,
        refusals,
        details,
    })
}

impl Store {
    /// See [`Ledger::status`](crate::ledger::Ledger::status).
    pub(in crate::ledger) async fn status(
        self: &Arc<Self>,
    ) -> Result<Vec<AccountStatus>, LedgerError> {
        self.run("read the status", |conn| statuses(conn)).await
    }
}
