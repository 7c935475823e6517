//! A logged-in session's view of the maildrop: the snapshot that fixes its
//! message numbers, the session's deletion marks, and how a command's
//! message argument (a number, or `UID:` with UID-PARAM) names a message.
//!
//! Kept apart from the I/O so the resolution rules of the reference server
//! (spec 3.2) read as one function.

use super::Stored;

pub(super) const BAD_SYNTAX: &str = "-ERR Bad command syntax.";
pub(super) const NO_SUCH_MESSAGE: &str = "-ERR No such message.";
pub(super) const DELETED: &str = "-ERR That message has been deleted.";
pub(super) const NO_SUCH_UID: &str = "-ERR [UID/NOT-FOUND] No such UID.";
const BAD_PARAMETERS: &str = "-ERR Bad parameters.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mark {
    Live,
    /// DELE: removed from the shared maildrop at the next commit.
    Flagged,
    /// DELI, or DELE already committed by SLEE: gone from the shared
    /// maildrop, still hidden from this session.
    Removed,
}

#[derive(Debug, Clone)]
struct Entry {
    stored: Stored,
    mark: Mark,
}

/// The message a command argument names. `number` is its place in the
/// snapshot, or 0 for a message that arrived after the snapshot and was
/// named by `UID:`, as the reference server answers (`+OK 0 168`).
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) number: usize,
    pub(super) stored: Stored,
}

#[derive(Debug)]
pub(super) struct Mailbox {
    /// In snapshot order; the index plus one is the message number.
    entries: Vec<Entry>,
    /// Messages outside the snapshot that this session deleted by `UID:`;
    /// they need marks too, or a second DELE of one would be accepted.
    outside: Vec<Entry>,
    /// DELIs since the last commit. The reference server leaves DELI'd
    /// uids in its pending list, so SLEE and QUIT count them again.
    removed_pending: usize,
}

impl Mailbox {
    pub(super) fn new(maildrop: &[Stored]) -> Mailbox {
        Mailbox {
            entries: maildrop
                .iter()
                .map(|stored| Entry {
                    stored: stored.clone(),
                    mark: Mark::Live,
                })
                .collect(),
            outside: Vec::new(),
            removed_pending: 0,
        }
    }

    /// The unmarked snapshot messages with their 1-based numbers; numbers
    /// do not shift when others are deleted.
    pub(super) fn live(&self) -> impl Iterator<Item = (usize, &Stored)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.mark == Mark::Live)
            .map(|(i, entry)| (i + 1, &entry.stored))
    }

    /// Every uid of the snapshot as taken, deleted or not: what WAKE
    /// compares the fresh listing with.
    pub(super) fn snapshot_uids(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .map(|entry| entry.stored.message.uid.as_str())
    }

    /// Resolve a message argument. `current` is the shared maildrop now,
    /// for uids that arrived after the snapshot. The error is the reply.
    pub(super) fn resolve(
        &self,
        arg: Option<&str>,
        uid_param: bool,
        current: &[Stored],
    ) -> Result<Target, &'static str> {
        let arg = arg.ok_or(BAD_SYNTAX)?;
        if let Ok(n) = arg.parse::<i64>() {
            return self.by_number(n);
        }
        match arg.get(..4) {
            Some(prefix) if uid_param && prefix.eq_ignore_ascii_case("UID:") => {
                self.by_uid(&arg[4..], current)
            }
            _ => Err(BAD_PARAMETERS),
        }
    }

    fn by_number(&self, n: i64) -> Result<Target, &'static str> {
        let index = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .ok_or(NO_SUCH_MESSAGE)?;
        let entry = self.entries.get(index).ok_or(NO_SUCH_MESSAGE)?;
        if entry.mark != Mark::Live {
            return Err(DELETED);
        }
        Ok(Target {
            number: index + 1,
            stored: entry.stored.clone(),
        })
    }

    /// The order of the checks is the reference server's: a deleted uid is
    /// "deleted" even if the shared maildrop still has it.
    fn by_uid(&self, uid: &str, current: &[Stored]) -> Result<Target, &'static str> {
        if uid.is_empty() || !uid.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(NO_SUCH_UID);
        }
        let named = |entry: &&Entry| entry.stored.message.uid == uid;
        if self
            .entries
            .iter()
            .chain(&self.outside)
            .filter(named)
            .any(|entry| entry.mark != Mark::Live)
        {
            return Err(DELETED);
        }
        if let Some(index) = self.entries.iter().position(|e| named(&e)) {
            return Ok(Target {
                number: index + 1,
                stored: self.entries[index].stored.clone(),
            });
        }
        current
            .iter()
            .find(|stored| stored.message.uid == uid)
            .map(|stored| Target {
                number: 0,
                stored: stored.clone(),
            })
            .ok_or(NO_SUCH_UID)
    }

    /// Mark a resolved message `Flagged` (DELE) or `Removed` (DELI).
    pub(super) fn mark(&mut self, target: &Target, mark: Mark) {
        if mark == Mark::Removed {
            self.removed_pending += 1;
        }
        match target.number.checked_sub(1) {
            Some(index) => self.entries[index].mark = mark,
            None => self.outside.push(Entry {
                stored: target.stored.clone(),
                mark,
            }),
        }
    }

    /// The ids a commit removes from the shared maildrop.
    pub(super) fn flagged_ids(&self) -> Vec<u64> {
        self.entries
            .iter()
            .chain(&self.outside)
            .filter(|entry| entry.mark == Mark::Flagged)
            .map(|entry| entry.stored.id)
            .collect()
    }

    /// What SLEE and QUIT report as deleted: DELE flags plus, by the
    /// reference server's bug, the DELIs since the last commit.
    pub(super) fn pending(&self) -> usize {
        self.flagged_ids().len() + self.removed_pending
    }

    /// After a commit nothing is pending; the committed messages stay
    /// hidden until the next snapshot.
    pub(super) fn committed(&mut self) {
        for entry in self.entries.iter_mut().chain(&mut self.outside) {
            if entry.mark == Mark::Flagged {
                entry.mark = Mark::Removed;
            }
        }
        self.removed_pending = 0;
    }

    /// RSET un-flags DELEs. DELI'd messages stay hidden: they are gone from
    /// the store (the reference server shows them again, a bug the spec
    /// calls a ghost, which no test here needs).
    pub(super) fn rset(&mut self) {
        for entry in self.entries.iter_mut().chain(&mut self.outside) {
            if entry.mark == Mark::Flagged {
                entry.mark = Mark::Live;
            }
        }
        self.outside.retain(|entry| entry.mark == Mark::Removed);
        self.removed_pending = 0;
    }
}
