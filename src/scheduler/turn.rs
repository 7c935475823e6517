//! An account's turn to poll, and the poll made in it.

use std::time::Duration;

use tokio::sync::SemaphorePermit;

use super::interval::Pace;
use super::{next_delay, Shared};
use crate::config::Account;
use crate::deliver::Relay;
use crate::ledger::{Held, PollReport};
use crate::poll::{poll_session, Ending, PollError, PollOptions};
use crate::pool::Lease;

/// An account's turn to poll: in a fleet, the account's lease (the
/// [`Ledger`](crate::ledger::Ledger)'s [`Held`]); its mailbox, a connection
/// slot on its server and, unless it is still logged in, its server's next
/// login time (the [`Pool`](crate::pool::Pool)'s lease), then one of the
/// slots of `max_concurrent_polls`.
///
/// The lease comes first so that the accounts of one server never hold
/// more of the poll slots than that server's connections: a server that
/// stalls ties up `max_connections_per_server` slots, and the others go on.
#[derive(Debug)]
pub struct Turn<'a> {
    shared: &'a Shared,
    held: Held,
    lease: Lease,
    _slot: SemaphorePermit<'a>,
}

/// A poll made through the pool, and when the account is next due.
#[derive(Debug)]
pub struct Pooled {
    pub result: Result<PollReport, PollError>,
    pub next: Duration,
}

impl Shared {
    /// Waits for `account`'s [`Turn`].
    pub async fn turn(&self, account: &Account) -> Turn<'_> {
        let held = self.ledger.hold(&account.name).await;
        let lease = self.pool.checkout(account).await;
        let slot = (self.polls.acquire().await).expect("the poll semaphore is never closed");
        Turn {
            shared: self,
            held,
            lease,
            _slot: slot,
        }
    }

    /// Waits for `account`'s turn and polls it. `pace` is what the
    /// account's earlier polls left: failures in a row and polls that
    /// found nothing.
    pub async fn poll(
        &self,
        account: &Account,
        relay: &Relay,
        options: &PollOptions,
        pace: &mut Pace,
    ) -> Pooled {
        let turn = self.turn(account).await;
        turn.poll(account, relay, options, pace).await
    }
}

impl Turn<'_> {
    /// One poll of `account`, on the kept session or vacant connection the
    /// lease holds if any; what is left logged in is parked again after.
    /// `pace` is what the account's earlier polls left.
    pub async fn poll(
        mut self,
        account: &Account,
        relay: &Relay,
        options: &PollOptions,
        pace: &mut Pace,
    ) -> Pooled {
        let parked = self.lease.kept.take();
        let ledger = self.held.ledger();
        let polled = poll_session(account, ledger, relay, options, parked, Ending::Park).await;
        let next = next_delay(account, &polled, pace, &self.shared.limits);
        (self.shared.pool)
            .checkin(self.lease, polled.parked, next)
            .await;
        Pooled {
            result: polled.result,
            next,
        }
    }

    /// One poll of `account` that logs out at the end, for `popferry
    /// fetch`: its logins are spaced and its polls counted all the same.
    pub async fn poll_once(
        self,
        account: &Account,
        relay: &Relay,
        options: &PollOptions,
    ) -> Result<PollReport, PollError> {
        let ledger = self.held.ledger();
        (poll_session(account, ledger, relay, options, None, Ending::Quit).await).result
    }
}
