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
//! * **deliver** hands each message to the relay, one SMTP transaction at a
//!   time;
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

use std::collections::{HashMap, VecDeque};

use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::{debug, warn};

use super::recipients::{addressees, pending};
use super::record::{record, Recorded, ToRecord};
use super::{PollError, StopFlag};
use crate::config::Account;
use crate::deliver::{trace_header, Outcome, Relay};
use crate::ledger::{Ledger, RecipientRecord};
use crate::pop3::command::Command;
use crate::session::{Deleted, Session};

/// Bytes of mail a poll may have requested and not yet recorded.
pub const FETCH_AHEAD: u64 = 8 * 1024 * 1024;
/// Messages the relay may have accepted that the ledger has not recorded
/// yet: delivery waits when this many are pending a commit. It is the
/// most a crash at the worst moment makes popferry deliver twice, and
/// still lets a commit's fsync overlap the next deliveries.
pub const UNRECORDED: usize = 8;
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
}

/// What the stages need from the poll.
pub(super) struct Context<'a> {
    pub account: &'a Account,
    pub ledger: &'a Ledger,
    pub relay: &'a Relay,
    pub recipients: &'a [String],
    pub stop: &'a StopFlag,
}

/// How the transfer went, for the poll's report.
#[derive(Debug, Default)]
pub(super) struct Transferred {
    /// DELE'd, deleted when QUIT or SLEE succeeds.
    pub flagged: Vec<String>,
    /// Deleted for good already (DELI, or gone before we asked).
    pub deleted: u64,
    pub delivered: u64,
    pub deferred: u64,
    pub rejected: u64,
    /// Something stays on the server for a later poll to act on.
    pub unsettled: bool,
}

/// Moves every step of `plan`. Whatever happens, every delivery the relay
/// accepted is recorded before this returns, including after an error on
/// the POP3 side.
pub(super) async fn transfer(
    session: &mut Session,
    plan: &[Step],
    cx: &Context<'_>,
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
    let fetch = Fetch {
        session,
        plan,
        cx,
        window,
        next: 0,
        in_flight: VecDeque::new(),
        deletes: VecDeque::new(),
        held: 0,
        holding: 0,
        bodies: HashMap::new(),
        in_memory: 0,
        out: Transferred::default(),
    };
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
        record(cx, plan, outcome_rx, recorded_tx)
    );
    // A ledger failure stops the other stages; it is the cause to report.
    let recorded = recorded?;
    delivered?;
    let mut out = match fetched {
        Some(fetched) => fetched?,
        None => Transferred {
            unsettled: true,
            ..Transferred::default()
        },
    };
    out.delivered = recorded.delivered;
    out.deferred = recorded.deferred;
    out.rejected = recorded.rejected;
    out.unsettled |= recorded.unsettled;
    Ok(out)
}

/// A whole message, trace header included, on its way to the relay.
struct Fetched {
    step: usize,
    message: Vec<u8>,
}

/// A command whose reply is still to be read.
enum Sent {
    Retr(usize),
    Delete(usize),
}

struct Fetch<'a, 's> {
    session: &'s mut Session,
    plan: &'a [Step],
    cx: &'a Context<'a>,
    window: usize,
    /// The next step to start.
    next: usize,
    in_flight: VecDeque<Sent>,
    /// Steps recorded and waiting for their DELE to be sent.
    deletes: VecDeque<usize>,
    /// Bytes (by LIST), and messages, requested and not yet recorded.
    held: u64,
    holding: usize,
    /// The real length of each body read and not yet recorded, by step,
    /// and their sum.
    bodies: HashMap<usize, u64>,
    in_memory: u64,
    out: Transferred,
}

impl Fetch<'_, '_> {
    async fn run(
        mut self,
        fetched: mpsc::Sender<Fetched>,
        to_record: mpsc::UnboundedSender<ToRecord<'_>>,
        mut recorded: mpsc::UnboundedReceiver<Recorded>,
    ) -> Result<Transferred, PollError> {
        loop {
            while let Ok(done) = recorded.try_recv() {
                self.recorded(done);
            }
            self.queue_commands()?;
            self.session.client().flush().await?;
            let body_next = matches!(self.in_flight.front(), Some(Sent::Retr(_)));
            if body_next && self.in_memory >= FETCH_AHEAD {
                match recorded.recv().await {
                    Some(done) => self.recorded(done),
                    None => break,
                }
                continue;
            }
            match self.in_flight.pop_front() {
                Some(Sent::Retr(step)) => match self.read_message(step).await? {
                    Some(message) => {
                        let length = message.len() as u64;
                        self.bodies.insert(step, length);
                        self.in_memory += length;
                        if fetched.send(Fetched { step, message }).await.is_err() {
                            break;
                        }
                    }
                    None => self.release(step),
                },
                Some(Sent::Delete(step)) => self.read_deleted(step, &to_record).await?,
                None if self.holding > 0 => match recorded.recv().await {
                    Some(done) => self.recorded(done),
                    // The record stage failed; its error is the one to report.
                    None => break,
                },
                None if self.deletes.is_empty() => break,
                None => {}
            }
        }
        if self.next < self.plan.len() {
            self.out.unsettled = true;
        }
        Ok(self.out)
    }

