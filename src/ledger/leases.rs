//! The leases this instance of a fleet holds, as far as it can be sure of
//! them without asking the database: which accounts, under which epoch,
//! until when, and which are being polled now.
//!
//! The database is the authority (`postgres/fleet.rs`): every write of a
//! poll checks its lease there. This table adds what the database cannot
//! give: a deadline on the monotonic clock, which keeps running while the
//! process is stopped (SIGSTOP, a long GC-like pause, a frozen VM), so an
//! instance that wakes up past its lease sends no DELE, DELI or QUIT
//! before it has even reached the database. A deadline is counted from
//! when the claim or renewal was *sent*, less a margin, so it always ends
//! before the database's own expiry.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::watch;

use super::slots::Slots;
use crate::config::Fleet;

/// A fencing token: the epoch of the claim a poll runs under. It grows on
/// every change of owner, so a stale poll's token never matches again.
pub(super) type Epoch = i64;

#[derive(Debug)]
pub(super) struct Leases {
    /// This instance's row in `instance`, and the owner of its leases:
    /// made fresh by each process start.
    pub owner: String,
    pub terms: Fleet,
    /// The slots held on servers, under the same terms (`slots.rs`).
    pub slots: Slots,
    held: Mutex<HashMap<String, Entry>>,
    /// Bumped whenever an account is gained or lost, for the account tasks
    /// that wait for theirs.
    changed: watch::Sender<()>,
}

#[derive(Debug)]
struct Entry {
    epoch: Epoch,
    deadline: Instant,
    polling: bool,
}

impl Leases {
    pub fn new(owner: String, terms: Fleet) -> Leases {
        Leases {
            owner,
            terms,
            slots: Slots::default(),
            held: Mutex::default(),
            changed: watch::Sender::new(()),
        }
    }

