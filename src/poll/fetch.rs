//! The fetch stage of the transfer: the POP3 side of the pipeline.
//!
//! It sends RETRs ahead within the window and the byte budget described in
//! [`super::transfer`], reads the bodies in order and hands them to the
//! deliver stage, and queues the DELE (or DELI) of a message only once the
//! record stage says its outcome is committed.

use std::collections::{HashMap, VecDeque};

use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::record::{Recorded, ToRecord};
use super::transfer::{Context, Step, Transferred, FETCH_AHEAD};
use super::PollError;
use crate::deliver::trace_header;
use crate::pop3::command::Command;
use crate::session::{Deleted, Session};

/// A whole message, trace header included, on its way to the relay.
pub(super) struct Fetched {
    pub step: usize,
    pub message: Vec<u8>,
}

/// A command whose reply is still to be read.
enum Sent {
    Retr(usize),
    Delete(usize),
}

pub(super) struct Fetch<'a, 's> {
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

impl<'a, 's> Fetch<'a, 's> {
    pub(super) fn new(
        session: &'s mut Session,
        plan: &'a [Step],
        cx: &'a Context<'a>,
        window: usize,
    ) -> Self {
        Fetch {
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
        }
    }

    pub(super) async fn run(
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
