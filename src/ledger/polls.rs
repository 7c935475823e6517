//! The per-poll half of the ledger: a history of polls, and the status view
//! built from it and from the message table.

use std::fmt;

use rusqlite::types::{ToSqlOutput, Type};
use rusqlite::{params, Row, ToSql, TransactionBehavior};

use super::{get_u64, now, sql_int, Ledger, LedgerError};

/// How many polls of each account are kept. Only the latest is shown by
/// `status`; the rest are for an operator digging with `sqlite3`, and
/// without a bound a daemon polling every minute would grow the file by
/// half a million rows a year per account.
pub(super) const POLL_HISTORY: i64 = 1000;

/// Identifies a poll between [`Ledger::start_poll`] and
/// [`Ledger::finish_poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PollId(i64);

impl fmt::Display for PollId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a finished poll ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PollOutcome {
    /// The default, so a report starts out as a success with zero counts.
    #[default]
    Ok,
    Failed,
}

impl ToSql for PollOutcome {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
        }))
    }
}

/// What a poll did, as reported by its caller when it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    pub outcome: PollOutcome,
    /// Messages in the server's listing.
    pub listed: u64,
    /// Messages the relay accepted during this poll.
    pub delivered: u64,
    /// Deletions the server confirmed.
    pub deleted: u64,
    /// Rejected messages skipped because their retry time had not come.
    pub deferred: u64,
    /// Messages the relay refused during this poll.
    pub rejected: u64,
    /// Why the poll failed, for `PollOutcome::Failed`.
    pub error: Option<String>,
}

/// The latest poll of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollSummary {
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds; `None` while `outcome` is `None`.
    pub finished_at: Option<i64>,
    /// `None` when no end was recorded: the poll is still running, or the
    /// process stopped (crash, kill, power loss) before it could finish.
    /// The ledger cannot tell these apart; the next poll of the account
    /// supersedes the row either way.
    pub outcome: Option<PollOutcome>,
    /// The counts of [`PollReport`]; all zero while `outcome` is `None`.
    pub listed: u64,
    pub delivered: u64,
    pub deleted: u64,
    pub deferred: u64,
    pub rejected: u64,
    pub error: Option<String>,
}

/// One account as `popferry status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStatus {
    pub account: String,
    pub last_poll: Option<PollSummary>,
    /// Messages the server no longer needs to keep: delivered, quarantined,
    /// or already deleted.
    pub delivered: u64,
    /// Messages safe to delete whose deletion the server has not confirmed
    /// yet, i.e. delivered or quarantined. Nonzero between polls means the
    /// last session ended before QUIT; the next poll deletes them.
    pub awaiting_delete: u64,
    /// Messages waiting on the server for another delivery attempt: refused
    /// as a whole, or (partial) still owed to some recipients.
    pub rejected: u64,
    /// Messages given up on and saved to the quarantine.
    pub quarantined: u64,
}

/// Every account seen in either table, with its message counts and the
/// poll with the highest id. One statement, so one consistent snapshot.
const STATUS_SQL: &str = "
WITH accounts AS (
    SELECT account FROM message UNION SELECT account FROM poll
), counts AS (
    SELECT account,
           sum(state NOT IN ('rejected', 'partial')) AS delivered,
           sum(state IN ('delivered', 'quarantined')) AS awaiting_delete,
           sum(state IN ('rejected', 'partial')) AS rejected,
           sum(state = 'quarantined') AS quarantined
    FROM message GROUP BY account
), latest AS (
    SELECT account, max(id) AS id FROM poll GROUP BY account
)
SELECT a.account,
       coalesce(c.delivered, 0), coalesce(c.awaiting_delete, 0),
       coalesce(c.rejected, 0), coalesce(c.quarantined, 0),
       p.started_at, p.finished_at, p.outcome,
       p.listed, p.delivered, p.deleted, p.deferred, p.rejected, p.error
FROM accounts AS a
LEFT JOIN counts AS c ON c.account = a.account
LEFT JOIN latest AS l ON l.account = a.account
LEFT JOIN poll AS p ON p.id = l.id
ORDER BY a.account";

fn account_status(row: &Row<'_>) -> rusqlite::Result<AccountStatus> {
    let started_at: Option<i64> = row.get(5)?;
    let last_poll = match started_at {
        None => None,
        Some(started_at) => Some(PollSummary {
            started_at,
            finished_at: row.get(6)?,
            outcome: outcome(row, 7)?,
            listed: get_u64(row, 8)?,
            delivered: get_u64(row, 9)?,
            deleted: get_u64(row, 10)?,
            deferred: get_u64(row, 11)?,
            rejected: get_u64(row, 12)?,
            error: row.get(13)?,
        }),
    };
    Ok(AccountStatus {
        account: row.get(0)?,
        last_poll,
        delivered: get_u64(row, 1)?,
        awaiting_delete: get_u64(row, 2)?,
        rejected: get_u64(row, 3)?,
        quarantined: get_u64(row, 4)?,
    })
}

fn outcome(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<PollOutcome>> {
    let text: String = row.get(index)?;
    match text.as_str() {
        "running" => Ok(None),
        "ok" => Ok(Some(PollOutcome::Ok)),
        "failed" => Ok(Some(PollOutcome::Failed)),
        other => Err(rusqlite::Error::FromSqlConversionFailure(
            index,
            Type::Text,
            format!("unknown poll outcome {other:?}").into(),
        )),
    }
}

impl Ledger {
    /// Records that a poll of `account` begins, and trims the account's
    /// history to the latest polls.
    pub async fn start_poll(&self, account: &str) -> Result<PollId, LedgerError> {
        let account = account.to_owned();
        self.run_unsynced("record the start of a poll", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO poll (account, started_at) VALUES (?1, ?2)",
                params![account, now()],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "DELETE FROM poll WHERE account = ?1 AND id <= (
                     SELECT id FROM poll WHERE account = ?1
                     ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                params![account, POLL_HISTORY],
            )?;
            tx.commit()?;
            Ok(PollId(id))
        })
        .await
    }

    /// Records how the poll `id` ended. Finishing a poll twice, or one that
    /// was never started, is refused with [`LedgerError::PollNotRunning`].
    pub async fn finish_poll(&self, id: PollId, report: &PollReport) -> Result<(), LedgerError> {
        let report = report.clone();
        let changed = self
            .run_unsynced("record the end of a poll", move |conn| {
                conn.execute(
                    "UPDATE poll SET finished_at = ?2, outcome = ?3, listed = ?4,
                         delivered = ?5, deleted = ?6, deferred = ?7, rejected = ?8, error = ?9
                     WHERE id = ?1 AND outcome = 'running'",
                    params![
                        id.0,
                        now(),
                        report.outcome,
                        sql_int(report.listed)?,
                        sql_int(report.delivered)?,
                        sql_int(report.deleted)?,
                        sql_int(report.deferred)?,
                        sql_int(report.rejected)?,
                        report.error,
                    ],
                )
            })
            .await?;
        if changed == 0 {
            return Err(LedgerError::PollNotRunning {
                path: self.path().to_owned(),
                id,
            });
        }
        Ok(())
    }

    /// Every account the ledger knows, by name.
    pub async fn status(&self) -> Result<Vec<AccountStatus>, LedgerError> {
        self.run("read the status", |conn| {
            let mut stmt = conn.prepare(STATUS_SQL)?;
            let rows = stmt.query_map([], account_status)?;
            rows.collect()
        })
        .await
    }
}
