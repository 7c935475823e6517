//! Polls that found nothing, counted in memory and written in batches
//! (`migrations/0005_empty_polls.sql`).
//!
//! A WAKE answered `[ACTIVITY/NONE]`, or a listing of messages all dealt
//! with already, is a poll that delivered nothing and deleted nothing:
//! nothing about the guarantee depends on its record. Writing two poll rows
//! for it cost more than its round trips, so [`Ledger::note_empty_poll`]
//! only counts it, and [`Ledger::flush_empty_polls`] (the daemon's timer,
//! its shutdown, the end of `fetch`) writes what was counted: one row per
//! account for a run of such polls, extended in place while nothing else
//! happened in between. Any other poll of the account writes the account's
//! run first, in its own start transaction, so the history stays in order.
//!
//! What a crash loses is the runs counted since the last flush: their
//! times and counts, never anything about a message.

use std::collections::HashMap;
use std::sync::{MutexGuard, PoisonError};

use super::{Engine, Ledger, LedgerError};

/// Consecutive empty polls of one account not written yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EmptyRun {
    /// Unix seconds: the first poll's start.
    pub first: i64,
    /// Unix seconds: the last poll's end.
    pub last: i64,
    pub polls: u64,
}

/// The runs not written yet, by account.
pub(super) type Pending = HashMap<String, EmptyRun>;

impl Ledger {
    /// Counts a poll of `account` that found nothing, from
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
        let result = match &self.inner.engine {
            Engine::Sqlite(store) => store.flush_empty_polls(runs.clone()).await,
            Engine::Postgres(store) => store.flush_empty_polls(&runs).await,
        };
        if result.is_err() {
            self.restore(runs);
        }
        result
    }

    /// How many empty polls of `account` are counted but not written.
    pub(super) fn pending_empty_polls(&self, account: &str) -> u64 {
        self.pending().get(account).map_or(0, |run| run.polls)
    }

    /// Takes `account`'s counted run, for the engine to write in the
    /// transaction that starts the account's next poll.
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