    fn held(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The end of a lease claimed or renewed by a statement sent at `sent`:
    /// a tenth of the lease before the database's expiry, so the process
    /// stops trusting it first. Slots on servers end the same way.
    pub fn deadline(&self, sent: Instant) -> Instant {
        sent + self.terms.lease - self.terms.lease / 10
    }

    /// Marks `account` as being polled and returns its epoch, when its
    /// lease is held and good; the keeper does not give back an account
    /// while it is polled.
    pub fn start_poll(&self, account: &str) -> Option<Epoch> {
        let mut held = self.held();
        let entry = held.get_mut(account)?;
        // A lapsed lease stays until the keeper forgets it, and says so.
        if entry.deadline <= Instant::now() {
            return None;
        }
        entry.polling = true;
        Some(entry.epoch)
    }

    pub fn end_poll(&self, account: &str) {
        if let Some(entry) = self.held().get_mut(account) {
            entry.polling = false;
        }
    }

    /// Whether a poll under `epoch` may still write and delete.
    pub fn valid(&self, account: &str, epoch: Epoch) -> bool {
        self.held()
            .get(account)
            .is_some_and(|entry| entry.epoch == epoch && entry.deadline > Instant::now())
    }

    /// Takes in the accounts a claim sent at `sent` won.
    pub fn granted(&self, grants: Vec<(String, Epoch)>, sent: Instant) {
        if grants.is_empty() {
            return;
        }
        let deadline = self.deadline(sent);
        let mut held = self.held();
        for (account, epoch) in grants {
            held.insert(
                account,
                Entry {
                    epoch,
                    deadline,
                    polling: false,
                },
            );
        }
        drop(held);
        self.changed.send_replace(());
    }

    /// The leases a renewal returned that this table does not have under
    /// the same epoch (a claim that landed though its answer was lost):
    /// to be given back.
    pub fn unknown(&self, kept: &[(String, Epoch)]) -> Vec<String> {
        let held = self.held();
        (kept.iter())
            .filter(|(account, epoch)| held.get(account).is_none_or(|e| e.epoch != *epoch))
            .map(|(account, _)| account.clone())
            .collect()
    }

    /// Takes in what a committed renewal sent at `sent` kept: those
    /// leases' deadlines move on, and every lease it did not return is
    /// lost. Returns how many were lost.
    pub fn renewed(&self, kept: &[(String, Epoch)], sent: Instant) -> usize {
        let deadline = self.deadline(sent);
        let kept: HashMap<&str, Epoch> = kept.iter().map(|(a, e)| (a.as_str(), *e)).collect();
        let mut held = self.held();
        let before = held.len();
        held.retain(|account, entry| kept.get(account.as_str()) == Some(&entry.epoch));
        for entry in held.values_mut() {
            entry.deadline = deadline;
        }
        let lost = before - held.len();
        drop(held);
        if lost > 0 {
            self.changed.send_replace(());
        }
        lost
    }

    /// Forgets leases whose deadline passed (the database could not be
    /// reached to renew them); returns how many.
    pub fn expire(&self) -> usize {
        let now = Instant::now();
        let mut held = self.held();
        let before = held.len();
        held.retain(|_, entry| entry.deadline > now);
        let lost = before - held.len();
        drop(held);
        if lost > 0 {
            self.changed.send_replace(());
        }
        lost
    }

    /// Takes up to `n` leases whose accounts are not being polled out of
    /// the table, to be given back: no poll can start under them from now.
    /// Accounts no longer `configured` go first, whatever `n`.
    pub fn take_idle(&self, n: usize, configured: &HashSet<&str>) -> Vec<String> {
        let mut held = self.held();
        let idle = |(_, entry): &(&String, &Entry)| !entry.polling;
        let removed = (held.iter())
            .filter(idle)
            .filter(|(account, _)| !configured.contains(account.as_str()));
        let surplus = (held.iter())
            .filter(idle)
            .filter(|(account, _)| configured.contains(account.as_str()))
            .take(n);
        let idle: Vec<String> = removed
            .chain(surplus)
            .map(|(account, _)| account.clone())
            .collect();
        for account in &idle {
            held.remove(account);
        }
        idle
    }

    /// Forgets every lease, at shutdown: they are given back as a whole.
    pub fn take_all(&self) -> Vec<String> {
        self.held().drain().map(|(account, _)| account).collect()
    }

    pub fn count(&self) -> usize {
        self.held().len()
    }

    /// Waits until an account is gained or lost.
    pub fn watch(&self) -> watch::Receiver<()> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn leases(lease: Duration) -> Leases {
        Leases::new(
            "test".into(),
            Fleet {
                lease,
                capacity: 10,
            },
        )
    }

    #[test]
    fn a_renewal_that_leaves_out_a_lease_loses_it() {
        let leases = leases(Duration::from_secs(30));
        let now = Instant::now();
        leases.granted(vec![("a".into(), 1), ("b".into(), 2)], now);
        assert_eq!(leases.start_poll("a"), Some(1));
        assert!(leases.unknown(&[("a".into(), 1)]).is_empty());
        assert_eq!(leases.renewed(&[("a".into(), 1)], now), 1);
        assert!(leases.valid("a", 1));
        assert!(!leases.valid("b", 2));
        assert!(!leases.valid("a", 3), "another epoch is not this lease");
    }

    #[test]
    fn a_renewal_under_another_epoch_is_a_lost_lease() {
        let leases = leases(Duration::from_secs(30));
        let now = Instant::now();
        leases.granted(vec![("a".into(), 1)], now);
        let kept = [("a".into(), 5)];
        assert_eq!(
            leases.unknown(&kept),
            vec!["a".to_owned()],
            "to be given back"
        );
        assert_eq!(leases.renewed(&kept, now), 1);
        assert_eq!(leases.start_poll("a"), None);
    }

    #[test]
    fn a_lease_past_its_deadline_is_not_trusted() {
        let leases = leases(Duration::from_secs(2));
        let long_ago = Instant::now() - Duration::from_secs(2);
        leases.granted(vec![("a".into(), 1)], long_ago);
        assert!(!leases.valid("a", 1));
        assert_eq!(leases.start_poll("a"), None);
        assert_eq!(leases.count(), 1, "kept for the keeper to report");
        assert_eq!(leases.expire(), 1);
        assert_eq!(leases.count(), 0);
    }

    #[test]
    fn an_account_being_polled_is_not_given_back() {
        let leases = leases(Duration::from_secs(30));
        leases.granted(vec![("a".into(), 1), ("b".into(), 2)], Instant::now());
        leases.start_poll("a");
        let configured = HashSet::from(["a", "b"]);
        assert_eq!(leases.take_idle(2, &configured), vec!["b".to_owned()]);
        leases.end_poll("a");
        assert_eq!(leases.take_idle(2, &configured), vec!["a".to_owned()]);
    }

    #[test]
    fn an_account_removed_from_the_config_is_given_back_first() {
        let leases = leases(Duration::from_secs(30));
        leases.granted(vec![("a".into(), 1), ("b".into(), 2)], Instant::now());
        let configured = HashSet::from(["a"]);
        assert_eq!(leases.take_idle(0, &configured), vec!["b".to_owned()]);
        assert_eq!(leases.count(), 1);
    }
}
