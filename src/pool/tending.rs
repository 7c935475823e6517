//! What the pool does between polls: keepalives, idle timeouts, removed
//! accounts, the gauge, shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::OwnedMutexGuard;
use tracing::debug;

use super::{Idle, LinkKey, MailboxKey, Parked, Pool, ServerKey};
use crate::config::Account;
use crate::session::Kept;

impl Pool {
    /// NOOPs parked connections the server has not heard from for a
    /// keepalive period, and logs out those idle longer than the idle
    /// timeout. A session that fails its NOOP is dropped; its account logs
    /// in afresh.
    pub async fn tend(&self) {
        self.tend_sessions().await;
        self.tend_vacant().await;
        self.pay_owed_slots().await;
    }

    fn due(&self, touched: Instant, since: Instant, now: Instant) -> bool {
        now.duration_since(touched) >= self.limits.keepalive
            || now.duration_since(since) >= self.limits.idle_timeout
    }

    async fn tend_sessions(&self) {
        let now = Instant::now();
        let due: Vec<(MailboxKey, Parked, OwnedMutexGuard<()>)> = {
            let mut state = self.state();
            let keys: Vec<MailboxKey> = (state.parked.iter())
                .filter(|(_, p)| self.due(p.touched, p.since, now))
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
                    let server = key.server.clone();
                    let mut state = self.state();
                    state.parked.insert(key, parked);
                    if let Some(server) = state.servers.get(&server) {
                        server.parked.notify_waiters();
                    }
                }
                Err(e) => debug!(mailbox = %key.username, error = %e, "parked session lost"),
            }
        }
    }

    async fn tend_vacant(&self) {
        let now = Instant::now();
        let due: Vec<(LinkKey, Idle)> = {
            let mut state = self.state();
            let mut due = Vec::new();
            for (link, idle) in &mut state.vacant {
                let (stale, fresh) = std::mem::take(idle)
                    .into_iter()
                    .partition(|i| self.due(i.touched, i.since, now));
                *idle = fresh;
                due.extend(stale.into_iter().map(|i: Idle| (link.clone(), i)));
            }
            due
        };
        for (link, mut idle) in due {
            if now.duration_since(idle.since) >= self.limits.idle_timeout {
                debug!("idle timeout; closing a logged-out connection");
                idle.vacant.quit().await.ok();
                continue;
            }
            match idle.vacant.keepalive().await {
                Ok(()) => {
                    idle.touched = Instant::now();
                    let server = link.server();
                    let mut state = self.state();
                    state.vacant.entry(link).or_default().push(idle);
                    if let Some(server) = state.servers.get(&server) {
                        server.parked.notify_waiters();
                    }
                }
                Err(e) => debug!(error = %e, "logged-out connection lost"),
            }
        }
    }

    /// Logs out `account`'s parked session, if any (the account was removed
    /// or changed).
    pub async fn discard(&self, account: &Account) {
        let parked = self.state().parked.remove(&MailboxKey::of(account));
        if let Some(parked) = parked {
            // At shutdown every account task discards at once.
            let _turn = self.closing.acquire().await;
            parked.session.quit().await.ok();
        }
    }

    /// Parked connections per server (`host:port`), logged-out ones
    /// included, every server the pool has known listed, so a gauge falls
    /// back to zero.
    pub fn parked_per_server(&self) -> Vec<(String, usize)> {
        let state = self.state();
        let mut counts: HashMap<ServerKey, usize> = state
            .servers
            .keys()
            .map(|server| (server.clone(), 0))
            .collect();
        for key in state.parked.keys() {
            *counts.entry(key.server.clone()).or_default() += 1;
        }
        for (link, idle) in &state.vacant {
            *counts.entry(link.server()).or_default() += idle.len();
        }
        (counts.into_iter())
            .map(|(server, n)| (crate::config::server_address(&server.host, server.port), n))
            .collect()
    }

    /// Logs out every parked connection, at shutdown, [`CLOSING_AT_ONCE`]
    /// at a time together with those the account tasks discard as they
    /// stop: ten thousand parked sessions logging out at once would be a
    /// burst for the server and a read buffer each for popferry.
    pub async fn close(&self) {
        let (parked, vacant): (Vec<Parked>, Vec<Idle>) = {
            let mut state = self.state();
            let parked = state.parked.drain().map(|(_, p)| p).collect();
            let vacant = state.vacant.drain().flat_map(|(_, idle)| idle).collect();
            (parked, vacant)
        };
        let mut quits = tokio::task::JoinSet::new();
        let sessions = parked
            .into_iter()
            .map(|p| (Kept::Session(p.session), p.slot));
        let vacant = (vacant.into_iter()).map(|idle| (Kept::Vacant(idle.vacant), idle.slot));
        for (one, slot) in sessions.chain(vacant) {
            let turn = Arc::clone(&self.closing).acquire_owned().await;
            // Each slot is given back once its connection is closed.
            quits.spawn(async move {
                one.quit().await;
                drop((slot, turn));
            });
        }
        quits.join_all().await;
    }
}

/// How many parked connections the pool logs out at once.
pub(super) const CLOSING_AT_ONCE: usize = 64;
