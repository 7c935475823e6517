//! The poll history of the PostgreSQL ledger. It carries no part of the
//! guarantee, so its transactions do not wait for their flush (`SET LOCAL
//! synchronous_commit = off`, as SQLite's run at `synchronous = NORMAL`).
//! In a fleet a poll's start and end are fenced like its other writes, so
//! an instance that lost the lease leaves no row `status` or the next
//! owner's adaptive interval would read; the empty polls written in a
//! batch by the daemon are not a poll's writes and take no fence.

use std::path::PathBuf;

use deadpool_postgres::Transaction;

use super::{fleet, int, Failure, Store};
use crate::ledger::empty_polls::EmptyRun;
use crate::ledger::leases::Epoch;
use crate::ledger::polls::POLL_HISTORY;
use crate::ledger::{now, LedgerError, PollId, PollReport};

const UNSYNCED: &str = "SET LOCAL synchronous_commit = off";

/// The statements of `../sqlite/polls.rs`, which says what each does; a
/// parameter used twice is cast, so both uses deduce one type.
const START_POLL: &str = "INSERT INTO poll (account, started_at, quiet_polls)
    VALUES ($1, $2, coalesce((SELECT quiet_polls FROM poll WHERE account = $1
                              ORDER BY id DESC LIMIT 1), 0))
    RETURNING id";
const TRIM_HISTORY: &str = "DELETE FROM poll WHERE account = $1 AND id <= (
    SELECT id FROM poll WHERE account = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)";
const FINISH_POLL: &str = "UPDATE poll SET finished_at = $2, outcome = $3,
    listed = $4, delivered = $5, deleted = $6, deferred = $7, rejected = $8, error = $9,
    new_listed = $10,
    quiet_polls = CASE WHEN $3::text = 'failed' THEN quiet_polls
                       WHEN $10::bigint > 0 THEN 0 ELSE quiet_polls + 1 END
    WHERE id = $1 AND outcome = 'running'";
const LATEST_QUIET: &str =
    "SELECT quiet_polls FROM poll WHERE account = $1 ORDER BY id DESC LIMIT 1";

impl Store {
    /// See [`Ledger::start_poll`](crate::ledger::Ledger::start_poll):
    /// `empty` is the account's run of empty polls, written first.
    pub(in crate::ledger) async fn start_poll(
        &self,
        account: &str,
        epoch: Option<Epoch>,
        empty: Option<EmptyRun>,
    ) -> Result<PollId, LedgerError> {
        let result = async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            tx.batch_execute(UNSYNCED).await?;
            if let Some(leases) = &self.leases {
                fleet::fence(&tx, leases, account, epoch).await?;
            }
            if let Some(run) = empty {
                write_empty(&tx, account, run).await?;
            }
            let start = tx.prepare_cached(START_POLL).await?;
            let id: i64 = tx
                .query_one(&start, &[&account, &now()])
                .await?
                .try_get(0)?;
            let trim = tx.prepare_cached(TRIM_HISTORY).await?;
            tx.execute(&trim, &[&account, &POLL_HISTORY]).await?;
            tx.commit().await?;
            Ok(PollId(id))
        };
        self.finish("record the start of a poll", result.await)
    }

    /// See [`Ledger::finish_poll`](crate::ledger::Ledger::finish_poll).
    pub(in crate::ledger) async fn finish_poll(
        &self,
        id: PollId,
        fenced: Option<(&str, Epoch)>,
        report: &PollReport,
    ) -> Result<(), LedgerError> {
        let result = async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            tx.batch_execute(UNSYNCED).await?;
            if let Some(leases) = &self.leases {
                // A poll of a fleet always runs under a lease; without one
                // the write is refused like a lapsed one.
                let (account, epoch) = fenced.map_or(("", None), |(a, e)| (a, Some(e)));
                fleet::fence(&tx, leases, account, epoch).await?;
            }
            let finish = tx.prepare_cached(FINISH_POLL).await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 10] = [
                &id.0,
                &now(),
                &report.outcome.as_str(),
                &int(report.listed)?,
                &int(report.delivered)?,
                &int(report.deleted)?,
                &int(report.deferred)?,
                &int(report.rejected)?,
                &report.error,
                &int(report.new_listed)?,
            ];
            let changed = tx.execute(&finish, &params).await?;
            tx.commit().await?;
            Ok(changed)
        };
        if self.finish("record the end of a poll", result.await)? == 0 {
            return Err(LedgerError::PollNotRunning {
                path: PathBuf::from(&self.name),
                id,
            });
        }
        Ok(())
    }

    /// The written half of [`Ledger::quiet_polls`](crate::ledger::Ledger::quiet_polls).
    pub(in crate::ledger) async fn quiet_polls(&self, account: &str) -> Result<u64, LedgerError> {
        let result = async {
            let client = self.pool.get().await?;
            let latest = client.prepare_cached(LATEST_QUIET).await?;
            let quiet: Option<i64> = client
                .query_opt(&latest, &[&account])
                .await?
                .map(|row| row.try_get(0))
                .transpose()?;
            Ok(quiet.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
        };
        self.finish("read the polls that found nothing", result.await)
    }

    /// Writes every run in `runs`, in one transaction.
    pub(in crate::ledger) async fn flush_empty_polls(
        &self,
        runs: &[(String, EmptyRun)],
    ) -> Result<(), LedgerError> {
        let result = async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            tx.batch_execute(UNSYNCED).await?;
            for (account, run) in runs {
                write_empty(&tx, account, *run).await?;
            }
            tx.commit().await?;
            Ok(())
        };
        self.finish("record polls that found nothing", result.await)
    }
}

/// Writes `run` for `account`: it extends the account's latest row when
/// that row is a run of empty polls too, and is a new row otherwise.
async fn write_empty(tx: &Transaction<'_>, account: &str, run: EmptyRun) -> Result<(), Failure> {
    let polls = int(run.polls)?;
    let latest = tx
        .prepare_cached(
            "SELECT id, empty_polls, quiet_polls FROM poll
             WHERE account = $1 ORDER BY id DESC LIMIT 1",
        )
        .await?;
    let latest: Option<(i64, i64, i64)> = match tx.query_opt(&latest, &[&account]).await? {
        Some(row) => Some((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)),
        None => None,
    };
    match latest {
        Some((id, empty, _)) if empty > 0 => {
            let extend = tx
                .prepare_cached(
                    "UPDATE poll SET finished_at = $2, empty_polls = empty_polls + $3,
                         quiet_polls = quiet_polls + $3
                     WHERE id = $1",
                )
                .await?;
            tx.execute(&extend, &[&id, &run.last, &polls]).await?;
        }
        latest => {
            let quiet = latest
                .map_or(0, |(_, _, quiet)| quiet)
                .saturating_add(polls);
            let insert = tx
                .prepare_cached(
                    "INSERT INTO poll (account, started_at, finished_at, outcome, empty_polls,
                         quiet_polls)
                     VALUES ($1, $2, $3, 'ok', $4, $5)",
                )
                .await?;
            tx.execute(&insert, &[&account, &run.first, &run.last, &polls, &quiet])
                .await?;
        }
    }
    Ok(())
}
