//! The ledger: a record of what popferry did with every message, kept in
//! a SQLite file (`sqlite/`, the default) or a PostgreSQL database
//! (`postgres/`).
//!
//! popferry's guarantee is that a message is deleted from the POP3 server
//! only after its delivery is durably recorded here: a message write
//! method that returned `Ok` has reached the disk (SQLite's
//! `synchronous=FULL`; PostgreSQL's `synchronous_commit = on` on a server
//! with `fsync = on`) and survives a crash or power loss, so the caller
//! may send DELE for it. (Only the poll history, which carries no part of
//! the guarantee, is written without waiting for its flush.) When a write
//! method returns an error, nothing may be deleted on its strength; the
//! message stays on the server and is seen again next poll. That holds
//! for a commit whose outcome is unknown too (the link to the database
//! died during COMMIT): it counts as not recorded, and if it did land the
//! next poll only deletes.
//!
//! A message moves through the states of [`MessageState`]; the schema in
//! `migrations/` documents each state and why its columns exist.
//!
//! # Engines
//!
//! [`Ledger`] is the one type the rest of popferry sees, whatever the
//! engine: `src/poll/` and the scheduler call the same methods on both.
//! Inside it is an enum of the two engines rather than a trait, since the
//! set is closed and small: the `match` in each method makes the compiler
//! check that both engines do every operation, with no boxed futures and
//! no type parameter through the poll code. What a change means (`change.rs`,
//! `totals.rs`) and the batching of empty polls (`empty_polls.rs`) are
//! decided here once; each engine owns its SQL.
//!
//! Dropping the future of a write method does not make a SQLite write
//! stop: once its blocking task has started it commits or fails on its
//! own. On PostgreSQL a dropped future drops its transaction, which rolls
//! back. Both are safe: a recorded delivery without a DELE only makes the
//! next poll send the DELE, and an unrecorded one leaves the message on
//! the server.

mod change;
mod empty_polls;
mod error;
mod fleet;
mod imported;
mod leases;
mod messages;
mod polls;
mod postgres;
mod recipients;
mod report;
mod slots;
mod sqlite;
mod totals;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::State;

pub use change::Change;
pub use error::LedgerError;
use fleet::Fence;
pub use fleet::Held;
pub use imported::Adopted;
pub use messages::{MessageRecord, MessageState, Reconciled};
pub use polls::{PollId, PollOutcome, PollReport, PollSummary};
pub use recipients::{RecipientRecord, RecipientRefusal, RecipientState};
pub use report::{AccountDetail, AccountStatus, OnServer, Snapshot, Totals, WaitingMessage};
pub use sqlite::{LedgerReader, Opened};

/// A handle on the ledger. Clones share one connection (SQLite) or one
/// pool of connections (PostgreSQL).
#[derive(Debug, Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
    /// The lease a poll writes under, on a fleet's ledger ([`Held`]).
    fence: Option<Arc<Fence>>,
}

#[derive(Debug)]
struct Inner {
    engine: Engine,
    /// Empty polls counted but not written yet (`empty_polls.rs`).
    empty: Mutex<empty_polls::Pending>,
}

/// The PostgreSQL store is boxed: it is hundreds of bytes, the other arm
/// one pointer.
#[derive(Debug)]
enum Engine {
    Sqlite(Arc<sqlite::Store>),
    Postgres(Box<postgres::Store>),
}

/// What `popferry status` found where the configuration's `state` points.
#[derive(Debug)]
pub enum Found {
    /// No ledger there: nothing was fetched with this configuration.
    Missing,
    /// A ledger without a schema yet: nothing was fetched either.
    Empty,
    Ledger(Snapshot),
}

