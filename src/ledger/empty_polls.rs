//! Pooled polls that found nothing, counted in memory and written in
//! batches (`migrations/0005_empty_polls.sql`).
//!
//! A WAKE answered `[ACTIVITY/NONE]` followed by SLEE is a poll that read
//! nothing, delivered nothing and deleted nothing: nothing about the
//! guarantee depends on its record. Writing two poll rows for it cost more
//! than its two round trips, so [`Ledger::note_empty_poll`] only counts it,
//! and [`Ledger::flush_empty_polls`] (the daemon's timer, and its shutdown)
//! writes what was counted: one row per account for a run of such polls,
//! extended in place while nothing else happened in between. Any other
//! poll of the account writes the account's run first, in its own start
//! transaction, so the history stays in order.
//!
//! What a crash loses is the runs counted since the last flush: their
//! times and counts, never anything about a message.

use std::collections::HashMap;
use std::sync::{MutexGuard, PoisonError};

use rusqlite::{params, Connection, OptionalExtension};

use super::{sql_int, Ledger, LedgerError};

/// Consecutive empty polls of one account not written yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EmptyRun {
    /// Unix seconds: the first poll's start.
    first: i64,
    /// Unix seconds: the last poll's end.
    last: i64,
    polls: u64,
}

/// The runs not written yet, by account.
pub(super) type Pending = HashMap<String, EmptyRun>;

impl Ledger {
    /// Counts a pooled poll of `account` that found nothing, from
    /// `started_at` to `finished_at` (unix seconds), in memory only.
    pub fn note_empty_poll(&self, account: &str, started_at: i64, finished_at: i64) {
        let mut pending = self.pending();
        match pending.get_mut(account) {
            Some(run) => {
                run.last = finished_at;
                run.polls += 1;
            }
            None => {
                let run = EmptyRun {
                    first: started_at,
                    last: finished_at,
                    polls: 1,
                };
                pending.insert(account.to_owned(), run);
            }
        }
    }

    /// Writes every counted run of empty polls, in one transaction. On an
    /// error the runs stay counted and the next flush tries again.
    pub async fn flush_empty_polls(&self) -> Result<(), LedgerError> {
        let runs: Vec<(String, EmptyRun)> = self.pending().drain().collect();
        if runs.is_empty() {
            return Ok(());
        }
        let written = runs.clone();
        let result = self
            .run_unsynced("record polls that found nothing", move |conn| {
                let tx = conn.transaction()?;
                for (account, run) in &written {
                    write(&tx, account, *run)?;
                }
                tx.commit()
            })
            .await;
        if result.is_err() {
            self.restore(runs);
        }
        result
    }

    /// How many empty polls of `account` are counted but not written.
    pub(super) fn pending_empty_polls(&self, account: &str) -> u64 {
        self.pending().get(account).map_or(0, |run| run.polls)
    }

    /// Takes `account`'s counted run, for the caller to write with
    /// [`write`] in a transaction of its own.
    pub(super) fn take_empty_run(&self, account: &str) -> Option<EmptyRun> {
        self.pending().remove(account)
    }

    /// Puts back runs whose write failed, merged with any counted since.
    pub(super) fn restore(&self, runs: Vec<(String, EmptyRun)>) {
        let mut pending = self.pending();
        for (account, run) in runs {
            let merged = match pending.get(&account) {
                Some(newer) => EmptyRun {
                    first: run.first,
                    last: newer.last,
                    polls: run.polls + newer.polls,
                },
                None => run,
            };
            pending.insert(account, merged);
        }
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        // The map is only ever replaced whole or updated by one statement,
        // so a panic elsewhere cannot leave it half-changed.
        (self.inner.empty)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
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
