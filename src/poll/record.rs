//! The record stage of the transfer: the ledger's side of the pipeline.
//!
//! It takes every outcome that is ready, writes the batch in one
//! transaction (one fsync), and only then reports the messages as
//! recorded, which is what lets the fetch stage queue their DELEs. A
//! rejected message bound for the quarantine is saved, durably, before
//! its row says so.

use std::time::Instant;

use tokio::sync::{mpsc, SemaphorePermit};
use tracing::warn;

use super::recipients::{recorded, settle, Settled};
use super::transfer::{Context, Step};
use super::PollError;
use crate::config::Account;
use crate::deliver::Outcome;
use crate::ledger::Change;
use crate::quarantine;

/// What the record stage is told.
pub(super) enum ToRecord<'a> {
    /// The relay's verdicts; the message itself comes back only when it
    /// may have to be quarantined. The permit is returned at the commit.
    Outcome {
        step: usize,
        /// One per recipient the message was sent to this time.
        outcomes: Vec<(String, Outcome)>,
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

/// Counts of what the record stage committed to the ledger.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub delivered: u64,
    pub deferred: u64,
    pub rejected: u64,
    pub unsettled: bool,
}

impl Tally {
    fn add(&mut self, batch: Tally) {
        self.delivered += batch.delivered;
        self.deferred += batch.deferred;
        self.rejected += batch.rejected;
        self.unsettled |= batch.unsettled;
    }
}

/// Records outcomes as they come, counting each batch into `tally` once
/// its commit returned: the counts stay true when a later stage fails, so
/// a poll that ends in an error still reports what it committed.
pub(super) async fn record(
    cx: &Context<'_>,
    plan: &[Step],
    mut inbox: mpsc::UnboundedReceiver<ToRecord<'_>>,
    recorded: mpsc::UnboundedSender<Recorded>,
    tally: &mut Tally,
) -> Result<(), PollError> {
    let account = cx.account;
    while let Some(first) = inbox.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = inbox.try_recv() {
            batch.push(more);
        }
        let mut changes = Vec::with_capacity(batch.len());
        let mut permits = Vec::with_capacity(batch.len());
        let mut done = Vec::with_capacity(batch.len());
        let mut counted = Tally::default();
        for item in batch {
            let (step, outcomes, message) = match item {
                ToRecord::Deleted(uid) => {
                    changes.push(Change::Deleted { uid });
                    continue;
                }
                ToRecord::Outcome {
                    step,
                    outcomes,
                    message,
                    _pending,
                } => {
                    permits.push(_pending);
                    (step, outcomes, message)
                }
            };
            let delete = settle_message(
                account,
                &plan[step],
                &outcomes,
                message,
                &mut changes,
                &mut counted,
            )
            .await?;
            done.push(Recorded { step, delete });
        }
        if !changes.is_empty() {
            let started = Instant::now();
            cx.ledger.commit(&account.name, changes).await?;
            cx.events.committed(started.elapsed());
        }
        tally.add(counted);
        drop(permits);
        for done in done {
            // Fetch may have stopped on an error; the records stand anyway.
            let _ = recorded.send(done);
        }
    }
    Ok(())
}

/// Records one message's outcomes: the message's new state first, then
/// each recipient's (their rows belong to the message's). Returns whether
/// the message may now be deleted.
async fn settle_message(
    account: &Account,
    step: &Step,
    outcomes: &[(String, Outcome)],
    message: Option<Vec<u8>>,
    changes: &mut Vec<Change>,
    tally: &mut Tally,
) -> Result<bool, PollError> {
    let Step {
        uid,
        size,
        retry_at,
        earlier,
        ..
    } = step;
    let (uid, size) = (uid.clone(), *size);
    if outcomes.iter().any(|(_, o)| *o == Outcome::Delivered) {
        tally.delivered += 1;
    }
    for (address, outcome) in outcomes {
        match outcome {
            Outcome::Rejected(reply) if outcomes.len() > 1 || !earlier.is_empty() => {
                warn!(uid, address, %reply, "relay refused this recipient for good");
            }
            Outcome::Deferred(reason) => {
                warn!(uid, address, %reason, "relay refused this recipient for now; it is tried again, alone, at the next poll");
            }
            _ => {}
        }
    }
    let delete = match (settle(earlier, outcomes), &account.quarantine_dir, message) {
        (Settled::Delivered, ..) => {
            changes.push(Change::Delivered {
                uid: uid.clone(),
                size,
            });
            true
        }
        (Settled::Partial, ..) => {
            tally.deferred += 1;
            tally.unsettled = true;
            changes.push(Change::Partial {
                uid: uid.clone(),
                size,
            });
            false
        }
        (Settled::Deferred(reason), ..) => {
            warn!(uid, %reason, "relay deferred the message; it stays on the server for the next poll");
            tally.deferred += 1;
            tally.unsettled = true;
            return Ok(false);
        }
        (Settled::Rejected(reply), Some(dir), Some(message)) => {
            tally.rejected += 1;
            let path = quarantine::save(dir, &account.name, &uid, message).await?;
            warn!(uid, %reply, path = %path.display(), "relay rejected the message; quarantined");
            changes.push(Change::Quarantined {
                uid: uid.clone(),
                size,
                reply,
                path,
            });
            true
        }
        (Settled::Rejected(reply), ..) => {
            warn!(uid, %reply, "relay rejected the message; it stays on the server");
            tally.rejected += 1;
            tally.unsettled = true;
            changes.push(Change::Rejected {
                uid: uid.clone(),
                size,
                reply,
                retry_at: *retry_at,
            });
            false
        }
    };
    changes.extend(outcomes.iter().map(|(address, outcome)| {
        let (state, reply) = recorded(outcome);
        Change::Recipient {
            uid: uid.clone(),
            address: address.clone(),
            state,
            reply,
        }
    }));
    Ok(delete)
}
