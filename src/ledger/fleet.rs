//! The ledger's side of a fleet (`postgres/fleet.rs`): holding an
//! account's lease for a poll, the fence its writes carry, and the
//! connection slots shared with the other instances. Outside a fleet every
//! call here is free: the process is the ledger's only poller.

use std::sync::Arc;

use super::{leases, Engine, Ledger, LedgerError};

#[derive(Debug)]
pub(super) struct Fence {
    account: String,
    epoch: leases::Epoch,
}

/// The right to poll one account, from [`Ledger::hold`]: on a fleet's
/// ledger, its lease under one epoch, and a ledger handle whose writes for
/// the account check that lease. While it lives, the instance does not
/// give the account back to the fleet.
#[derive(Debug)]
pub struct Held {
    ledger: Ledger,
}

impl Held {
    /// The ledger the poll writes to.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let (Some(fence), Some(leases)) = (&self.ledger.fence, self.ledger.leases()) {
            leases.end_poll(&fence.account);
        }
    }
}

impl Ledger {
    pub(super) fn leases(&self) -> Option<&leases::Leases> {
        match &self.inner.engine {
            Engine::Sqlite(_) => None,
            Engine::Postgres(store) => store.leases.as_ref(),
        }
    }

    /// The account and epoch this handle's writes run under, if any.
    pub(super) fn fenced(&self) -> Option<(&str, leases::Epoch)> {
        (self.fence.as_ref()).map(|fence| (fence.account.as_str(), fence.epoch))
    }

    /// The epoch this handle's writes for `account` run under, if any.
    pub(super) fn epoch(&self, account: &str) -> Option<leases::Epoch> {
        (self.fence.as_ref())
            .filter(|fence| fence.account == account)
            .map(|fence| fence.epoch)
    }

    /// Waits until this process may poll `account`: at once when it is the
    /// ledger's only poller; in a fleet, once it holds the account's lease.
    pub async fn hold(&self, account: &str) -> Held {
        let Some(leases) = self.leases() else {
            return Held {
                ledger: self.clone(),
            };
        };
        let mut changed = leases.watch();
        loop {
            if let Some(epoch) = leases.start_poll(account) {
                let fence = Fence {
                    account: account.to_owned(),
                    epoch,
                };
                return Held {
                    ledger: Ledger {
                        inner: Arc::clone(&self.inner),
                        fence: Some(Arc::new(fence)),
                    },
                };
            }
            if changed.changed().await.is_err() {
                // The table is never dropped while a ledger handle lives.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Whether this process still holds `account`, checked before a poll
    /// logs in and before it sends DELE, DELI or QUIT: always outside a
    /// fleet; in a fleet, only while its lease is good by this process's
    /// own clock, which keeps running while the process is stopped.
    pub fn still_holds(&self, account: &str) -> Result<(), LedgerError> {
        let Some(leases) = self.leases() else {
            return Ok(());
        };
        match self.epoch(account) {
            Some(epoch) if leases.valid(account, epoch) => Ok(()),
            _ => Err(LedgerError::Fenced {
                account: account.to_owned(),
            }),
        }
    }

    /// Makes `accounts` known to the fleet, so that they can be claimed:
    /// at start and after a reload. Nothing to do outside a fleet.
    pub async fn offer(&self, accounts: &[String]) -> Result<(), LedgerError> {
        match (&self.inner.engine, self.leases()) {
            (Engine::Postgres(store), Some(_)) => store.offer(accounts).await,
            _ => Ok(()),
        }
    }

    /// Claims, renews and balances this instance's leases for as long as
    /// it runs; `accounts` names the configured accounts at each round.
    /// Returns at once outside a fleet.
    pub async fn keep_leases(&self, accounts: impl Fn() -> Vec<String>) {
        if let (Engine::Postgres(store), Some(leases)) = (&self.inner.engine, self.leases()) {
            store.keep_leases(leases, accounts).await;
        }
    }

    /// Whether new connections need a slot of the fleet's
    /// ([`Ledger::claim_slot`]): only in a fleet.
    pub fn shares_slots(&self) -> bool {
        self.leases().is_some()
    }

    /// Takes a slot for a new connection to `server` (`host:port`), under
    /// a cap of `cap` connections to it across the fleet: `false` when the
    /// fleet has none free, or the database cannot be asked (the caller
    /// asks again shortly). Always `true` outside a fleet. Give it back
    /// with [`Ledger::release_slot`] when the connection closes.
    pub async fn claim_slot(&self, server: &str, cap: usize) -> bool {
        let (Engine::Postgres(store), Some(leases)) = (&self.inner.engine, self.leases()) else {
            return true;
        };
        match store.claim_slot(leases, server, cap).await {
            Ok(won) => won,
            Err(e) => {
                tracing::debug!(error = crate::poll::line_with_causes(&e), "no slot claimed");
                false
            }
        }
    }

    /// A connection under a slot of `server` has closed.
    pub fn release_slot(&self, server: &str) {
        if let Some(leases) = self.leases() {
            leases.slots.release(server);
        }
    }

    /// Servers on which another instance waits for a slot that this one
    /// owes, and which only a parked connection of this one can free.
    pub fn owed_slots(&self) -> Vec<String> {
        self.leases()
            .map(|leases| leases.slots.owed())
            .unwrap_or_default()
    }

    /// Waits until [`Ledger::owed_slots`] may have something to say;
    /// never, outside a fleet.
    pub async fn slot_owed(&self) {
        match self.leases() {
            Some(leases) => leases.slots.owing.notified().await,
            None => std::future::pending().await,
        }
    }

    /// At SIGTERM, before the polls finish: tells the fleet that this
    /// instance is going, so the others no longer count on it.
    pub async fn stopping(&self) -> Result<(), LedgerError> {
        match (&self.inner.engine, self.leases()) {
            (Engine::Postgres(store), Some(leases)) => store.stopping(leases).await,
            _ => Ok(()),
        }
    }

    /// Once the polls have finished: gives back every lease at once, so
    /// the others take the accounts over without waiting for the leases to
    /// run out.
    pub async fn leave(&self) -> Result<(), LedgerError> {
        match (&self.inner.engine, self.leases()) {
            (Engine::Postgres(store), Some(leases)) => store.leave(leases).await,
            _ => Ok(()),
        }
    }
}
