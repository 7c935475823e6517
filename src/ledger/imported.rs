//! Messages another program delivered: unique-ids from the state file of
//! fetchmail, mpop or getmail (`popferry import`), or everything a mailbox
//! lists now (`popferry adopt`), recorded so that no poll delivers them.

/// What recording a batch of already delivered unique-ids did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Adopted {
    /// Rows written for unique-ids the ledger did not have.
    pub added: u64,
    /// Unique-ids the ledger already had a row for, left as they were.
    pub known: u64,
}
