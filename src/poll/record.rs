//! The record stage of the transfer: the ledger's side of the pipeline.
//!
//! It takes every outcome that is ready, writes the batch in one
//! transaction (one fsync), and only then reports the messages as
//! recorded, which is what lets the fetch stage queue their DELEs. A
//! rejected message bound for the quarantine is saved, durably, before
//! its row says so.

use tokio::sync::{mpsc, SemaphorePermit};
use tracing::warn;

use super::transfer::{Context, Step};
use super::PollError;
use crate::deliver::Outcome;
use crate::ledger::Change;
use crate::quarantine;

/// What the record stage is told.
pub(super) enum ToRecord<'a> {
    /// The relay's verdict; the message itself comes back only when it
    /// may have to be quarantined. The permit is returned at the commit.
    Outcome {
        step: usize,
        outcome: Outcome,
        message: Option<Vec<u8>>,
        _pending: SemaphorePermit<'a>,
    },
    /// The server deleted it for good (DELI, or already gone).
    Deleted(String),
}

/// A fetched message's outcome is committed; `delete` if it may go.
pub(super) struct Recorded {
    pub step: usize,
    pub delete: bool,
}

/// Counts kept by the record stage.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub delivered: u64,
    pub deferred: u64,
    pub rejected: u64,
    pub unsettled: bool,
}

pub(super) async fn record(
    cx: &Context<'_>,
    plan: &[Step],
    mut inbox: mpsc::UnboundedReceiver<ToRecord<'_>>,
    recorded: mpsc::UnboundedSender<Recorded>,
) -> Result<Tally, PollError> {
    let account = cx.account;
    let mut tally = Tally::default();
    while let Some(first) = inbox.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = inbox.try_recv() {
            batch.push(more);
        }
        let mut changes = Vec::with_capacity(batch.len());
        let mut permits = Vec::with_capacity(batch.len());
        let mut done = Vec::with_capacity(batch.len());
        for item in batch {
            let (step, outcome, message) = match item {
                ToRecord::Deleted(uid) => {
                    changes.push(Change::Deleted { uid });
                    continue;
                }
                ToRecord::Outcome {
                    step,
                    outcome,
                    message,
                    _pending,
                } => {
                    permits.push(_pending);
                    (step, outcome, message)
                }
            };
            let Step {
                uid,
                size,
                retry_at,
                ..
            } = &plan[step];
            let (uid, size) = (uid.clone(), *size);
            let delete = match (outcome, &account.quarantine_dir, message) {
                (Outcome::Delivered, ..) => {
                    tally.delivered += 1;
                    changes.push(Change::Delivered { uid, size });
                    true
                }
                (Outcome::Deferred(reason), ..) => {
                    warn!(uid, %reason, "relay deferred the message; it stays on the server for the next poll");
                    tally.deferred += 1;
                    tally.unsettled = true;
                    false
                }
                (Outcome::Rejected(reply), Some(dir), Some(message)) => {
                    tally.rejected += 1;
                    let path = quarantine::save(dir, &account.name, &uid, message).await?;
                    warn!(uid, %reply, path = %path.display(), "relay rejected the message; quarantined");
                    changes.push(Change::Quarantined {
                        uid,
                        size,
                        reply,
                        path,
                    });
                    true
                }
                (Outcome::Rejected(reply), ..) => {
                    warn!(uid, %reply, "relay rejected the message; it stays on the server");
                    tally.rejected += 1;
                    tally.unsettled = true;
                    changes.push(Change::Rejected {
                        uid,
                        size,
                        reply,
                        retry_at: *retry_at,
                    });
                    false
                }
            };
            done.push(Recorded { step, delete });
        }
        if !changes.is_empty() {
            cx.ledger.commit(&account.name, changes).await?;
        }
        drop(permits);
        for done in done {
            // Fetch may have stopped on an error; the records stand anyway.
            let _ = recorded.send(done);
        }
    }
    Ok(tally)
}
