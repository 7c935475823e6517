//! Sizes for unique-ids imported from another program's state file.

use std::collections::HashMap;

use crate::config::Account;
use crate::ledger::{Ledger, LedgerError, MessageRecord};

/// Records the listed size of every imported unique-id in this listing
/// whose size the ledger does not know yet. Until then such a row matches
/// its unique-id whatever the size (the program that recorded it saw that
/// message under it); from then on a reused unique-id with another size is
/// a new message, as for every other row. Writes nothing, and costs no
/// commit, when no listed row lacks a size.
pub(super) async fn learn_sizes(
    ledger: &Ledger,
    account: &Account,
    known: &HashMap<String, MessageRecord>,
    uids: &[(u32, String)],
    sizes: &HashMap<u32, u64>,
) -> Result<(), LedgerError> {
    let learned: Vec<(String, u64)> = uids
        .iter()
        .filter(|(_, uid)| known.get(uid).is_some_and(|r| r.size.is_none()))
        .filter_map(|(n, uid)| Some((uid.clone(), *sizes.get(n)?)))
        .collect();
    if learned.is_empty() {
        return Ok(());
    }
    ledger.learn_sizes(&account.name, learned).await
}
