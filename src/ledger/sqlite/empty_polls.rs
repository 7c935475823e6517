//! The SQL of the empty-poll runs (`crate::ledger::empty_polls`).

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use super::{sql_int, Store};
use crate::ledger::empty_polls::EmptyRun;
use crate::ledger::LedgerError;

impl Store {
    /// Writes every run in `runs`, in one unsynced transaction.
    pub(in crate::ledger) async fn flush_empty_polls(
        self: &Arc<Self>,
        runs: Vec<(String, EmptyRun)>,
    ) -> Result<(), LedgerError> {
        self.run_unsynced("record polls that found nothing", move |conn| {
            let tx = conn.transaction()?;
            for (account, run) in &runs {
                write(&tx, account, *run)?;
            }
            tx.commit()
        })
        .await
    }
}

/// Writes `run` for `account`: it extends the account's latest row when
/// that row is a run of empty polls too, and is a new row otherwise.
pub(super) fn write(conn: &Connection, account: &str, run: EmptyRun) -> rusqlite::Result<()> {
    let polls = sql_int(run.polls)?;
    let latest: Option<(i64, i64, i64)> = conn
        .prepare_cached(
            "SELECT id, empty_polls, quiet_polls FROM poll
             WHERE account = ?1 ORDER BY id DESC LIMIT 1",
        )?
        .query_row([account], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .optional()?;
    // Each poll of the run found nothing, so each adds to the count.
    match latest {
        Some((id, empty, _)) if empty > 0 => {
            conn.prepare_cached(
                "UPDATE poll SET finished_at = ?2, empty_polls = empty_polls + ?3,
                     quiet_polls = quiet_polls + ?3
                 WHERE id = ?1",
            )?
            .execute(params![id, run.last, polls])?;
        }
        latest => {
            let quiet = latest
                .map_or(0, |(_, _, quiet)| quiet)
                .saturating_add(polls);
            conn.prepare_cached(
                "INSERT INTO poll (account, started_at, finished_at, outcome, empty_polls,
                     quiet_polls)
                 VALUES (?1, ?2, ?3, 'ok', ?4, ?5)",
            )?
            .execute(params![account, run.first, run.last, polls, quiet])?;
        }
    }
    Ok(())
}
