//! Messages another program delivered: unique-ids from the state file of
//! fetchmail, mpop or getmail (`popferry import`), or everything a mailbox
//! lists now (`popferry adopt`), recorded so that no poll delivers them.

use std::collections::HashSet;

use rusqlite::{params, TransactionBehavior};

use super::{now, sql_int, Ledger, LedgerError};

/// What recording a batch of already delivered unique-ids did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Adopted {
    /// Rows written for unique-ids the ledger did not have.
    pub added: u64,
    /// Unique-ids the ledger already had a row for, left as they were.
    pub known: u64,
}

impl Ledger {
    /// Records each of `uids` as delivered, with its size where it is
    /// known (`None`: see [`MessageRecord::size`](super::MessageRecord::size)),
    /// in one transaction.
    ///
    /// The state is the one a delivery with `keep = true` leaves, so the
    /// next poll skips a kept message and, with `keep = false`, deletes it
    /// without delivering it again (the other program did). A row the
    /// ledger already has is never changed: it knows more than the file
    /// (a size, a rejection still owed to a recipient). Repeated unique-ids
    /// count once.
    pub async fn record_delivered_elsewhere(
        &self,
        account: &str,
        uids: Vec<(String, Option<u64>)>,
    ) -> Result<Adopted, LedgerError> {
        let account = account.to_owned();
        self.run(
            "record unique-ids delivered by another program",
            move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let at = now();
                let mut adopted = Adopted::default();
                {
                    let mut insert = tx.prepare(
                        "INSERT INTO message
                         (account, uid, size, size_known, state, delivered_at, attempts)
                     VALUES (?1, ?2, ?3, ?4, 'delivered', ?5, 0)
                     ON CONFLICT (account, uid) DO NOTHING",
                    )?;
                    let mut seen = HashSet::new();
                    for (uid, size) in &uids {
                        if !seen.insert(uid) {
                            continue;
                        }
                        let row = params![
                            account,
                            uid,
                            sql_int(size.unwrap_or(0))?,
                            size.is_some(),
                            at
                        ];
                        if insert.execute(row)? == 1 {
                            adopted.added += 1;
                        } else {
                            adopted.known += 1;
                        }
                    }
                }
                tx.commit()?;
                Ok(adopted)
            },
        )
        .await
    }

    /// Records the listed size of imported messages whose size was not
    /// known, so from now on a reused unique-id with another size is seen
    /// as the new message it is. Rows whose size is known are not touched.
    pub async fn learn_sizes(
        &self,
        account: &str,
        sizes: Vec<(String, u64)>,
    ) -> Result<(), LedgerError> {
        let account = account.to_owned();
        self.run("record the sizes of imported messages", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut update = tx.prepare(
                    "UPDATE message SET size = ?3, size_known = 1
                     WHERE account = ?1 AND uid = ?2 AND size_known = 0",
                )?;
                for (uid, size) in &sizes {
                    update.execute(params![account, uid, sql_int(*size)?])?;
                }
            }
            tx.commit()
        })
        .await
    }

    /// Whether the ledger knows anything of `account`'s mailbox: a message
    /// row, or a poll that completed with a listing that was not empty.
    /// Failed polls do not count: a poll the first-poll guard refused
    /// listed the mailbox too, and must not let the next one through.
    pub async fn knows_account(&self, account: &str) -> Result<bool, LedgerError> {
        let account = account.to_owned();
        self.run("look up the account's history", move |conn| {
            conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM message WHERE account = ?1)
                     OR EXISTS (SELECT 1 FROM poll
                                WHERE account = ?1 AND outcome = 'ok' AND listed > 0)",
                [&account],
                |row| row.get(0),
            )
        })
        .await
    }
}
