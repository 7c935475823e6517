//! The pool in a fleet: `[daemon] max_connections_per_server` caps the
//! connections of every instance together, through the slots of the
//! ledger (`ledger/slots.rs`). A new connection needs a local slot, as
//! alone, and one of the fleet's; a connection keeps both until it closes,
//! parked or not. When another instance waits for a server this one holds
//! more than its share of, the tender logs out the parked connection due
//! last, as a login here would when the local cap is reached.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tracing::debug;

use super::{Pool, ServerKey, Victim};
use crate::ledger::Ledger;
use crate::session::Kept;

/// How long a poll waits before it asks the fleet for a slot again, when
/// none was free and no connection of its own server was parked meanwhile.
pub(super) const CLAIM_AGAIN: Duration = Duration::from_millis(250);

/// A connection's place under its server's cap: a local permit and, in a
/// fleet, one of the fleet's slots, given back when the connection closes.
#[derive(Debug)]
pub(super) struct Slot {
    _permit: OwnedSemaphorePermit,
    fleet: Option<(Ledger, Arc<str>)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((ledger, server)) = &self.fleet {
            ledger.release_slot(server);
        }
    }
}

impl Pool {
    /// Adds a fleet slot of `server` to a local `permit`; gives the permit
    /// back when the fleet has none free.
    pub(super) async fn fleet_slot(
        &self,
        permit: OwnedSemaphorePermit,
        server: &Arc<str>,
    ) -> Result<Slot, OwnedSemaphorePermit> {
        let Some(ledger) = &self.fleet else {
            return Ok(Slot {
                _permit: permit,
                fleet: None,
            });
        };
        match ledger
            .claim_slot(server, self.limits.max_connections_per_server)
            .await
        {
            true => Ok(Slot {
                _permit: permit,
                fleet: Some((ledger.clone(), Arc::clone(server))),
            }),
            false => Err(permit),
        }
    }

    /// Waits until another instance may be owed a slot; never, outside a
    /// fleet. The tender then runs at once.
    pub async fn slot_owed(&self) {
        match &self.fleet {
            Some(ledger) => ledger.slot_owed().await,
            None => std::future::pending().await,
        }
    }

    /// Logs out parked connections on the servers where another instance
    /// is owed slots, until the debts are paid or none is parked.
    pub(super) async fn pay_owed_slots(&self) {
        let Some(ledger) = &self.fleet else { return };
        let mut owed = ledger.owed_slots();
        while !owed.is_empty() {
            for name in &owed {
                let server: Option<ServerKey> = (self.state().servers.iter())
                    .find(|(_, server)| *server.name == **name)
                    .map(|(key, _)| key.clone());
                let (kept, slot) = match server.and_then(|server| self.take_victim(&server, None)) {
                    Some(Victim::Vacant(idle)) => (Kept::Vacant(idle.vacant), idle.slot),
                    Some(Victim::Parked(parked)) => (Kept::Session(parked.session), parked.slot),
                    None => continue,
                };
                debug!(server = %name, "another instance waits for a slot: logging out a parked connection");
                kept.quit().await;
                // Given back once the connection is closed, not before.
                drop(slot);
            }
            let still = ledger.owed_slots();
            if still == owed {
                // What is still owed is in use by polls; their slots go
                // back as their connections close.
                return;
            }
            owed = still;
        }
    }
}
