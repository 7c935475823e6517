//! The POP3 connection pool of `popferry run`.
//!
//! After a poll on a server that offers SLEE-WAKE (or CORE) the session is
//! parked here still logged in: the deletions are committed and the next
//! poll costs one WAKE (or CORE) instead of TCP + TLS + login. On a server
//! that offers QAUT a logged-out connection is parked for the server, and
//! the next account of that server logs in on it without TCP and TLS.
//! The pool also enforces what servers cannot be trusted to: at most one
//! awake session per mailbox (the reference SLEE-WAKE server does no
//! locking at all), and a cap on open connections per server, parked ones
//! of both kinds included (in a fleet, one cap for all the instances:
//! `fleet.rs`). When a new login needs a slot that parked
//! connections hold, a logged-out one is taken first, then the session
//! whose account polls last: handed over with QAUT where the server offers
//! it, else logged out. Not the longest-idle one: accounts on one clock
//! poll in turn, so the longest-idle session is the very next one needed,
//! and with more accounts than slots every poll would log out the session
//! the next poll wants and log in afresh.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};
use tracing::debug;

use crate::config::{Account, Daemon, Pop3Server};
use crate::ledger::Ledger;
use crate::session::{Kept, Session, Vacant};

mod fleet;
mod tending;

use fleet::Slot;

/// One mailbox: two accounts naming the same login share its lock.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MailboxKey {
    server: ServerKey,
    username: String,
}

/// One server: its accounts share its connection cap.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ServerKey {
    host: String,
    port: u16,
}

/// What makes two connections interchangeable for a login after QAUT:
/// the address, the TLS mode, the trust and the client certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LinkKey(Pop3Server);

impl MailboxKey {
    fn of(account: &Account) -> MailboxKey {
        MailboxKey {
            server: LinkKey::of(account).server(),
            username: account.username.clone(),
        }
    }
}

impl LinkKey {
    fn of(account: &Account) -> LinkKey {
        let mut server = account.pop3.clone();
        server.host.make_ascii_lowercase();
        LinkKey(server)
    }

    fn server(&self) -> ServerKey {
        ServerKey {
            host: self.0.host.clone(),
            port: self.0.port,
        }
    }
}

/// A session still logged in as its account.
#[derive(Debug)]
struct Parked {
    session: Session,
    link: LinkKey,
    slot: Slot,
    /// When it was parked; the idle timeout counts from here.
    since: Instant,
    /// When the server last heard from it.
    touched: Instant,
    /// When its account polls next.
    due: Instant,
}

/// A parked connection chosen to give up its slot.
#[derive(Debug)]
enum Victim {
    Vacant(Idle),
    Parked(Parked),
}

/// A connection logged out with QAUT.
#[derive(Debug)]
struct Idle {
    vacant: Vacant,
    slot: Slot,
    since: Instant,
    touched: Instant,
}

#[derive(Debug)]
struct Server {
    /// `host:port`, as the fleet's slots name it.
    name: Arc<str>,
    slots: Arc<Semaphore>,
    /// Woken whenever a connection is parked: a checkout waiting for a
    /// slot may take it (vacant) or make it give up its slot.
    parked: Arc<Notify>,
    /// The earliest the next fresh login may start; each login moves it
    /// on by `[daemon] max_logins_per_second`'s gap.
    next_login: Instant,
}

#[derive(Debug, Default)]
struct State {
    mailboxes: HashMap<MailboxKey, Arc<tokio::sync::Mutex<()>>>,
    servers: HashMap<ServerKey, Server>,
    parked: HashMap<MailboxKey, Parked>,
    vacant: HashMap<LinkKey, Vec<Idle>>,
}

impl State {
    /// Connections parked, of both kinds.
    fn kept(&self) -> usize {
        self.parked.len() + self.vacant.values().map(Vec::len).sum::<usize>()
    }
}

