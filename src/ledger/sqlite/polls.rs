//! The poll history of the SQLite ledger.

use std::sync::Arc;

use rusqlite::types::{ToSqlOutput, Type};
use rusqlite::{params, Connection, OptionalExtension, Row, ToSql, TransactionBehavior};

use super::{empty_polls, get_u64, sql_int, Store};
use crate::ledger::empty_polls::EmptyRun;
use crate::ledger::polls::POLL_HISTORY;
use crate::ledger::{now, LedgerError, PollId, PollOutcome, PollReport, PollSummary};

/// A poll starts with the count of the one before it, so a poll that never
/// finishes leaves the count as it was.
pub(super) const START_POLL: &str = "INSERT INTO poll (account, started_at, quiet_polls)
    VALUES (?1, ?2, coalesce((SELECT quiet_polls FROM poll WHERE account = ?1
                              ORDER BY id DESC LIMIT 1), 0))";

/// All but the account's latest [`POLL_HISTORY`] polls.
pub(super) const TRIM_HISTORY: &str = "DELETE FROM poll WHERE account = ?1 AND id <= (
    SELECT id FROM poll WHERE account = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)";

/// Only a successful poll moves the count: on from the poll before if it
/// found nothing new, to 0 if it did.
pub(super) const FINISH_POLL: &str = "UPDATE poll SET finished_at = ?2, outcome = ?3,
    listed = ?4, delivered = ?5, deleted = ?6, deferred = ?7, rejected = ?8, error = ?9,
    new_listed = ?10,
    quiet_polls = CASE WHEN ?3 = 'failed' THEN quiet_polls
                       WHEN ?10 > 0 THEN 0 ELSE quiet_polls + 1 END
    WHERE id = ?1 AND outcome = 'running'";

impl ToSql for PollOutcome {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

/// The columns [`poll_summary`] reads, in its order.
pub(super) const POLL_COLUMNS: &str = "started_at, finished_at, outcome, listed, delivered, \
     deleted, deferred, rejected, error, empty_polls, new_listed, quiet_polls";

/// Reads a poll row's columns from `first` on, in the order of
/// [`POLL_COLUMNS`].
pub(super) fn poll_summary(row: &Row<'_>, first: usize) -> rusqlite::Result<PollSummary> {
    Ok(PollSummary {
        started_at: row.get(first)?,
        finished_at: row.get(first + 1)?,
        outcome: outcome(row, first + 2)?,
        listed: get_u64(row, first + 3)?,
        delivered: get_u64(row, first + 4)?,
        deleted: get_u64(row, first + 5)?,
        deferred: get_u64(row, first + 6)?,
        rejected: get_u64(row, first + 7)?,
        error: row.get(first + 8)?,
        empty_polls: get_u64(row, first + 9)?,
        new_listed: get_u64(row, first + 10)?,
        quiet_polls: get_u64(row, first + 11)?,
    })
}

fn outcome(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<PollOutcome>> {
    let text: String = row.get(index)?;
    PollOutcome::parse(&text).map_err(|problem| {
        rusqlite::Error::FromSqlConversionFailure(index, Type::Text, problem.into())
    })
}

impl Store {
    /// See [`Ledger::start_poll`](crate::ledger::Ledger::start_poll):
    /// `empty` is the account's run of empty polls, written first.
    pub(in crate::ledger) async fn start_poll(
        self: &Arc<Self>,
        account: &str,
        empty: Option<EmptyRun>,
    ) -> Result<PollId, LedgerError> {
        let account = account.to_owned();
        self.run_unsynced("record the start of a poll", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(run) = empty {
                empty_polls::write(&tx, &account, run)?;
            }
            // Cached statements: at hundreds of polls a second, parsing
            // the SQL of each was a tenth of the daemon's CPU.
            (tx.prepare_cached(START_POLL)?).execute(params![account, now()])?;
            let id = tx.last_insert_rowid();
            (tx.prepare_cached(TRIM_HISTORY)?).execute(params![account, POLL_HISTORY])?;
            tx.commit()?;
            Ok(PollId(id))
        })
        .await
    }

    /// See [`Ledger::finish_poll`](crate::ledger::Ledger::finish_poll).
    pub(in crate::ledger) async fn finish_poll(
        self: &Arc<Self>,
        id: PollId,
        report: PollReport,
    ) -> Result<(), LedgerError> {
        let changed = self
            .run_unsynced("record the end of a poll", move |conn| {
                (conn.prepare_cached(FINISH_POLL)?).execute(params![
                    id.0,
                    now(),
                    report.outcome,
                    sql_int(report.listed)?,
                    sql_int(report.delivered)?,
                    sql_int(report.deleted)?,
                    sql_int(report.deferred)?,
                    sql_int(report.rejected)?,
                    report.error,
                    sql_int(report.new_listed)?,
                ])
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

    /// The written half of [`Ledger::quiet_polls`](crate::ledger::Ledger::quiet_polls).
    pub(in crate::ledger) async fn quiet_polls(
        self: &Arc<Self>,
        account: &str,
    ) -> Result<u64, LedgerError> {
        let name = account.to_owned();
        self.run("read the polls that found nothing", move |conn| {
            latest_quiet_polls(conn, &name)
        })
        .await
    }
}

/// The `quiet_polls` of `account`'s latest row; 0 for an account never
/// polled.
pub(super) fn latest_quiet_polls(conn: &Connection, account: &str) -> rusqlite::Result<u64> {
    let quiet: Option<i64> = conn
        .prepare_cached("SELECT quiet_polls FROM poll WHERE account = ?1 ORDER BY id DESC LIMIT 1")?
        .query_row([account], |row| row.get(0))
        .optional()?;
    Ok(quiet.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}
