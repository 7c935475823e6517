//! The PostgreSQL ledger's message writes: each one transaction that
//! starts with the poller lock's fence (`lock.rs`).
//!
//! The SQL is SQLite's (`../sqlite/change.rs` says why each statement is
//! there) with PostgreSQL's spelling: `$n` placeholders, columns qualified
//! where an upsert's `SET` would be ambiguous, BOOLEAN `size_known`.

use std::collections::HashSet;
use std::path::PathBuf;

use deadpool_postgres::{Object, Transaction};

use super::lock::FENCE;
use super::{fleet, int, reads, Failure, Store};
use crate::ledger::change::{Attempt, Step};
use crate::ledger::leases::Epoch;
use crate::ledger::recipients::REFUSAL_HISTORY;
use crate::ledger::totals::Kind;
use crate::ledger::{now, Adopted, Change, LedgerError, MessageState, RecipientState, Reconciled};

impl Store {
    /// A transaction on `client` that may write for `account`: the poller
    /// lock is still this process's, and in a fleet the account's lease
    /// still holds under `epoch`; both stay so until the transaction ends.
    pub(super) async fn fenced<'c>(
        &self,
        client: &'c mut Object,
        account: &str,
        epoch: Option<Epoch>,
    ) -> Result<Transaction<'c>, Failure> {
        let pid = self.lock.holder().await?;
        let tx = client.transaction().await?;
        let fence = tx.prepare_cached(FENCE).await?;
        let writers = self.lock.writers();
        let held: bool = (tx.query_one(&fence, &[&pid, &writers]))
            .await?
            .try_get(0)?;
        if !held {
            self.lock.lost().await;
            return Err(Failure::Ledger(LedgerError::LockLost {
                path: PathBuf::from(&self.name),
            }));
        }
        if let Some(leases) = &self.leases {
            fleet::fence(&tx, leases, account, epoch).await?;
        }
        Ok(tx)
    }

    /// One change in its own transaction; returns the message's attempt
    /// count.
    pub(in crate::ledger) async fn record(
        &self,
        action: &'static str,
        account: &str,
        epoch: Option<Epoch>,
        change: &Change,
    ) -> Result<u32, LedgerError> {
        let result = async {
            let mut client = self.pool.get().await?;
            let tx = self.fenced(&mut client, account, epoch).await?;
            let attempts = apply(&tx, account, change, now()).await?;
            tx.commit().await?;
            Ok(attempts)
        };
        self.finish(action, result.await)
    }

    /// See [`Ledger::commit`](crate::ledger::Ledger::commit).
    pub(in crate::ledger) async fn commit(
        &self,
        account: &str,
        epoch: Option<Epoch>,
        changes: &[Change],
    ) -> Result<(), LedgerError> {
        let result = async {
            let mut client = self.pool.get().await?;
            let tx = self.fenced(&mut client, account, epoch).await?;
            let at = now();
            for change in changes {
                apply(&tx, account, change, at).await?;
            }
            tx.commit().await?;
            Ok(())
        };
        self.finish("record deliveries", result.await)
    }

    /// See [`Ledger::reconcile`](crate::ledger::Ledger::reconcile): the
    /// missing rows go in one statement, whatever their number.
    pub(in crate::ledger) async fn reconcile(
        &self,
        account: &str,
        epoch: Option<Epoch>,
        listed: &HashSet<String>,
    ) -> Result<Reconciled, LedgerError> {
        let result = async {
            let mut client = self.pool.get().await?;
            let tx = self.fenced(&mut client, account, epoch).await?;
            let mut known = reads::records(&*tx, account).await?;
            let gone: Vec<&String> = known.keys().filter(|uid| !listed.contains(*uid)).collect();
            if !gone.is_empty() {
                let delete = tx
                    .prepare_cached("DELETE FROM message WHERE account = $1 AND uid = ANY($2)")
                    .await?;
                tx.execute(&delete, &[&account, &gone]).await?;
            }
            tx.commit().await?;
            let pruned = gone.len() as u64;
            known.retain(|uid, _| listed.contains(uid));
            Ok(Reconciled { pruned, known })
        };
        self.finish(
            "compare the listing with the recorded messages",
            result.await,
        )
    }

    /// See [`Ledger::record_delivered_elsewhere`](crate::ledger::Ledger::record_delivered_elsewhere).
    pub(in crate::ledger) async fn record_delivered_elsewhere(
        &self,
        account: &str,
        epoch: Option<Epoch>,
        uids: &[(String, Option<u64>)],
    ) -> Result<Adopted, LedgerError> {
        let result = async {
            let mut client = self.pool.get().await?;
            let tx = self.fenced(&mut client, account, epoch).await?;
            let insert = tx
                .prepare(
                    "INSERT INTO message
                         (account, uid, size, size_known, state, delivered_at, attempts)
                     VALUES ($1, $2, $3, $4, 'delivered', $5, 0)
                     ON CONFLICT (account, uid) DO NOTHING",
                )
                .await?;
            let at = now();
            let mut adopted = Adopted::default();
            let mut seen = HashSet::new();
            for (uid, size) in uids {
                if !seen.insert(uid) {
                    continue;
                }
                let known = size.is_some();
                let size = int(size.unwrap_or(0))?;
                if tx
                    .execute(&insert, &[&account, uid, &size, &known, &at])
                    .await?
                    == 1
                {
                    adopted.added += 1;
                } else {
                    adopted.known += 1;
                }
            }
            tx.commit().await?;
            Ok(adopted)
        };
        self.finish(
            "record unique-ids delivered by another program",
            result.await,
        )
    }

    /// See [`Ledger::learn_sizes`](crate::ledger::Ledger::learn_sizes).
    pub(in crate::ledger) async fn learn_sizes(
        &self,
        account: &str,
        epoch: Option<Epoch>,
        sizes: &[(String, u64)],
    ) -> Result<(), LedgerError> {
        let result = async {
            let mut client = self.pool.get().await?;
            let tx = self.fenced(&mut client, account, epoch).await?;
            let update = tx
                .prepare(
                    "UPDATE message SET size = $3, size_known = true
                     WHERE account = $1 AND uid = $2 AND NOT size_known",
                )
                .await?;
            for (uid, size) in sizes {
                tx.execute(&update, &[&account, uid, &int(*size)?]).await?;
            }
            tx.commit().await?;
            Ok(())
        };
        self.finish("record the sizes of imported messages", result.await)
    }
}

