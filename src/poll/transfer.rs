//! Moving the planned messages, RETR to DELE, as a pipeline.
//!
//! Three stages run at once inside the poll's task, joined by channels:
//!
//! ```text
//!   fetch (POP3) ──message──▶ deliver (SMTP) ──outcome──▶ record (ledger)
//!        ▲                                                      │
//!        └──────────── "committed: may delete" ─────────────────┘
//! ```
//!
//! * **fetch** sends RETRs ahead (a window of commands where the server
//!   offers PIPELINING, one at a time otherwise) and reads the bodies in
//!   order, so message n+1 arrives while message n is being delivered;
//! * **deliver** hands the messages to the relay, up to `[smtp]
//!   max_connections` SMTP transactions at once (their order of arrival is
//!   not kept);
//! * **record** commits every outcome that is ready in one transaction (one
//!   fsync for the batch) and only then tells fetch which messages it may
//!   delete;
//! * fetch queues their DELEs (or DELIs) in the same window as the next
//!   RETRs.
//!
//! So the guarantee stated in [`super`] is unchanged: a DELE leaves only
//! for a message whose delivery the ledger has committed.
//!
//! Memory: RETRs are sent only while the bytes requested and not yet
//! recorded stay within [`FETCH_AHEAD`], or for one message when nothing
//! else is held. That budget counts LIST's sizes, which a server can
//! understate; so the next body is also not read while the bodies already
//! read and not yet recorded reach `FETCH_AHEAD` by their real length (its
//! bytes wait in the socket meanwhile). A poll therefore holds at most
//! `FETCH_AHEAD` of mail plus one message of up to `max_message_size`,
//! whatever the mailbox holds and whatever its listing claims.

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::fetch::{Fetch, Fetched};
use super::recipients::{addressees, pending};
use super::record::{record, Tally, ToRecord};
use super::{Events, PollError, StopFlag};
use crate::config::Account;
use crate::deliver::{Outcome, Relay};
use crate::ledger::{Ledger, RecipientRecord};
use crate::session::Session;

/// Bytes of mail a poll may have requested and not yet recorded.
pub const FETCH_AHEAD: u64 = 8 * 1024 * 1024;
/// Messages with the relay or accepted by it that the ledger has not
/// recorded yet: a message takes one of these before its transaction
/// starts and gives it back at its commit, so however many transactions
/// run at once, this is the most a crash at the worst moment makes
/// popferry deliver twice. 16 lets the default 8 transactions run while
/// a commit's fsync overlaps the next 8 deliveries (`[smtp]
/// max_connections` above 16 gains a poll nothing); it was 8 with one
/// transaction at a time.
pub const UNRECORDED: usize = 16;
/// Commands in flight on a server that offers PIPELINING. A RETR and its
/// DELE take two, so this keeps about 128 small messages on the wire:
/// enough to fill a 20 ms round trip at several thousand messages a
/// second (64 measurably was not). Commands are a few dozen bytes each;
/// [`FETCH_AHEAD`] is what bounds the bodies.
const WINDOW: usize = 256;

/// A listed message the poll will act on.
#[derive(Debug)]
pub(super) struct Step {
    pub n: u32,
    pub uid: String,
    pub size: u64,
    /// RETR and deliver it; otherwise it is already delivered and only
    /// needs deleting (a lost QUIT reply healed).
    pub fetch: bool,
    /// When to try again if the relay rejects it.
    pub retry_at: i64,
    /// What earlier attempts' recipients made of it (a partial message):
    /// those that have it or refused it for good are not sent it again.
    pub earlier: Vec<RecipientRecord>,
    /// The other messages listed with this unique-id, by number: copies
    /// moved (or left) with `n`, see [`super::copies`].
    pub copies: Vec<u32>,
}

/// What the stages need from the poll.
pub(super) struct Context<'a> {
    pub account: &'a Account,
    pub ledger: &'a Ledger,
    pub relay: &'a Relay,
    pub recipients: &'a [String],
    pub stop: &'a StopFlag,
    pub events: &'a Events,
}

/// How the fetch stage went, for the poll's report (the record stage
/// counts into a [`Tally`]).
#[derive(Debug, Default)]
pub(super) struct Transferred {
    /// DELE'd, deleted when QUIT or SLEE succeeds.
    pub flagged: Vec<String>,
    /// Deleted for good already (DELI, or gone before we asked).
    pub deleted: u64,
    /// Groups of copies under one unique-id that differ.
    pub rejected: u64,
    /// Something stays on the server for a later poll to act on.
    pub unsettled: bool,
}

