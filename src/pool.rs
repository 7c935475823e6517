//! The POP3 connection pool of `popferry run`.
//!
//! After a poll on a server that offers SLEE-WAKE the session is parked
//! here asleep: the deletions are committed and the next poll costs one
//! WAKE instead of TCP + TLS + login. The pool also enforces what servers
//! cannot be trusted to: at most one awake session per mailbox (the
//! reference SLEE-WAKE server does no locking at all), and a cap on open
//! connections per server, parked ones included. When a new login needs a
//! slot that parked sessions hold, the one whose account polls last is
//! logged out. Not the longest-idle one: accounts on one clock poll in
//! turn, so the longest-idle session is the very next one needed, and with
//! more accounts than slots every poll would log out the session the next
//! poll wants and log in afresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};
use tracing::debug;

use crate::config::{Account, Daemon};
use crate::session::Session;

/// One mailbox: two accounts naming the same login share its lock.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MailboxKey {
    server: ServerKey,
    username: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ServerKey {
    host: String,
    port: u16,
}

impl MailboxKey {
    fn of(account: &Account) -> MailboxKey {
        MailboxKey {
            server: ServerKey {
                host: account.pop3.host.to_ascii_lowercase(),
                port: account.pop3.port,
            },
            username: account.username.clone(),
        }
    }
}

#[derive(Debug)]
struct Parked {
    session: Session,
    permit: OwnedSemaphorePermit,
    /// When it was parked; the idle timeout counts from here.
    since: Instant,
    /// When the server last heard from it.
    touched: Instant,
    /// When its account polls next.
    due: Instant,
}

#[derive(Debug, Default)]
struct State {
    mailboxes: HashMap<MailboxKey, Arc<tokio::sync::Mutex<()>>>,
    servers: HashMap<ServerKey, Arc<Semaphore>>,
    parked: HashMap<MailboxKey, Parked>,
}

/// Shared by every account task of the daemon.
#[derive(Debug, Clone)]
pub struct Pool {
    limits: Daemon,
    state: Arc<Mutex<State>>,
}

/// The right to poll one mailbox: its lock, a connection slot on its
/// server, and the parked session if there was one.
#[derive(Debug)]
pub struct Lease {
    pub session: Option<Session>,
    key: MailboxKey,
    permit: OwnedSemaphorePermit,
    _mailbox: OwnedMutexGuard<()>,
}

