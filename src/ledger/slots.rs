//! The connection slots this instance of a fleet holds on each POP3
//! server, so that `[daemon] max_connections_per_server` caps the whole
//! fleet's connections to a server, not each instance's.
//!
//! The database has one row per slot and server (`postgres/slots.rs`); a
//! connection opens only under a slot, and the instance holds its slots
//! under the lease terms, renewed with its heartbeat, so a dead instance's
//! slots come free within a lease. Asking the database for every new
//! connection would cost two writes a poll with fresh logins, so a slot
//! whose connection closed stays here for the next one, and goes back at
//! the end of a round in which it was not needed, or at once when another
//! instance is waiting for one and this one holds more than its share.
//!
//! Slots are not fenced like leases: an instance stopped past its lease
//! can have more connections open than it still holds slots for, until
//! they close. That costs the server a connection over the cap (and maybe
//! a refused login), never a message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::Notify;

/// A slot: its number among its server's rows.
pub(super) type SlotNo = i64;

#[derive(Debug)]
pub(super) struct Slots {
    servers: Mutex<HashMap<String, Server>>,
    /// Woken when a slot is owed to another instance and free to go back.
    pub give_back: Notify,
    /// Woken when a slot is owed that only a parked connection can free.
    pub owing: Notify,
    /// The live instances at the last renewal, which divide each cap.
    instances: AtomicUsize,
}

#[derive(Debug, Default)]
struct Server {
    /// The slots held, each with the end of its lease on the monotonic
    /// clock.
    held: Vec<(SlotNo, Instant)>,
    /// Connections open under a slot (parked ones included).
    in_use: usize,
    /// The most in use since the last round.
    peak: usize,
    /// Slots to give back as soon as they are free: other instances are
    /// waiting, and this one holds more than its share.
    owed: usize,
    /// Whether another instance was waiting for a slot at the last
    /// renewal: until one without, this one claims none beyond its share,
    /// or the slots it pays back would come straight back to it.
    contested: bool,
    /// Taken off `held`, to be released in the database.
    leaving: Vec<SlotNo>,
    /// Whether this process has made the server's rows.
    seeded: bool,
    /// The fleet's cap on the server's connections.
    cap: usize,
}

/// What a renewal returned of one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Renewed {
    pub server: String,
    pub slot: SlotNo,
    /// Whether another instance asked for one of this server's slots in
    /// vain since the last renewal.
    pub wanted: bool,
}

impl Default for Slots {
    fn default() -> Slots {
        Slots {
            servers: Mutex::default(),
            give_back: Notify::new(),
            owing: Notify::new(),
            instances: AtomicUsize::new(1),
        }
    }
}

impl Slots {
    fn servers(&self) -> MutexGuard<'_, HashMap<String, Server>> {
        self.servers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot of `server` that this instance holds and no
    /// connection uses, if there is one whose lease is still good.
    pub fn take_held(&self, server: &str) -> bool {
        let mut servers = self.servers();
        let entry = servers.entry(server.to_owned()).or_default();
        let now = Instant::now();
        entry.held.retain(|(_, deadline)| *deadline > now);
        if entry.held.len() <= entry.in_use {
            return false;
        }
        entry.use_one();
        true
    }

    /// What this instance may ask for when the others hold every slot:
    /// its share of the cap, and at least one, so that with fewer slots
    /// than instances the slots go round.
    fn share(&self, cap: usize) -> usize {
        (cap / self.instances.load(Ordering::Relaxed).max(1)).max(1)
    }

    /// What this instance may hold of a cap while others wait for a
    /// slot: its share, nothing when there are fewer slots than
    /// instances (then every holder gives way in turn).
    fn share_while_wanted(&self, cap: usize) -> usize {
        cap / self.instances.load(Ordering::Relaxed).max(1)
    }

    /// Whether this instance, finding every slot of `server` taken, may
    /// ask the holders to give some back: only while it holds less than
    /// its share.
    pub fn may_want(&self, server: &str, cap: usize) -> bool {
        let held = self
            .servers()
            .get(server)
            .map_or(0, |entry| entry.held.len());
        held < self.share(cap)
    }

    /// Whether this instance may claim another of `server`'s slots from
    /// the database: while others wait for one, only below its share of
    /// the cap (none when there are fewer slots than instances), so that a
    /// slot given back goes to one of them.
    pub fn may_claim(&self, server: &str) -> bool {
        self.servers().get(server).is_none_or(|entry| {
            !entry.contested || entry.held.len() < self.share_while_wanted(entry.cap)
        })
    }