/// Shared by every account task of the daemon.
#[derive(Debug, Clone)]
pub struct Pool {
    limits: Daemon,
    state: Arc<Mutex<State>>,
    /// In a fleet, the ledger whose slots cap each server's connections
    /// across the fleet (`fleet.rs`).
    fleet: Option<Ledger>,
    /// Turns for logging parked connections out when many go at once.
    closing: Arc<Semaphore>,
}

/// The right to poll one mailbox: its lock, a connection slot on its
/// server, and a kept connection if there was one: the account's own
/// session, or a vacant connection of its server.
#[derive(Debug)]
pub struct Lease {
    pub kept: Option<Kept>,
    key: MailboxKey,
    link: LinkKey,
    slot: Slot,
    _mailbox: OwnedMutexGuard<()>,
}

impl Pool {
    /// A pool whose caps `ledger` shares with the fleet, if it is in one.
    pub fn new(limits: Daemon, ledger: &Ledger) -> Pool {
        Pool {
            limits,
            state: Arc::default(),
            fleet: ledger.shares_slots().then(|| ledger.clone()),
            closing: Arc::new(Semaphore::new(tending::CLOSING_AT_ONCE)),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `account`'s mailbox is free, a connection slot on its
    /// server is available and, unless the account's session is still
    /// logged in, the server may take another login.
    pub async fn checkout(&self, account: &Account) -> Lease {
        let key = MailboxKey::of(account);
        let link = LinkKey::of(account);
        let lock = Arc::clone(self.state().mailboxes.entry(key.clone()).or_default());
        let guard = lock.lock_owned().await;
        let parked = self.state().parked.remove(&key);
        let (kept, slot) = match parked {
            Some(parked) => (Some(Kept::Session(parked.session)), parked.slot),
            None => {
                let (vacant, slot) = self.slot(&link).await;
                (vacant.map(Kept::Vacant), slot)
            }
        };
        if !matches!(kept, Some(Kept::Session(_))) {
            self.login_turn(&key.server).await;
        }
        Lease {
            kept,
            key,
            link,
            slot,
            _mailbox: guard,
        }
    }

    /// Waits for `server`'s next login time and books the one after: at
    /// most one login a gap, however many accounts are due at once.
    async fn login_turn(&self, server: &ServerKey) {
        let turn = {
            let mut state = self.state();
            let Some(server) = state.servers.get_mut(server) else {
                return;
            };
            let turn = server.next_login.max(Instant::now());
            server.next_login = turn + self.limits.login_gap;
            turn
        };
        tokio::time::sleep_until(turn.into()).await;
    }

    /// A connection slot on `link`'s server, with a vacant connection of
    /// that kind when one is parked. With every slot in use, a parked
    /// connection gives up its own (see the module doc); with none parked,
    /// waits for a slot or for a connection to be parked. In a fleet a
    /// local slot waits, too, for one of the fleet's.
    async fn slot(&self, link: &LinkKey) -> (Option<Vacant>, Slot) {
        let server = link.server();
        let (name, slots, parked) = {
            let mut state = self.state();
            let entry = state
                .servers
                .entry(server.clone())
                .or_insert_with(|| Server {
                    name: crate::config::server_address(&server.host, server.port).into(),
                    slots: Arc::new(Semaphore::new(self.limits.max_connections_per_server)),
                    parked: Arc::default(),
                    next_login: Instant::now(),
                });
            let name = Arc::clone(&entry.name);
            (name, Arc::clone(&entry.slots), Arc::clone(&entry.parked))
        };
        // A local slot kept while the fleet has none free, so that only so
        // many polls at a time ask the database again.
        let mut waiting: Option<OwnedSemaphorePermit> = None;
        loop {
            // Registered before looking, so a connection parked after the
            // look still wakes this wait.
            let mut notified = pin!(parked.notified());
            notified.as_mut().enable();
            let idle = self.state().vacant.get_mut(link).and_then(Vec::pop);
            if let Some(idle) = idle {
                return (Some(idle.vacant), idle.slot);
            }
            let permit = waiting
                .take()
                .or_else(|| Arc::clone(&slots).try_acquire_owned().ok());
            if let Some(permit) = permit {
                match self.fleet_slot(permit, &name).await {
                    Ok(slot) => return (None, slot),
                    Err(permit) => waiting = Some(permit),
                }
            }
            if let Some(found) = self.evict(&server, link).await {
                return found;
            }
            if waiting.is_some() {
                tokio::select! {
                    () = tokio::time::sleep(fleet::CLAIM_AGAIN) => {}
                    () = notified => {}
                }
                continue;
            }
            tokio::select! {
                permit = Arc::clone(&slots).acquire_owned() => {
                    waiting = Some(permit.expect("pool semaphores are never closed"));
                }
                () = notified => {}
            }
        }
    }

    /// Takes the slot of a parked connection on `server`: a vacant one of
    /// another kind is closed; the session due last is handed over with
    /// QAUT when its connection is of the kind wanted, else logged out.
    async fn evict(&self, server: &ServerKey, link: &LinkKey) -> Option<(Option<Vacant>, Slot)> {
        match self.take_victim(server, Some(link))? {
            Victim::Vacant(idle) => {
                debug!("connection limit reached; closing a logged-out connection of another kind");
                idle.vacant.quit().await.ok();
                Some((None, idle.slot))
            }
            Victim::Parked(parked) if &parked.link == link && parked.session.can_hand_over() => {
                debug!("connection limit reached; handing the session due last over with QAUT");
                match parked.session.hand_over().await {
                    Ok(vacant) => Some((Some(vacant), parked.slot)),
                    Err(e) => {
                        debug!(error = %e, "QAUT failed; the next login connects afresh");
                        Some((None, parked.slot))
                    }
                }
            }
            Victim::Parked(parked) => {
                debug!("connection limit reached; logging out the parked session due last");
                parked.session.quit().await.ok();
                Some((None, parked.slot))
            }
        }
    }

    /// The parked connection on `server` to give up its slot: a vacant
    /// one not of the kind `wanted`, else the session due last.
    fn take_victim(&self, server: &ServerKey, wanted: Option<&LinkKey>) -> Option<Victim> {
        let mut state = self.state();
        let vacant = (state.vacant.iter_mut())
            .filter(|(other, _)| &other.server() == server && Some(*other) != wanted)
            .find_map(|(_, idle)| idle.pop());
        if let Some(idle) = vacant {
            return Some(Victim::Vacant(idle));
        }
        let latest = (state.parked.iter())
            .filter(|(key, _)| &key.server == server)
            .max_by_key(|(_, parked)| parked.due)
            .map(|(key, _)| key.clone())?;
        state.parked.remove(&latest).map(Victim::Parked)
    }

    /// Ends a lease. A session still logged in is parked for its account
    /// unless the account will not poll again within the idle timeout; a
    /// vacant connection is parked for its server; either is logged out
    /// when the pool is full.
    pub async fn checkin(&self, lease: Lease, kept: Option<Kept>, next_poll: Duration) {
        let Some(kept) = kept else { return };
        let Lease {
            key,
            link,
            slot,
            _mailbox,
            ..
        } = lease;
        let now = Instant::now();
        let refused = {
            let mut state = self.state();
            let room = state.kept() < self.limits.max_idle_connections;
            let server = link.server();
            let refused = match kept {
                Kept::Session(session) if room && next_poll <= self.limits.idle_timeout => {
                    let parked = Parked {
                        session,
                        link,
                        slot,
                        since: now,
                        touched: now,
                        due: now + next_poll,
                    };
                    state.parked.insert(key, parked);
                    None
                }
                Kept::Vacant(vacant) if room => {
                    let idle = Idle {
                        vacant,
                        slot,
                        since: now,
                        touched: now,
                    };
                    state.vacant.entry(link).or_default().push(idle);
                    None
                }
                refused => Some(refused),
            };
            if refused.is_none() {
                if let Some(server) = state.servers.get(&server) {
                    server.parked.notify_waiters();
                }
            }
            refused
        };
        if let Some(kept) = refused {
            kept.quit().await;
        }
    }
}
