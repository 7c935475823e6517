//! The fetch stage of the transfer: the POP3 side of the pipeline.
//!
//! It sends RETRs ahead within the window and the byte budget described in
//! [`super::transfer`], reads the bodies in order and hands them to the
//! deliver stage, and queues the DELE (or DELI) of a message only once the
//! record stage says its outcome is committed.
//!
//! A step whose unique-id the server lists for several messages (see
//! [`super::copies`]) RETRs its copies first, keeping only their digest,
//! then its first message, which goes to the relay only if its bytes match
//! every copy's. Once it is recorded, every copy is deleted with it.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::copies::{leave_differing, Compared};
use super::record::{Recorded, ToRecord};
use super::transfer::{Context, Step, Transferred, FETCH_AHEAD};
use super::PollError;
use crate::deliver::trace_header;
use crate::pop3::command::{Command, Msg};
use crate::session::{Deleted, Session};

/// A whole message, trace header included, on its way to the relay.
pub(super) struct Fetched {
    pub step: usize,
    pub message: Vec<u8>,
    /// Where the message as the server sent it starts, after the trace
    /// header.
    pub original: usize,
    /// When popferry began reading its RETR reply: the start of its
    /// delivery latency. Not when the RETR was sent, since pipelined RETRs
    /// go out ahead and wait their turn on the wire; that wait belongs to
    /// the messages before it.
    pub started: Instant,
}

/// A command whose reply is still to be read, by step.
enum Sent {
    Retr(usize),
    /// The RETR of one of the step's copies.
    Copy(usize),
    Delete(usize),
}