/// Moves every step of `plan`. Whatever happens, every delivery the relay
/// accepted is recorded before this returns, including after an error on
/// the POP3 side.
///
/// What the ledger committed is counted into `committed` as it happens, so
/// the count is there also when this returns an error.
pub(super) async fn transfer(
    session: &mut Session,
    plan: &[Step],
    cx: &Context<'_>,
    committed: &mut Tally,
) -> Result<Transferred, PollError> {
    let window = if session.extensions().pipelining {
        WINDOW
    } else {
        1
    };
    // Declared before the channels whose messages borrow it.
    let unrecorded = Semaphore::new(UNRECORDED);
    let (fetched_tx, fetched_rx) = mpsc::channel(window);
    let (outcome_tx, outcome_rx) = mpsc::unbounded_channel();
    let (recorded_tx, recorded_rx) = mpsc::unbounded_channel();
    let fetch = Fetch::new(session, plan, cx, window);
    // A relay that cannot be set up ends the poll: fetching more messages
    // for it would only download them again next time. Whatever was
    // already handed to the record stage is still committed.
    let (relay_down, relay_down_rx) = oneshot::channel();
    let deleted_tx = outcome_tx.clone();
    let fetching = async {
        tokio::select! {
            fetched = fetch.run(fetched_tx, deleted_tx, recorded_rx) => Some(fetched),
            Ok(()) = relay_down_rx => None,
        }
    };
    let delivering = async {
        let delivered = deliver(cx, plan, fetched_rx, outcome_tx, &unrecorded).await;
        if delivered.is_err() {
            let _ = relay_down.send(());
        }
        delivered
    };
    let (fetched, delivered, recorded) = tokio::join!(
        fetching,
        delivering,
        record(cx, plan, outcome_rx, recorded_tx, committed)
    );
    // A ledger failure stops the other stages; it is the cause to report.
    recorded?;
    delivered?;
    match fetched {
        Some(fetched) => fetched,
        None => Ok(Transferred {
            unsettled: true,
            ..Transferred::default()
        }),
    }
}

/// Hands each fetched message to the relay, up to `max_connections` (and
/// [`UNRECORDED`]) at once once a first one got through, in whatever
/// order they finish. A relay
/// failure stops taking messages, lets those already with the relay
/// finish and be recorded, then ends the stage with the first failure.
async fn deliver<'a>(
    cx: &Context<'_>,
    plan: &[Step],
    mut fetched: mpsc::Receiver<Fetched>,
    to_record: mpsc::UnboundedSender<ToRecord<'a>>,
    unrecorded: &'a Semaphore,
) -> Result<(), PollError> {
    let full = cx.relay.max_connections().min(UNRECORDED);
    // With no connection to the relay yet, one message finds out whether
    // one can be set up at all: a relay that refuses the login or the
    // certificate is asked once, not once per message in flight.
    let mut parallel = if cx.relay.is_connected() { full } else { 1 };
    let mut sending = FuturesUnordered::new();
    let mut failed = None;
    let mut taking = true;
    loop {
        tokio::select! {
            Some(sent) = sending.next() => match sent {
                Ok(Some(report)) => {
                    parallel = full;
                    if to_record.send(report).is_err() {
                        taking = false;
                    }
                }
                Ok(None) => taking = false,
                Err(e) => {
                    taking = false;
                    failed.get_or_insert(e);
                }
            },
            next = fetched.recv(), if taking && sending.len() < parallel => match next {
                Some(message) => sending.push(deliver_one(cx, plan, message, &to_record, unrecorded)),
                None => taking = false,
            },
            else => break,
        }
    }
    failed.map_or(Ok(()), Err)
}

/// One message: its outcome for the record stage, or `None` if the record
/// stage is gone.
async fn deliver_one<'a>(
    cx: &Context<'_>,
    plan: &[Step],
    fetched: Fetched,
    to_record: &mpsc::UnboundedSender<ToRecord<'a>>,
    unrecorded: &'a Semaphore,
) -> Result<Option<ToRecord<'a>>, PollError> {
    let Fetched {
        step,
        message,
        original,
        started,
    } = fetched;
    // Taken before the transaction starts, so accepted-but-unrecorded
    // messages never outnumber the permits, however many run at once.
    let Ok(pending_permit) = unrecorded.acquire().await else {
        return Ok(None);
    };
    // A failed commit ends the record stage and frees its permits; a
    // delivery now could never be recorded, so it would come again
    // next poll, one beyond the UNRECORDED window.
    if to_record.is_closed() {
        return Ok(None);
    }
    let outcomes = match addressees(cx.account, cx.recipients, &message[original..]) {
        Ok(all) => {
            let to = pending(&all, &plan[step].earlier);
            if to.is_empty() {
                Vec::new()
            } else {
                let busy = |busy| cx.events.relay_busy(busy);
                let outcomes = (cx.relay.deliver_watched(&message, &to, &busy).await)
                    .map_err(|source| PollError::Relay { source })?;
                if outcomes.contains(&Outcome::Delivered) {
                    cx.events.delivered(started.elapsed());
                }
                to.into_iter().zip(outcomes).collect()
            }
        }
        Err(looped) => (cx.recipients.iter())
            .map(|to| (to.clone(), Outcome::Rejected(looped.clone())))
            .collect(),
    };
    // With nobody left to send to, the earlier refusals may settle it
    // as rejected too.
    let quarantine = cx.account.quarantine_dir.is_some()
        && (outcomes.is_empty()
            || (outcomes.iter()).any(|(_, o)| matches!(o, Outcome::Rejected(_))));
    let message = quarantine.then_some(message);
    Ok(Some(ToRecord::Outcome {
        step,
        outcomes,
        message,
        _pending: pending_permit,
    }))
}