impl Ledger {
    /// Opens the SQLite ledger at `path` for a process that polls, holding
    /// its file lock as long as the handle lives (`sqlite/mod.rs` says why
    /// the lock, and why a new file is born with mode 0600). This blocks on
    /// file I/O; call it once at startup, or from `spawn_blocking`.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        sqlite::Store::open(path).map(|store| Self::on(Engine::Sqlite(Arc::new(store))))
    }

    /// A private, empty SQLite ledger that lives as long as the handle:
    /// for tests of code that needs a ledger but not a file.
    pub fn open_in_memory() -> Result<Self, LedgerError> {
        sqlite::Store::open_in_memory().map(|store| Self::on(Engine::Sqlite(Arc::new(store))))
    }

    /// Opens the ledger the configuration's `state` names, for a process
    /// that polls (`popferry run`, `fetch`, `import`, `adopt`): the file as
    /// [`Ledger::open`] does, or the PostgreSQL database, whose schema is
    /// brought up to date and whose poller lock is taken
    /// (`postgres/lock.rs`), so that a second poller is refused as it is on
    /// a file.
    pub async fn open_state(state: &State) -> Result<Self, LedgerError> {
        Self::open_as(state, postgres::Hold::Alone).await
    }

    /// Opens the ledger for `popferry run`: as [`Ledger::open_state`] on a
    /// file; on PostgreSQL as one instance of a fleet, which polls only the
    /// accounts it holds leases on (`postgres/fleet.rs`). Run
    /// [`Ledger::keep_leases`] beside it.
    pub async fn open_for_fleet(state: &State) -> Result<Self, LedgerError> {
        Self::open_as(state, postgres::Hold::Shared).await
    }

    async fn open_as(state: &State, hold: postgres::Hold) -> Result<Self, LedgerError> {
        match state {
            State::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || Self::open(&path))
                    .await
                    .map_err(|_| LedgerError::ShuttingDown {
                        path: state.describe().into(),
                    })?
            }
            State::Postgres(database) => {
                let store = postgres::Store::open(database, hold).await?;
                Ok(Self::on(Engine::Postgres(Box::new(store))))
            }
        }
    }

    fn on(engine: Engine) -> Self {
        Self {
            inner: Arc::new(Inner {
                engine,
                empty: Mutex::default(),
            }),
            fence: None,
        }
    }

    /// Every message recorded for `account`, keyed by uid.
    pub async fn messages(
        &self,
        account: &str,
    ) -> Result<HashMap<String, MessageRecord>, LedgerError> {
        match &self.inner.engine {
            Engine::Sqlite(store) => store.messages(account).await,
            Engine::Postgres(store) => store.messages(account).await,
        }
    }

    /// Records that the relay accepted the message. Once this returns `Ok`
    /// the message may be deleted from the server.
    pub async fn record_delivered(
        &self,
        account: &str,
        uid: &str,
        size: u64,
    ) -> Result<(), LedgerError> {
        let change = Change::Delivered {
            uid: uid.to_owned(),
            size,
        };
        self.record("record a delivery", account, change).await?;
        Ok(())
    }

    /// Records that the relay refused the message for now, with its reply;
    /// the message stays on the server until `retry_at`. Returns the number
    /// of attempts made so far, for the caller's give-up policy.
    pub async fn record_rejected(
        &self,
        account: &str,
        uid: &str,
        size: u64,
        reply: &str,
        retry_at: i64,
    ) -> Result<u32, LedgerError> {
        let change = Change::Rejected {
            uid: uid.to_owned(),
            size,
            reply: reply.to_owned(),
            retry_at,
        };
        self.record("record a rejection", account, change).await
    }

    /// Records that the message was given up on and saved at `path`. Call it
    /// only once that copy is durably written: from here on the message may
    /// be deleted from the server.
    pub async fn record_quarantined(
        &self,
        account: &str,
        uid: &str,
        size: u64,
        reply: &str,
        path: &Path,
    ) -> Result<(), LedgerError> {
        let change = Change::Quarantined {
            uid: uid.to_owned(),
            size,
            reply: reply.to_owned(),
            path: path.to_owned(),
        };
        self.record("record a quarantine", account, change).await?;
        Ok(())
    }

    async fn record(
        &self,
        action: &'static str,
        account: &str,
        change: Change,
    ) -> Result<u32, LedgerError> {
        match &self.inner.engine {
            Engine::Sqlite(store) => store.record(action, account, change).await,
            Engine::Postgres(store) => {
                let epoch = self.epoch(account);
                store.record(action, account, epoch, &change).await
            }
        }
    }

    /// Applies `changes` in order, in one transaction: one flush for a
    /// whole batch of messages. Once this returns `Ok` every delivered or
    /// quarantined message in the batch may be deleted from the server;
    /// on an error none of them may. No changes is no transaction: a poll
    /// that found nothing should not pay a trip to the database.
    pub async fn commit(&self, account: &str, changes: Vec<Change>) -> Result<(), LedgerError> {
        if changes.is_empty() {
            return Ok(());
        }
        match &self.inner.engine {
            Engine::Sqlite(store) => store.commit(account, changes).await,
            Engine::Postgres(store) => store.commit(account, self.epoch(account), &changes).await,
        }
    }

    /// Records that the server confirmed deleting `uids` (its +OK to QUIT),
    /// all in one transaction.
    pub async fn mark_deleted(&self, account: &str, uids: &[String]) -> Result<(), LedgerError> {
        let changes = uids
            .iter()
            .map(|uid| Change::Deleted { uid: uid.clone() })
            .collect();
        self.commit(account, changes).await
    }

    /// Forgets the messages of `account` whose uid is not in `listed` and
    /// returns how many that was, with the records of the rest, keyed by
    /// uid: what a poll needs to know of its listing, in one transaction.
    ///
    /// `listed` must be the server's complete UIDL listing from this
    /// session: a uid missing from it is gone from the server, so its row
    /// can no longer prevent a duplicate. A partial listing would make the
    /// ledger forget messages still on the server and deliver them again.
    pub async fn reconcile(
        &self,
        account: &str,
        listed: HashSet<String>,
    ) -> Result<Reconciled, LedgerError> {
        match &self.inner.engine {
            Engine::Sqlite(store) => store.reconcile(account, listed).await,
            Engine::Postgres(store) => store.reconcile(account, self.epoch(account), &listed).await,
        }
    }

    /// Records that a poll of `account` begins, after the account's empty
    /// polls not written yet (`empty_polls.rs`), and trims the account's
    /// history to the latest polls.
    pub async fn start_poll(&self, account: &str) -> Result<PollId, LedgerError> {
        let empty = self.take_empty_run(account);
        let started = match &self.inner.engine {
            Engine::Sqlite(store) => store.start_poll(account, empty).await,
            Engine::Postgres(store) => store.start_poll(account, self.epoch(account), empty).await,
        };
        if let (Err(_), Some(run)) = (&started, empty) {
            self.restore(vec![(account.to_owned(), run)]);
        }
        started
    }

    /// Records how the poll `id` ended. Finishing a poll twice, or one that
    /// was never started, is refused with [`LedgerError::PollNotRunning`].
    pub async fn finish_poll(&self, id: PollId, report: &PollReport) -> Result<(), LedgerError> {
        match &self.inner.engine {
            Engine::Sqlite(store) => store.finish_poll(id, report.clone()).await,
            Engine::Postgres(store) => store.finish_poll(id, self.fenced(), report).await,
        }
    }

    /// How many successful polls of `account` in a row found nothing new,
    /// counted ones not written yet included: where a restarted account
    /// picks up its adaptive interval. One lookup of the latest row.
    pub async fn quiet_polls(&self, account: &str) -> Result<u64, LedgerError> {
        let written = match &self.inner.engine {
            Engine::Sqlite(store) => store.quiet_polls(account).await,
            Engine::Postgres(store) => store.quiet_polls(account).await,
        }?;
        Ok(written + self.pending_empty_polls(account))
    }

    /// Records each of `uids` as delivered, with its size where it is
    /// known (`None`: see [`MessageRecord::size`]), in one transaction.
    ///
    /// The state is the one a delivery with `keep = true` leaves, so the
    /// next poll skips a kept message and, with `keep = false`, deletes it
    /// without delivering it again (the other program did). A row the
    /// ledger already has is never changed: it knows more than the file
    /// (a size, a rejection still owed to a recipient). Repeated unique-ids
    /// count once.
    pub async fn record_delivered_elsewhere(
        &self,
        account: &str,
        uids: Vec<(String, Option<u64>)>,
    ) -> Result<Adopted, LedgerError> {
        match &self.inner.engine {
            Engine::Sqlite(store) => store.record_delivered_elsewhere(account, uids).await,
            Engine::Postgres(store) => {
                let epoch = self.epoch(account);
                store
                    .record_delivered_elsewhere(account, epoch, &uids)
                    .await
            }
        }
    }

    /// Records the listed size of imported messages whose size was not
    /// known, so from now on a reused unique-id with another size is seen
    /// as the new message it is. Rows whose size is known are not touched.
    pub async fn learn_sizes(
        &self,
        account: &str,
        sizes: Vec<(String, u64)>,
    ) -> Result<(), LedgerError> {
        match &self.inner.engine {
            Engine::Sqlite(store) => store.learn_sizes(account, sizes).await,
            Engine::Postgres(store) => {
                store
                    .learn_sizes(account, self.epoch(account), &sizes)
                    .await
            }
        }
    }

    /// Whether the ledger knows anything of `account`'s mailbox: a message
    /// row, or a poll that completed with a listing that was not empty.
    /// Failed polls do not count: a poll the first-poll guard refused
    /// listed the mailbox too, and must not let the next one through.
    pub async fn knows_account(&self, account: &str) -> Result<bool, LedgerError> {
        match &self.inner.engine {
            Engine::Sqlite(store) => store.knows_account(account).await,
            Engine::Postgres(store) => store.knows_account(account).await,
        }
    }

    /// The latest refusal of every recipient that has not had the message
    /// since, oldest first; kept after the message is forgotten.
    pub async fn refused_recipients(&self) -> Result<Vec<RecipientRefusal>, LedgerError> {
        match &self.inner.engine {
            Engine::Sqlite(store) => store.refused_recipients().await,
            Engine::Postgres(store) => store.refused_recipients().await,
        }
    }

    /// Every account the ledger knows, by name, as `status` shows it.
    pub async fn status(&self) -> Result<Vec<AccountStatus>, LedgerError> {
        match &self.inner.engine {
            Engine::Sqlite(store) => store.status().await,
            Engine::Postgres(store) => store.status().await,
        }
    }
}

/// Reads everything `popferry status` shows from the ledger `state` names,
/// read-only: no lock, no migration and nothing created, so it is safe
/// beside a running poller. `detailed` lists the accounts whose recent
/// polls and waiting messages are wanted.
pub async fn read_status(state: &State, detailed: Vec<String>) -> Result<Found, LedgerError> {
    match state {
        State::File(path) => {
            let path: PathBuf = path.clone();
            let read = tokio::task::spawn_blocking(move || {
                Ok(match LedgerReader::open(&path)? {
                    Opened::Missing => Found::Missing,
                    Opened::Empty => Found::Empty,
                    Opened::Ready(mut reader) => Found::Ledger(reader.snapshot(&detailed)?),
                })
            });
            read.await.map_err(|_| LedgerError::ShuttingDown {
                path: state.describe().into(),
            })?
        }
        State::Postgres(database) => postgres::read_status(database, &detailed).await,
    }
}

/// The current time in unix seconds, the unit of every timestamp column.
/// A clock set before 1970 reads as 0 rather than failing a delivery.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