    /// Fills the window: deletions first, then the next steps while the
    /// byte budget allows.
    fn queue_commands(&mut self) -> Result<(), PollError> {
        while self.in_flight.len() < self.window {
            if let Some(step) = self.deletes.pop_front() {
                self.queue_delete(step)?;
                continue;
            }
            let Some(step) = self.plan.get(self.next) else {
                break;
            };
            if self.cx.stop.is_raised() {
                break;
            }
            if step.fetch {
                if self.holding > 0 && self.held + step.size > FETCH_AHEAD {
                    break;
                }
                let target = self.session.target(step.n, &step.uid);
                self.session.client().send(Command::Retr(target))?;
                self.in_flight.push_back(Sent::Retr(self.next));
                self.held += step.size;
                self.holding += 1;
            } else if !self.cx.account.keep {
                self.queue_delete(self.next)?;
            }
            self.next += 1;
        }
        Ok(())
    }

    fn queue_delete(&mut self, step: usize) -> Result<(), PollError> {
        let Step { n, uid, .. } = &self.plan[step];
        let target = self.session.target(*n, uid);
        self.session.queue_delete(target)?;
        self.in_flight.push_back(Sent::Delete(step));
        Ok(())
    }

    /// The reply to a RETR: the message, or `None` if someone else deleted
    /// it since the listing.
    ///
    /// A body that outgrows `max_message_size` (LIST gave a smaller size)
    /// ends the poll, since the rest of it is still on the wire. It is
    /// recorded as rejected first: otherwise every poll would fetch it
    /// again, fail again, and never reach the messages listed after it.
    async fn read_message(&mut self, step: usize) -> Result<Option<Vec<u8>>, PollError> {
        let Step {
            uid,
            size,
            retry_at,
            ..
        } = &self.plan[step];
        let client = self.session.client();
        match client.read_ok("RETR").await {
            Ok(_) => {}
            Err(e) if e.is_message_gone() => {
                debug!(uid, "deleted by someone else since the listing");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        let account = self.cx.account;
        let mut message = trace_header(&account.pop3.host, &account.name, uid, client.is_tls());
        // LIST's size (already bounded by max_message_size) sizes the
        // buffer once; growing by doubling would briefly hold two copies
        // of a large message.
        message.reserve_exact(usize::try_from(*size).unwrap_or(0));
        match client.read_body("RETR", &mut message).await {
            Ok(()) => Ok(Some(message)),
            Err(e) if e.is_too_large() => {
                let reason = format!("{e}; LIST gave {size} bytes");
                warn!(uid, "{reason}; left on the server");
                (self.cx.ledger)
                    .record_rejected(&account.name, uid, *size, &reason, *retry_at)
                    .await?;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn read_deleted(
        &mut self,
        step: usize,
        to_record: &mpsc::UnboundedSender<ToRecord<'_>>,
    ) -> Result<(), PollError> {
        let uid = self.plan[step].uid.clone();
        match self.session.deleted().await? {
            Deleted::AtCommit => self.out.flagged.push(uid),
            Deleted::Now | Deleted::AlreadyGone => {
                self.out.deleted += 1;
                // If the record stage is gone, the next poll's listing no
                // longer shows the uid and the ledger forgets it then.
                let _ = to_record.send(ToRecord::Deleted(uid));
            }
        }
        Ok(())
    }

    fn recorded(&mut self, done: Recorded) {
        self.release(done.step);
        if done.delete && !self.cx.account.keep {
            self.deletes.push_back(done.step);
        }
    }

    fn release(&mut self, step: usize) {
        self.held -= self.plan[step].size;
        self.holding -= 1;
        if let Some(length) = self.bodies.remove(&step) {
            self.in_memory -= length;
        }
    }
}

async fn deliver<'a>(
    cx: &Context<'_>,
    plan: &[Step],
    mut fetched: mpsc::Receiver<Fetched>,
    to_record: mpsc::UnboundedSender<ToRecord<'a>>,
    unrecorded: &'a Semaphore,
) -> Result<(), PollError> {
    while let Some(Fetched { step, message }) = fetched.recv().await {
        let Ok(pending_permit) = unrecorded.acquire().await else {
            break;
        };
        // A failed commit ends the record stage and frees its permits; a
        // delivery now could never be recorded, so it would come again
        // next poll, one beyond the UNRECORDED window.
        if to_record.is_closed() {
            break;
        }
        let outcomes = match addressees(cx.account, cx.recipients, &message) {
            Ok(all) => {
                let to = pending(&all, &plan[step].earlier);
                if to.is_empty() {
                    Vec::new()
                } else {
                    let outcomes = (cx.relay.deliver(&message, &to).await)
                        .map_err(|source| PollError::Relay { source })?;
                    to.into_iter().zip(outcomes).collect()
                }
            }
            Err(looped) => (cx.recipients.iter())
                .map(|to| (to.clone(), Outcome::Rejected(looped.clone())))
                .collect(),
        };
        let quarantine = cx.account.quarantine_dir.is_some()
            && outcomes
                .iter()
                .any(|(_, o)| matches!(o, Outcome::Rejected(_)));
        let message = quarantine.then_some(message);
        let report = ToRecord::Outcome {
            step,
            outcomes,
            message,
            _pending: pending_permit,
        };
        if to_record.send(report).is_err() {
            break;
        }
    }
    Ok(())
}