    /// Whether `server`'s rows still have to be made by this process.
    pub fn needs_seeding(&self, server: &str) -> bool {
        !self.servers().get(server).is_some_and(|s| s.seeded)
    }

    pub fn seeded(&self, server: &str) {
        self.servers().entry(server.to_owned()).or_default().seeded = true;
    }

    /// Takes in the slot a claim won, for a new connection, and the cap
    /// it was claimed under.
    pub fn granted(&self, server: &str, slot: SlotNo, deadline: Instant, cap: usize) {
        let mut servers = self.servers();
        let entry = servers.entry(server.to_owned()).or_default();
        entry.cap = cap;
        entry.held.push((slot, deadline));
        entry.use_one();
    }

    /// A connection under one of `server`'s slots has closed. The slot
    /// stays for the next connection unless it is owed.
    pub fn release(&self, server: &str) {
        let mut servers = self.servers();
        let Some(entry) = servers.get_mut(server) else {
            return;
        };
        entry.in_use = entry.in_use.saturating_sub(1);
        if entry.pay_debts() {
            drop(servers);
            self.give_back.notify_one();
        }
    }

    /// Takes in a committed renewal: the slots it returned are held until
    /// `deadline`, the others are lost. Where another instance waits for a
    /// server's slot, this one owes what it holds beyond its share of the
    /// cap among `instances` live instances. Returns how many were lost.
    pub fn renewed(&self, kept: &[Renewed], instances: usize, deadline: Instant) -> usize {
        self.instances.store(instances.max(1), Ordering::Relaxed);
        let mut servers = self.servers();
        // A slot won by a claim whose answer was lost: free, so it goes
        // back at the end of the round.
        for renewed in kept {
            servers.entry(renewed.server.clone()).or_default();
        }
        let mut lost = 0;
        for (name, entry) in servers.iter_mut() {
            let mine = |r: &&Renewed| &r.server == name && !entry.leaving.contains(&r.slot);
            let returned: Vec<SlotNo> = kept.iter().filter(mine).map(|r| r.slot).collect();
            // A slot claimed after the renewal was sent is newer than its
            // answer: its deadline is later.
            for (slot, ends) in std::mem::take(&mut entry.held) {
                if returned.contains(&slot) {
                    continue;
                }
                match ends > deadline {
                    true => entry.held.push((slot, ends)),
                    false => lost += 1,
                }
            }
            entry
                .held
                .extend(returned.iter().map(|&slot| (slot, deadline)));
            let wanted = kept.iter().any(|r| &r.server == name && r.wanted);
            let share = self.share_while_wanted(entry.cap);
            entry.owed = match wanted {
                true => entry.held.len().saturating_sub(share),
                false => 0,
            };
            entry.contested = wanted;
            entry.pay_debts();
        }
        if servers.values().any(|entry| entry.owed > 0) {
            self.owing.notify_one();
        }
        lost
    }

    /// At the end of a round: the slots no connection needed during it
    /// join those to be given back, and every slot to be given back is
    /// handed over, by server.
    pub fn end_round(&self) -> Vec<(String, SlotNo)> {
        let mut servers = self.servers();
        for entry in servers.values_mut() {
            let spare = entry
                .held
                .len()
                .saturating_sub(entry.peak.max(entry.in_use));
            entry.give(spare);
            entry.peak = entry.in_use;
        }
        drop(servers);
        self.leaving()
    }

    /// The slots to be given back now, by server.
    pub fn leaving(&self) -> Vec<(String, SlotNo)> {
        let mut servers = self.servers();
        let mut leaving = Vec::new();
        for (name, entry) in servers.iter_mut() {
            leaving.extend(entry.leaving.drain(..).map(|slot| (name.clone(), slot)));
        }
        leaving
    }

    /// Servers where this instance owes a slot that a parked connection
    /// holds: the pool logs one of them out.
    pub fn owed(&self) -> Vec<String> {
        (self.servers().iter())
            .filter(|(_, entry)| entry.owed > 0)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Forgets every slot, when the instance leaves the fleet.
    pub fn take_all(&self) {
        self.servers().clear();
    }
}

impl Server {
    fn use_one(&mut self) {
        self.in_use += 1;
        self.peak = self.peak.max(self.in_use);
    }

    /// Gives back `n` slots no connection uses.
    fn give(&mut self, n: usize) {
        let free = self.held.len().saturating_sub(self.in_use);
        for _ in 0..n.min(free) {
            if let Some((slot, _)) = self.held.pop() {
                self.leaving.push(slot);
            }
        }
    }