impl Pool {
    pub fn new(limits: Daemon) -> Pool {
        Pool {
            limits,
            state: Arc::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `account`'s mailbox is free and a connection slot on its
    /// server is available.
    pub async fn checkout(&self, account: &Account) -> Lease {
        let key = MailboxKey::of(account);
        let lock = Arc::clone(self.state().mailboxes.entry(key.clone()).or_default());
        let guard = lock.lock_owned().await;
        let parked = self.state().parked.remove(&key);
        let (session, permit) = match parked {
            Some(parked) => (Some(parked.session), parked.permit),
            None => (None, self.slot(&key.server).await),
        };
        Lease {
            session,
            key,
            permit,
            _mailbox: guard,
        }
    }

    /// A connection slot on `server`, taken from the parked session there
    /// that is due last if every slot is in use.
    async fn slot(&self, server: &ServerKey) -> OwnedSemaphorePermit {
        let semaphore = Arc::clone(
            self.state()
                .servers
                .entry(server.clone())
                .or_insert_with(|| {
                    Arc::new(Semaphore::new(self.limits.max_connections_per_server))
                }),
        );
        if let Ok(permit) = Arc::clone(&semaphore).try_acquire_owned() {
            return permit;
        }
        let victim = {
            let mut state = self.state();
            let latest = state
                .parked
                .iter()
                .filter(|(key, _)| &key.server == server)
                .max_by_key(|(_, parked)| parked.due)
                .map(|(key, _)| key.clone());
            latest.and_then(|key| state.parked.remove(&key))
        };
        match victim {
            Some(victim) => {
                debug!("connection limit reached; logging out the parked session due last");
                victim.session.quit().await.ok();
                victim.permit
            }
            None => semaphore
                .acquire_owned()
                .await
                .expect("pool semaphores are never closed"),
        }
    }

    /// Ends a lease. A sleeping session is parked unless the account will
    /// not poll again within the idle timeout or the pool is full; then it
    /// is logged out.
    pub async fn checkin(&self, lease: Lease, session: Option<Session>, next_poll: Duration) {
        let Some(session) = session else { return };
        let now = Instant::now();
        let parked = Parked {
            session,
            permit: lease.permit,
            since: now,
            touched: now,
            due: now + next_poll,
        };
        let refused = if next_poll > self.limits.idle_timeout {
            Some(parked)
        } else {
            let mut state = self.state();
            if state.parked.len() >= self.limits.max_idle_connections {
                Some(parked)
            } else {
                state.parked.insert(lease.key, parked);
                None
            }
        };
        if let Some(parked) = refused {
            parked.session.quit().await.ok();
        }
    }

    /// NOOPs parked sessions the server has not heard from for a keepalive
    /// period, and logs out those idle longer than the idle timeout. A
    /// session that fails its NOOP is dropped; its account logs in afresh.
    pub async fn tend(&self) {
        let now = Instant::now();
        let due: Vec<(MailboxKey, Parked, OwnedMutexGuard<()>)> = {
            let mut state = self.state();
            let keys: Vec<MailboxKey> = state
                .parked
                .iter()
                .filter(|(_, p)| {
                    now.duration_since(p.touched) >= self.limits.keepalive
                        || now.duration_since(p.since) >= self.limits.idle_timeout
                })
                .map(|(key, _)| key.clone())
                .collect();
            keys.into_iter()
                .filter_map(|key| {
                    // A poll holding the mailbox is about to take the
                    // session anyway.
                    let guard = Arc::clone(state.mailboxes.get(&key)?)
                        .try_lock_owned()
                        .ok()?;
                    let parked = state.parked.remove(&key)?;
                    Some((key, parked, guard))
                })
                .collect()
        };
        for (key, mut parked, _guard) in due {
            if now.duration_since(parked.since) >= self.limits.idle_timeout {
                debug!(mailbox = %key.username, "idle timeout; logging out the parked session");
                parked.session.quit().await.ok();
                continue;
            }
            match parked.session.keepalive().await {
                Ok(()) => {
                    parked.touched = Instant::now();
                    self.state().parked.insert(key, parked);
                }
                Err(e) => debug!(mailbox = %key.username, error = %e, "parked session lost"),
            }
        }
    }

    /// Logs out `account`'s parked session, if any (the account was removed
    /// or changed).
    pub async fn discard(&self, account: &Account) {
        let parked = self.state().parked.remove(&MailboxKey::of(account));
        if let Some(parked) = parked {
            parked.session.quit().await.ok();
        }
    }

    /// Parked sessions per server (`host:port`), every server the pool
    /// has known included, so a gauge falls back to zero.
    pub fn parked_per_server(&self) -> Vec<(String, usize)> {
        let state = self.state();
        let mut counts: HashMap<&ServerKey, usize> =
            state.servers.keys().map(|server| (server, 0)).collect();
        for key in state.parked.keys() {
            *counts.entry(&key.server).or_default() += 1;
        }
        (counts.into_iter())
            .map(|(server, n)| (format!("{}:{}", server.host, server.port), n))
            .collect()
    }

    /// Logs out every parked session, at shutdown.
    pub async fn close(&self) {
        let parked: Vec<Parked> = self.state().parked.drain().map(|(_, p)| p).collect();
        let mut quits = tokio::task::JoinSet::new();
        for p in parked {
            quits.spawn(async move { p.session.quit().await.ok() });
        }
        quits.join_all().await;
    }
}