/// Writes one change at time `at`; returns the attempt count of the
/// message (0 for a recipient or a deletion).
async fn apply(
    tx: &Transaction<'_>,
    account: &str,
    change: &Change,
    at: i64,
) -> Result<u32, Failure> {
    match change.step(at) {
        Step::Message { uid, size, attempt } => {
            let size = int(size)?;
            if let Some(kind) = Kind::of(attempt.state) {
                count(tx, account, uid, size, kind).await?;
            }
            upsert(tx, account, uid, size, &attempt).await
        }
        Step::Recipient {
            uid,
            address,
            state,
            reply,
        } => {
            let upsert = tx
                .prepare_cached(
                    "INSERT INTO recipient (account, uid, address, state, reply, at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (account, uid, address) DO UPDATE SET
                         state = excluded.state, reply = excluded.reply, at = excluded.at",
                )
                .await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
                [&account, &uid, &address, &state.as_str(), &reply, &at];
            tx.execute(&upsert, &params).await?;
            remember_refusal(tx, account, uid, address, state, reply, at).await?;
            Ok(0)
        }
        Step::Deleted { uid } => {
            mark_deleted(tx, account, uid, at).await?;
            Ok(0)
        }
    }
}

/// The refusal history beside a recipient's new state: see
/// `../sqlite/change.rs`.
async fn remember_refusal(
    tx: &Transaction<'_>,
    account: &str,
    uid: &str,
    address: &str,
    state: RecipientState,
    reply: Option<&str>,
    at: i64,
) -> Result<(), Failure> {
    let Some(reply) = reply.filter(|_| state != RecipientState::Delivered) else {
        let clear = tx
            .prepare_cached("DELETE FROM refusal WHERE account = $1 AND uid = $2 AND address = $3")
            .await?;
        tx.execute(&clear, &[&account, &uid, &address]).await?;
        return Ok(());
    };
    let insert = tx
        .prepare_cached(
            "INSERT INTO refusal (account, uid, address, state, reply, at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
        [&account, &uid, &address, &state.as_str(), &reply, &at];
    tx.execute(&insert, &params).await?;
    let trim = tx
        .prepare_cached(
            "DELETE FROM refusal WHERE account = $1 AND id <= (
                 SELECT id FROM refusal WHERE account = $1
                 ORDER BY id DESC LIMIT 1 OFFSET $2)",
        )
        .await?;
    tx.execute(&trim, &[&account, &REFUSAL_HISTORY]).await?;
    Ok(())
}