    /// Gives back owed slots that are free; says whether any went.
    fn pay_debts(&mut self) -> bool {
        let before = self.leaving.len();
        self.give(self.owed);
        let paid = self.leaving.len() - before;
        self.owed -= paid;
        paid > 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    fn renewed(server: &str, slots: &[SlotNo], wanted: bool) -> Vec<Renewed> {
        (slots.iter())
            .map(|&slot| Renewed {
                server: server.into(),
                slot,
                wanted,
            })
            .collect()
    }

    #[test]
    fn a_slot_whose_connection_closed_serves_the_next_connection() {
        let slots = Slots::default();
        assert!(!slots.take_held("a:110"), "nothing held yet");
        slots.granted("a:110", 1, later(), 4);
        assert!(!slots.take_held("a:110"), "the one slot is in use");
        slots.release("a:110");
        assert!(slots.take_held("a:110"));
        assert!(slots.leaving().is_empty());
    }

    #[test]
    fn a_slot_past_its_deadline_is_not_used_again() {
        let slots = Slots::default();
        slots.granted("a:110", 1, Instant::now(), 4);
        slots.release("a:110");
        assert!(!slots.take_held("a:110"));
    }

    #[test]
    fn slots_unused_for_a_whole_round_go_back() {
        let slots = Slots::default();
        slots.granted("a:110", 1, later(), 4);
        slots.granted("a:110", 2, later(), 4);
        slots.release("a:110");
        slots.release("a:110");
        assert!(slots.end_round().is_empty(), "both were in use this round");
        assert!(slots.take_held("a:110"));
        let back = slots.end_round();
        assert_eq!(back.len(), 1, "one slot was not needed: {back:?}");
        assert!(!slots.take_held("a:110"), "the slot kept is in use");
    }

    #[test]
    fn a_wanted_server_gets_back_what_this_instance_holds_beyond_its_share() {
        let slots = Slots::default();
        for slot in 1..=4 {
            slots.granted("a:110", slot, later(), 4);
        }
        let lost = slots.renewed(&renewed("a:110", &[1, 2, 3, 4], true), 2, later());
        assert_eq!(lost, 0);
        assert!(slots.leaving().is_empty(), "all four are in use");
        assert_eq!(slots.owed(), ["a:110"]);
        slots.release("a:110");
        assert_eq!(slots.leaving().len(), 1, "the first to close goes back");
        slots.release("a:110");
        assert_eq!(slots.leaving().len(), 1);
        assert!(slots.owed().is_empty(), "two left: the share of 4 among 2");
        slots.release("a:110");
        assert!(
            slots.leaving().is_empty(),
            "the rest stay for this instance"
        );
    }

    #[test]
    fn with_fewer_slots_than_instances_a_holder_of_one_gives_it_up() {
        let slots = Slots::default();
        slots.granted("a:110", 1, later(), 2);
        slots.renewed(&renewed("a:110", &[1], true), 3, later());
        assert_eq!(slots.owed(), ["a:110"], "the share of 2 among 3 is one");
        slots.release("a:110");
        assert_eq!(slots.leaving().len(), 1);
        assert!(slots.may_want("a:110", 2), "holding none, it may ask");
    }

    #[test]
    fn a_slot_paid_back_is_not_claimed_again_while_another_instance_waits() {
        let slots = Slots::default();
        for slot in 1..=3 {
            slots.granted("a:110", slot, later(), 4);
        }
        assert!(slots.may_claim("a:110"), "nobody else waits");
        slots.renewed(&renewed("a:110", &[1, 2, 3], true), 3, later());
        for _ in 0..3 {
            slots.release("a:110");
        }
        assert_eq!(slots.leaving().len(), 2, "the share of 4 among 3 is one");
        assert!(!slots.may_claim("a:110"), "the one waiting gets them");
        slots.renewed(&renewed("a:110", &[1], false), 3, later());
        assert!(slots.may_claim("a:110"), "nobody waits any more");
    }

    #[test]
    fn a_slot_the_renewal_did_not_return_is_lost() {
        let slots = Slots::default();
        slots.granted("a:110", 1, later(), 4);
        slots.granted("a:110", 2, later(), 4);
        let lost = slots.renewed(&renewed("a:110", &[2], false), 1, later());
        assert_eq!(lost, 1);
        slots.release("a:110");
        assert!(!slots.take_held("a:110"), "one slot, still in use");
    }
}
