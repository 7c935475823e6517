//! Several messages under one unique-id.
//!
//! RFC 1939 lets a server list one unique-id for several messages, and a
//! server that derives the id from the content (popa3d) does so for every
//! identical copy. The ledger records a uid, so such a group moves as one
//! message: the plan names its first number and carries the others as its
//! copies; the fetch stage reads every copy and compares their digests; a
//! group whose bytes are all the same is delivered once, recorded once,
//! and then every copy is deleted. A group whose copies differ means the
//! server's ids are broken there: a record for the uid could stand for
//! either message, so none of them is moved, and the rest of the mailbox
//! still is.
//!
//! Copies are always named by number: with UID-PARAM, `UID:<uid>` would
//! name whichever of them the server picks.

use std::collections::{HashMap, HashSet};

use ring::digest::{digest, SHA256};

use crate::ledger::{Ledger, LedgerError};

/// The groups of one listing, found once before the plan is made.
#[derive(Debug, Default)]
pub(super) struct Groups {
    /// By the listing index of a group's first entry: the numbers of the
    /// other entries, in listing order.
    copies: HashMap<usize, Vec<u32>>,
    /// The listing indices of the entries after a group's first.
    later: HashSet<usize>,
}

impl Groups {
    /// Sorts indices rather than hashing the uids, so a listing of a
    /// million distinct ids costs 8 MB here and nothing is kept for it.
    pub(super) fn find(uids: &[(u32, String)]) -> Groups {
        let mut order: Vec<usize> = (0..uids.len()).collect();
        order.sort_unstable_by(|&a, &b| uids[a].1.cmp(&uids[b].1).then(a.cmp(&b)));
        let mut groups = Groups::default();
        for run in order.chunk_by(|&a, &b| uids[a].1 == uids[b].1) {
            let [first, rest @ ..] = run else { continue };
            if rest.is_empty() {
                continue;
            }
            groups
                .copies
                .insert(*first, rest.iter().map(|&i| uids[i].0).collect());
            groups.later.extend(rest);
        }
        groups
    }

    /// The copies of the listing entry at `index` (none for a uid listed
    /// once), or `None` when the entry is itself a copy and goes with the
    /// first entry of its uid.
    pub(super) fn take(&mut self, index: usize) -> Option<Vec<u32>> {
        if self.later.contains(&index) {
            return None;
        }
        Some(self.copies.remove(&index).unwrap_or_default())
    }
}

/// What LIST says about the size of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sizes {
    /// One size for every message of the group.
    Agree(u64),
    /// A copy of the first message's size has another: they cannot be
    /// the same bytes, so they are not read to find out.
    Differ(u64),
    /// LIST does not show the first message.
    Unlisted,
}

/// A copy missing from LIST counts as differing: nothing shows it is the
/// same message, and it would have to be deleted with the others.
pub(super) fn sizes(n: u32, copies: &[u32], listed: &HashMap<u32, u64>) -> Sizes {
    let Some(&size) = listed.get(&n) else {
        return Sizes::Unlisted;
    };
    if copies.iter().all(|c| listed.get(c) == Some(&size)) {
        Sizes::Agree(size)
    } else {
        Sizes::Differ(size)
    }
}

/// Whether the bodies of a group read so far are byte-identical, kept as
/// one SHA-256 digest so no copy stays in memory once read.
#[derive(Debug, Default)]
pub(super) struct Compared {
    first: Option<[u8; 32]>,
    differ: bool,
}

impl Compared {
    pub(super) fn add(&mut self, body: &[u8]) {
        let mut this = [0; 32];
        this.copy_from_slice(digest(&SHA256, body).as_ref());
        match self.first {
            None => self.first = Some(this),
            Some(first) => self.differ |= first != this,
        }
    }

    pub(super) fn identical(&self) -> bool {
        !self.differ
    }
}

/// Leaves a group whose copies differ on the server, and says so. It is
/// recorded as rejected (so it is read again only at its retry time) when
/// `record`; not when the ledger has the uid as delivered, since one of
/// them is the delivered message. Returns whether it was recorded.
pub(super) async fn leave_differing(
    ledger: &Ledger,
    account: &str,
    group: (u32, &[u32]),
    uid: &str,
    size: u64,
    retry_at: i64,
    record: bool,
) -> Result<bool, LedgerError> {
    let reason = differing(group.0, group.1);
    tracing::warn!(uid, "{reason}");
    if record {
        (ledger.record_rejected(account, uid, size, &reason, retry_at)).await?;
    }
    Ok(record)
}

/// What the warning and the ledger say of a group whose copies differ.
pub(super) fn differing(n: u32, copies: &[u32]) -> String {
    let numbers: Vec<String> = std::iter::once(n)
        .chain(copies.iter().copied())
        .map(|n| n.to_string())
        .collect();
    format!(
        "the server lists different messages under one unique-id (messages {}); none of them is moved until the server gives each its own unique-id",
        numbers.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(entries: &[(u32, &str)]) -> Vec<(u32, String)> {
        entries
            .iter()
            .map(|&(n, uid)| (n, uid.to_owned()))
            .collect()
    }

    /// What the plan sees, entry by entry.
    fn taken(entries: &[(u32, &str)]) -> Vec<Option<Vec<u32>>> {
        let uids = listing(entries);
        let mut groups = Groups::find(&uids);
        (0..uids.len()).map(|i| groups.take(i)).collect()
    }

    #[test]
    fn a_shared_uid_goes_with_its_first_entry_and_names_the_others_in_order() {
        assert_eq!(taken(&[]), Vec::<Option<Vec<u32>>>::new());
        assert_eq!(taken(&[(1, "a"), (2, "b")]), [Some(vec![]), Some(vec![])]);
        assert_eq!(
            taken(&[(1, "x"), (2, "a"), (3, "x"), (4, "b"), (5, "x"), (6, "a")]),
            [
                Some(vec![3, 5]),
                Some(vec![6]),
                None,
                Some(vec![]),
                None,
                None
            ]
        );
    }

    #[test]
    fn groups_follow_the_listing_order_not_the_numbers() {
        assert_eq!(
            taken(&[(7, "x"), (2, "x"), (5, "x")]),
            [Some(vec![2, 5]), None, None]
        );
    }

    #[test]
    fn sizes_agree_only_when_every_copy_is_listed_with_the_first_ones_size() {
        let listed: HashMap<u32, u64> = [(1, 10), (2, 10), (3, 11)].into();
        assert_eq!(sizes(1, &[], &listed), Sizes::Agree(10));
        assert_eq!(sizes(1, &[2], &listed), Sizes::Agree(10));
        assert_eq!(sizes(1, &[2, 3], &listed), Sizes::Differ(10));
        assert_eq!(sizes(1, &[4], &listed), Sizes::Differ(10));
        assert_eq!(sizes(4, &[1], &listed), Sizes::Unlisted);
    }

    #[test]
    fn compared_bodies_are_identical_until_one_differs_by_a_byte() {
        let mut compared = Compared::default();
        assert!(compared.identical());
        compared.add(b"same\r\n");
        compared.add(b"same\r\n");
        assert!(compared.identical());
        compared.add(b"Same\r\n");
        assert!(!compared.identical());
        compared.add(b"same\r\n");
        assert!(!compared.identical(), "a difference is never forgotten");
    }

    #[test]
    fn the_differing_reason_names_every_message_number() {
        let reason = differing(2, &[5, 9]);
        assert!(reason.contains("(messages 2, 5, 9)"), "{reason}");
    }
}
