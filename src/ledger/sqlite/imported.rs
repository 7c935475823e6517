//! Unique-ids another program delivered, and the first-poll guard's
//! question, on SQLite.

use std::collections::HashSet;
use std::sync::Arc;

use rusqlite::{params, TransactionBehavior};

use super::{sql_int, Store};
use crate::ledger::{now, Adopted, LedgerError};

impl Store {
    /// See [`Ledger::record_delivered_elsewhere`](crate::ledger::Ledger::record_delivered_elsewhere).
    pub(in crate::ledger) async fn record_delivered_elsewhere(
        self: &Arc<Self>,
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

    /// See [`Ledger::learn_sizes`](crate::ledger::Ledger::learn_sizes).
    pub(in crate::ledger) async fn learn_sizes(
        self: &Arc<Self>,
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

    /// See [`Ledger::knows_account`](crate::ledger::Ledger::knows_account).
    pub(in crate::ledger) async fn knows_account(
        self: &Arc<Self>,
        account: &str,
    ) -> Result<bool, LedgerError> {
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