pub(super) struct Fetch<'a, 's> {
    session: &'s mut Session,
    plan: &'a [Step],
    cx: &'a Context<'a>,
    window: usize,
    /// The next step to start, and how many of its copies' RETRs are
    /// sent so far (each copy's RETR is one command of the window).
    next: usize,
    copies_sent: usize,
    in_flight: VecDeque<Sent>,
    /// Messages (step, number) recorded and waiting for their DELE.
    deletes: VecDeque<(usize, u32)>,
    /// Bytes (by LIST), and steps, requested and not yet recorded.
    held: u64,
    holding: usize,
    /// The real length of each body read and not yet recorded, by step,
    /// and their sum.
    bodies: HashMap<usize, u64>,
    in_memory: u64,
    /// The copies read so far, by step.
    compared: HashMap<usize, Compared>,
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
            copies_sent: 0,
            in_flight: VecDeque::new(),
            deletes: VecDeque::new(),
            held: 0,
            holding: 0,
            bodies: HashMap::new(),
            in_memory: 0,
            compared: HashMap::new(),
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
            let body_next = matches!(self.in_flight.front(), Some(Sent::Retr(_) | Sent::Copy(_)));
            if body_next && self.in_memory >= FETCH_AHEAD {
                match recorded.recv().await {
                    Some(done) => self.recorded(done),
                    None => break,
                }
                continue;
            }
            match self.in_flight.pop_front() {
                Some(Sent::Retr(step)) => match self.read_message(step).await? {
                    // Copies of a message already delivered, read only to
                    // show they are the same bytes: all of them may go.
                    Some(_) if !self.plan[step].fetch => self.verified(step),
                    Some((message, original, started)) => {
                        let length = message.len() as u64;
                        self.cx.events.fetched(length - original as u64);
                        self.bodies.insert(step, length);
                        self.in_memory += length;
                        let fetched_one = Fetched {
                            step,
                            message,
                            original,
                            started,
                        };
                        if fetched.send(fetched_one).await.is_err() {
                            break;
                        }
                    }
                    None => self.release(step),
                },
                Some(Sent::Copy(step)) => self.read_copy(step).await?,
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
    /// byte budget allows. A step is stopped for neither the budget nor
    /// the stop flag once its first command is sent: a step half asked for
    /// would never be recorded, and fetch would wait for it for ever.
    fn queue_commands(&mut self) -> Result<(), PollError> {
        let plan = self.plan;
        while self.in_flight.len() < self.window {
            if let Some((step, n)) = self.deletes.pop_front() {
                self.queue_delete(step, n)?;
                continue;
            }
            let Some(step) = plan.get(self.next) else {
                break;
            };
            let starting = self.copies_sent == 0;
            if starting && self.cx.stop.is_raised() {
                break;
            }
            // Copies are read even when the ledger has the delivery: only
            // identical bytes show that every one of them is what it holds.
            if step.fetch || !step.copies.is_empty() {
                if starting {
                    let requested = requested(step);
                    if self.holding > 0 && self.held + requested > FETCH_AHEAD {
                        break;
                    }
                    self.held += requested;
                    self.holding += 1;
                }
                if let Some(&n) = step.copies.get(self.copies_sent) {
                    self.session.client().send(Command::Retr(Msg::Number(n)))?;
                    self.in_flight.push_back(Sent::Copy(self.next));
                    self.copies_sent += 1;
                    continue;
                }
                let target = self.target(step, step.n);
                self.session.client().send(Command::Retr(target))?;
                self.in_flight.push_back(Sent::Retr(self.next));
                self.copies_sent = 0;
            } else if !self.cx.account.keep {
                self.deletes.extend(numbers(step).map(|n| (self.next, n)));
            }
            self.next += 1;
        }
        Ok(())
    }

    fn queue_delete(&mut self, step: usize, n: u32) -> Result<(), PollError> {
        self.cx.ledger.still_holds(&self.cx.account.name)?;
        let target = self.target(&self.plan[step], n);
        self.session.queue_delete(target)?;
        self.in_flight.push_back(Sent::Delete(step));
        Ok(())
    }

    /// How commands name message `n` of `step`: as the session prefers,
    /// but by number where copies share the unique-id.
    fn target<'p>(&self, step: &'p Step, n: u32) -> Msg<'p> {
        if step.copies.is_empty() {
            self.session.target(n, &step.uid)
        } else {
            Msg::Number(n)
        }
    }

    /// The reply to a RETR: the message, where it starts behind the trace
    /// header and when its reading began, or `None` if someone else
    /// deleted it since the listing, or its copies differ from it.
    async fn read_message(
        &mut self,
        step: usize,
    ) -> Result<Option<(Vec<u8>, usize, Instant)>, PollError> {
        let started = Instant::now();
        let account = self.cx.account;
        let Step { uid, copies, .. } = &self.plan[step];
        let is_tls = self.session.client().is_tls();
        let mut message = trace_header(&account.pop3.host, &account.name, uid, is_tls);
        let header = message.len();
        if !self.read_body(step, &mut message).await? {
            self.compared.remove(&step);
            return Ok(None);
        }
        if copies.is_empty() {
            return Ok(Some((message, header, started)));
        }
        let mut compared = self.compared.remove(&step).unwrap_or_default();
        compared.add(&message[header..]);
        if compared.identical() {
            return Ok(Some((message, header, started)));
        }
        drop(message);
        self.differing(step).await?;
        Ok(None)
    }

    /// The reply to the RETR of a copy: only its digest is kept.
    async fn read_copy(&mut self, step: usize) -> Result<(), PollError> {
        let mut body = Vec::new();
        if self.read_body(step, &mut body).await? {
            self.compared.entry(step).or_default().add(&body);
        }
        Ok(())
    }

    /// Reads the reply to a RETR for `step` into `out`; false if the
    /// message was deleted by someone else since the listing.
    ///
    /// A body that outgrows `max_message_size` (LIST gave a smaller size)
    /// ends the poll, since the rest of it is still on the wire. It is
    /// recorded as rejected first: otherwise every poll would fetch it
    /// again, fail again, and never reach the messages listed after it.
    async fn read_body(&mut self, step: usize, out: &mut Vec<u8>) -> Result<bool, PollError> {
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
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
        // LIST's size (already bounded by max_message_size) sizes the
        // buffer once; growing by doubling would briefly hold two copies
        // of a large message.
        out.reserve_exact(usize::try_from(*size).unwrap_or(0));
        match client.read_body("RETR", out).await {
            Ok(()) => {
                // A body longer than LIST said grew by doubling: give the
                // slack back, so what is held is what `in_memory` counts.
                out.shrink_to_fit();
                Ok(true)
            }
            Err(e) if e.is_too_large() => {
                let reason = format!("{e}; LIST gave {size} bytes");
                warn!(uid, "{reason}; left on the server");
                let account = &self.cx.account.name;
                (self.cx.ledger)
                    .record_rejected(account, uid, *size, &reason, *retry_at)
                    .await?;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Copies that differ: recorded like a refused message, so the group
    /// stays on the server and is read again only at its retry time. A
    /// group whose uid the ledger has as delivered keeps that record (one
    /// of them is the delivered one) and is read again at the next poll.
    async fn differing(&mut self, step: usize) -> Result<(), PollError> {
        let step = &self.plan[step];
        let group = (step.n, step.copies.as_slice());
        let (name, uid) = (&self.cx.account.name, &step.uid);
        self.out.unsettled = true;
        let ledger = self.cx.ledger;
        if leave_differing(
            ledger,
            name,
            group,
            uid,
            step.size,
            step.retry_at,
            step.fetch,
        )
        .await?
        {
            self.out.rejected += 1;
        }
        Ok(())
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
            let step = &self.plan[done.step];
            self.deletes.extend(numbers(step).map(|n| (done.step, n)));
        }
    }

    /// A delivered group whose copies all read the same: delete them all.
    fn verified(&mut self, step: usize) {
        self.release(step);
        if !self.cx.account.keep {
            let numbers = numbers(&self.plan[step]).map(|n| (step, n));
            self.deletes.extend(numbers);
        }
    }

    fn release(&mut self, step: usize) {
        self.held -= requested(&self.plan[step]);
        self.holding -= 1;
        if let Some(length) = self.bodies.remove(&step) {
            self.in_memory -= length;
        }
    }
}

/// The message numbers of a step: its first, then its copies.
fn numbers(step: &Step) -> impl Iterator<Item = u32> + '_ {
    std::iter::once(step.n).chain(step.copies.iter().copied())
}

/// The bytes a step asks the server for, by LIST.
fn requested(step: &Step) -> u64 {
    step.size.saturating_mul(1 + step.copies.len() as u64)
}
