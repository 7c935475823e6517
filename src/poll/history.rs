//! The poll's own entry in the ledger's history, which `status` shows.
//!
//! A poll goes on record as running once its listing shows something to
//! do (a message to fetch, delete or refuse, or one the ledger has not
//! seen), before it acts on any message, so one cut short by a crash
//! stays visible. A poll that found nothing (a WAKE answered
//! `[ACTIVITY/NONE]`, or a listing of messages all dealt with) and ended
//! well is only counted in memory ([`Ledger::note_empty_poll`]), to be
//! written in a batch: at thousands of accounts, most polls find nothing,
//! and writing two rows for each cost more than its login. A poll that
//! failed is always written.

use tracing::{debug, info, Span};

use super::decide::now;
use crate::ledger::{Ledger, LedgerError, PollId, PollReport};

pub(super) struct History<'a> {
    pub(super) ledger: &'a Ledger,
    account: &'a str,
    /// The poll's span, which takes the ledger's poll id once there is one.
    span: Span,
    id: Option<PollId>,
    /// Unix seconds.
    started_at: i64,
}

impl<'a> History<'a> {
    pub(super) fn new(ledger: &'a Ledger, account: &'a str, span: Span) -> History<'a> {
        History {
            ledger,
            account,
            span,
            id: None,
            started_at: now(),
        }
    }

    /// Puts the poll on record as running, once.
    pub(super) async fn begin(&mut self) -> Result<PollId, LedgerError> {
        if let Some(id) = self.id {
            return Ok(id);
        }
        let id = self.ledger.start_poll(self.account).await?;
        // The ledger's poll id ties each log line to the poll's row.
        self.span.record("id", tracing::field::display(id));
        self.id = Some(id);
        Ok(id)
    }

    /// Records how the poll ended: a poll never put on record that ended
    /// well found nothing, and is counted; one that failed is written.
    pub(super) async fn end(mut self, report: &PollReport) -> Result<Entry, LedgerError> {
        if self.id.is_none() && report.error.is_none() {
            self.ledger
                .note_empty_poll(self.account, self.started_at, now());
            return Ok(Entry::Counted);
        }
        let id = self.begin().await?;
        self.ledger.finish_poll(id, report).await?;
        Ok(Entry::Written)
    }
}

/// How a poll that ended well is in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entry {
    /// It found nothing: counted, to be written in a batch.
    Counted,
    Written,
}

/// The line a poll that ended well leaves in the log. One that found
/// nothing, most polls of a daemon with many accounts, is only worth a
/// line when asked for (`-v`, `RUST_LOG=popferry=debug`).
pub(super) fn log_finished(entry: Entry, report: &PollReport, parked: bool, ms: u64) {
    match entry {
        Entry::Counted => debug!(
            listed = report.listed,
            parked, ms, "poll finished: nothing new"
        ),
        Entry::Written => info!(
            listed = report.listed,
            delivered = report.delivered,
            deleted = report.deleted,
            deferred = report.deferred,
            rejected = report.rejected,
            parked,
            ms,
            "poll finished"
        ),
    }
}
