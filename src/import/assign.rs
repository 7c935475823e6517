//! Which account each list of a state file belongs to.

use std::path::Path;

use super::{ImportError, UidList};
use crate::config::Account;

/// Unique-ids to record for one account.
#[derive(Debug, PartialEq, Eq)]
pub struct Assigned<'a> {
    pub account: &'a Account,
    pub uids: Vec<String>,
}

/// Assigns the lists read from `path` to accounts, all or none.
///
/// Without `named`, each list goes to the one account whose POP3 user and
/// server it names; none or several such accounts is an error that says
/// so, because a guess would record one mailbox's mail against another.
/// With `named`, the lists that match it go to it; a file with a single
/// list goes to it even when the names differ (a server reached by another
/// name, a renamed getmail file), since the user said whose it is; a file
/// with several lists none of which matches is an error.
pub fn assign<'a>(
    path: &Path,
    lists: Vec<UidList>,
    accounts: &'a [Account],
    named: Option<&'a Account>,
) -> Result<Vec<Assigned<'a>>, ImportError> {
    if let Some(account) = named {
        return for_named(path, lists, account).map(|uids| vec![Assigned { account, uids }]);
    }
    if lists.is_empty() {
        return Err(ImportError::Empty {
            path: path.to_owned(),
        });
    }
    let mut assigned: Vec<Assigned<'a>> = Vec::new();
    for list in lists {
        let matching: Vec<&Account> = accounts.iter().filter(|a| list.owner.matches(a)).collect();
        let account = match matching.as_slice() {
            [account] => *account,
            [] => {
                return Err(ImportError::NoAccount {
                    path: path.to_owned(),
                    owner: list.owner,
                })
            }
            several => {
                let names: Vec<&str> = several.iter().map(|a| a.name.as_str()).collect();
                return Err(ImportError::SeveralAccounts {
                    path: path.to_owned(),
                    owner: list.owner,
                    names: names.join(", "),
                });
            }
        };
        match assigned.iter_mut().find(|a| a.account.name == account.name) {
            Some(found) => found.uids.extend(list.uids),
            None => assigned.push(Assigned {
                account,
                uids: list.uids,
            }),
        }
    }
    Ok(assigned)
}

fn for_named(
    path: &Path,
    lists: Vec<UidList>,
    account: &Account,
) -> Result<Vec<String>, ImportError> {
    if lists.len() <= 1 {
        return Ok(lists.into_iter().flat_map(|list| list.uids).collect());
    }
    if !lists.iter().any(|list| list.owner.matches(account)) {
        let owners: Vec<String> = lists.iter().map(|list| list.owner.to_string()).collect();
        return Err(ImportError::NotForAccount {
            path: path.to_owned(),
            account: account.name.clone(),
            owners: owners.join("; "),
        });
    }
    Ok(lists
        .into_iter()
        .filter(|list| list.owner.matches(account))
        .flat_map(|list| list.uids)
        .collect())
}

#[cfg(test)]
#[path = "assign_tests.rs"]
mod tests;