/// A confirmed deletion: counted, then marked, for messages that were
/// safe to delete only (see `../sqlite/change.rs`).
async fn mark_deleted(
    tx: &Transaction<'_>,
    account: &str,
    uid: &str,
    at: i64,
) -> Result<(), Failure> {
    let counted = tx
        .prepare_cached(
            "INSERT INTO total (account, kind, count)
             SELECT $1::text, 'deleted', 1 FROM message
             WHERE account = $1 AND uid = $2 AND state IN ('delivered', 'quarantined')
             ON CONFLICT (account, kind) DO UPDATE SET count = total.count + 1",
        )
        .await?;
    tx.execute(&counted, &[&account, &uid]).await?;
    let mark = tx
        .prepare_cached(
            "UPDATE message SET state = 'deleted', deleted_at = $3
             WHERE account = $1 AND uid = $2
               AND state IN ('delivered', 'quarantined', 'deleted')",
        )
        .await?;
    if tx.execute(&mark, &[&account, &uid, &at]).await? == 0 {
        tracing::warn!(
            account,
            uid,
            "server deleted a message the ledger has no delivery for"
        );
    }
    Ok(())
}

/// Raises the `kind` total unless the message is counted there already
/// (`crate::ledger::totals`).
async fn count(
    tx: &Transaction<'_>,
    account: &str,
    uid: &str,
    size: i64,
    kind: Kind,
) -> Result<(), Failure> {
    let prior = tx
        .prepare_cached("SELECT state FROM message WHERE account = $1 AND uid = $2 AND size = $3")
        .await?;
    let prior = match tx.query_opt(&prior, &[&account, &uid, &size]).await? {
        Some(row) => Some(reads::message_state(&row.try_get::<_, String>(0)?)?),
        None => None,
    };
    if prior.is_some_and(|prior: MessageState| kind.counted_in(prior)) {
        return Ok(());
    }
    let raise = tx
        .prepare_cached(
            "INSERT INTO total (account, kind, count) VALUES ($1, $2, 1)
             ON CONFLICT (account, kind) DO UPDATE SET count = total.count + 1",
        )
        .await?;
    tx.execute(&raise, &[&account, &kind.as_str()]).await?;
    Ok(())
}

/// Records an attempt and returns the attempt count that results: the
/// same message (same size) counts up, a reused uid starts again at one.
async fn upsert(
    tx: &Transaction<'_>,
    account: &str,
    uid: &str,
    size: i64,
    attempt: &Attempt,
) -> Result<u32, Failure> {
    let reused = tx
        .prepare_cached(
            "DELETE FROM recipient WHERE account = $1 AND uid = $2
               AND EXISTS (SELECT 1 FROM message AS m
                           WHERE m.account = $1 AND m.uid = $2 AND m.size <> $3)",
        )
        .await?;
    tx.execute(&reused, &[&account, &uid, &size]).await?;
    let upsert = tx
        .prepare_cached(
            "INSERT INTO message
                 (account, uid, size, state, delivered_at, attempts, last_error, retry_at,
                  quarantine_path)
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8)
             ON CONFLICT (account, uid) DO UPDATE SET
                 attempts = CASE WHEN message.size = excluded.size
                                 THEN message.attempts + 1 ELSE 1 END,
                 size = excluded.size,
                 size_known = true,
                 state = excluded.state,
                 delivered_at = excluded.delivered_at,
                 deleted_at = NULL,
                 last_error = excluded.last_error,
                 retry_at = excluded.retry_at,
                 quarantine_path = excluded.quarantine_path
             RETURNING attempts",
        )
        .await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
        &account,
        &uid,
        &size,
        &attempt.state.as_str(),
        &attempt.delivered_at,
        &attempt.last_error,
        &attempt.retry_at,
        &attempt.quarantine_path,
    ];
    let attempts: i64 = tx.query_one(&upsert, &params).await?.try_get(0)?;
    u32::try_from(attempts).map_err(|_| Failure::Value(format!("{attempts} attempts")))
}
