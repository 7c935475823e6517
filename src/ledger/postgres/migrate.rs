//! Brings a PostgreSQL ledger up to the schema this build knows.
//!
//! The version is the one row of `popferry_schema`, made by the runner and
//! not by any step, as SQLite's `user_version` is not. Step *n* runs in one
//! transaction with the bump to *n* (PostgreSQL's DDL is transactional, so
//! a failed step leaves nothing behind). Each transaction first takes an
//! advisory lock, before it even creates the version table: two instances
//! starting at once then run one after the other and the second finds
//! nothing to do, where two racing `CREATE TABLE IF NOT EXISTS` could still
//! collide on the catalog. The step numbers are the SQLite ones
//! (`migrations/0007_fleet.sql` is empty there), so schema *n* is the same
//! ledger on both engines.

use std::cmp::Ordering;
use std::path::PathBuf;

use tokio_postgres::Client;

use super::Failure;
use crate::ledger::LedgerError;

/// Every step, oldest first; released ones are never edited.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_ledger.sql"),
    include_str!("../../../migrations/postgres/0002_recipients.sql"),
    include_str!("../../../migrations/postgres/0003_totals.sql"),
    include_str!("../../../migrations/postgres/0004_imported.sql"),
    include_str!("../../../migrations/postgres/0005_empty_polls.sql"),
    include_str!("../../../migrations/postgres/0006_quiet_polls.sql"),
    include_str!("../../../migrations/postgres/0007_fleet.sql"),
    include_str!("../../../migrations/postgres/0008_slot_demand.sql"),
];

/// What every step's transaction does before it reads the version.
const PREPARE: &str = "SELECT pg_advisory_xact_lock(7466356);
    CREATE TABLE IF NOT EXISTS popferry_schema (
        id      BIGINT CONSTRAINT popferry_schema_pkey PRIMARY KEY CHECK (id = 1),
        version BIGINT NOT NULL CHECK (version >= 0)
    );
    INSERT INTO popferry_schema (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING";

/// Applies the entries of `migrations` the database has not run yet; a
/// list rather than always [`MIGRATIONS`] so tests can stop at an older
/// schema.
pub(super) async fn migrate(
    client: &mut Client,
    name: &str,
    migrations: &[&str],
) -> Result<(), Failure> {
    let mut first = None;
    loop {
        let tx = client.transaction().await?;
        tx.batch_execute(PREPARE).await?;
        let found: i64 = tx
            .query_one("SELECT version FROM popferry_schema", &[])
            .await?
            .try_get(0)?;
        let found = u32::try_from(found).unwrap_or(u32::MAX);
        first.get_or_insert(found);
        let sql = match (found as usize).cmp(&migrations.len()) {
            Ordering::Less => migrations[found as usize],
            Ordering::Equal => {
                match first {
                    Some(0) => tracing::info!(ledger = name, "ledger created"),
                    Some(from) if from < found => {
                        tracing::info!(ledger = name, from, to = found, "ledger schema upgraded")
                    }
                    _ => {}
                }
                return Ok(());
            }
            Ordering::Greater => {
                return Err(Failure::Ledger(LedgerError::TooNew {
                    path: PathBuf::from(name),
                    found,
                    known: migrations.len(),
                }))
            }
        };
        let version = found + 1;
        let step = async {
            tx.batch_execute(sql).await?;
            tx.execute(
                "UPDATE popferry_schema SET version = $1",
                &[&i64::from(version)],
            )
            .await?;
            tx.commit().await
        };
        step.await.map_err(|source| {
            Failure::Ledger(LedgerError::MigrateDatabase {
                path: PathBuf::from(name),
                version,
                source: Box::new(source),
            })
        })?;
    }
}

/// The schema version of the database `client` is connected to, without
/// changing anything: `None` when no poller has made the version table yet.
pub(super) async fn version(client: &Client) -> Result<Option<u32>, Failure> {
    let exists: bool = client
        .query_one("SELECT to_regclass('popferry_schema') IS NOT NULL", &[])
        .await?
        .try_get(0)?;
    if !exists {
        return Ok(None);
    }
    let found: Option<i64> = client
        .query_opt("SELECT version FROM popferry_schema", &[])
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    Ok(found.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
}
