//! The poll's own entry in the ledger's history, which `status` shows.
//!
//! A fresh poll goes on record as running before it connects, so one cut
//! short by a crash stays visible. A pooled poll goes on record only once
//! its WAKE says there is something to do: one that woke to
//! `[ACTIVITY/NONE]` and slept again found nothing, and is only counted
//! in memory ([`Ledger::note_empty_poll`]), to be written in a batch.

use std::time::Instant;

use tracing::Span;

use super::decide::now;
use super::{PollError, PollOptions, Polled};
use crate::ledger::{Ledger, LedgerError, PollId, PollOutcome, PollReport};
use crate::session::Kept;

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
    pub(super) async fn end(mut self, report: &PollReport) -> Result<(), LedgerError> {
        if self.id.is_none() && report.error.is_none() {
            self.ledger
                .note_empty_poll(self.account, self.started_at, now());
            return Ok(());
        }
        let id = self.begin().await?;
        self.ledger.finish_poll(id, report).await
    }
}

/// A poll that failed before it began, because its start could not be put
/// on record: told like any failed poll (the log, metrics and /healthz),
/// since a ledger that cannot take this write takes no other either.
pub(super) fn unrecorded(
    options: &PollOptions,
    started: Instant,
    parked: Option<Kept>,
    e: LedgerError,
) -> Polled {
    let e = PollError::from(e);
    let report = PollReport {
        outcome: PollOutcome::Failed,
        error: Some(e.to_string()),
        ..PollReport::default()
    };
    (options.events).finished(&report, Some(&e), started.elapsed());
    tracing::warn!(
        error = e.with_causes(),
        "poll failed: cannot put it on record"
    );
    Polled {
        result: Err(e),
        parked,
        login_delay: None,
    }
}
