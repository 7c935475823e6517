//! The PostgreSQL engine: the ledger in a database, for deployments that
//! keep their state in one, and for fleets of instances sharing it through
//! leases (`fleet.rs`).
//!
//! The same tables, states and rules as the SQLite file (the migrations in
//! `migrations/postgres/` mirror `migrations/`), written natively async on
//! a pool of connections. A commit is durable when it returns: every
//! session runs with `synchronous_commit = on` and a server with
//! `fsync = off` is refused at open (`connect.rs`). The poll history, as on
//! SQLite, is written without waiting for its flush (`SET LOCAL
//! synchronous_commit = off`), since it carries no part of the guarantee.
//!
//! No statement is retried: a failed or uncertain commit counts as not
//! recorded, the poll fails as it does on SQLite, and the pool opens new
//! connections for the next one (a database restart ends every session).

mod connect;
mod fleet;
mod lock;
mod migrate;
#[cfg(all(test, feature = "real-servers"))]
mod migrate_tests;
mod polls;
mod reads;
mod slots;
mod writes;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use crate::config::Database;
use crate::ledger::leases::Leases;
use crate::ledger::{Found, LedgerError};
use connect::Connector;
pub(super) use lock::Hold;
use lock::PollerLock;

/// How long a poll waits for a pooled connection, or for a new one to
/// open, before its ledger call fails.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// A pool of connections to a PostgreSQL ledger, and its poller lock.
pub(super) struct Store {
    /// The URL, for errors and logs; it never holds a password.
    name: String,
    pool: Pool,
    lock: PollerLock,
    /// A fleet instance's leases; `None` for a process that holds the
    /// poller lock alone.
    pub(super) leases: Option<Leases>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the pool: its driver configuration holds the password.
        f.debug_struct("Store").field("name", &self.name).finish()
    }
}

/// Why an operation failed, before it is named with its action.
pub(super) enum Failure {
    Db(tokio_postgres::Error),
    Pool(deadpool_postgres::PoolError),
    /// A value the ledger cannot hold or a row it cannot read (a hand
    /// edit, or a count past `i64`).
    Value(String),
    Ledger(LedgerError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(err: tokio_postgres::Error) -> Self {
        Self::Db(err)
    }
}

impl From<deadpool_postgres::PoolError> for Failure {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        Self::Pool(err)
    }
}

impl From<LedgerError> for Failure {
    fn from(err: LedgerError) -> Self {
        Self::Ledger(err)
    }
}

impl Failure {
    fn into_error(self, name: &str, action: &'static str) -> LedgerError {
        let source: crate::ledger::error::DatabaseError = match self {
            Failure::Ledger(err) => return err,
            Failure::Db(err) => Box::new(err),
            Failure::Pool(err) => Box::new(err),
            Failure::Value(problem) => problem.into(),
        };
        LedgerError::Database {
            path: PathBuf::from(name),
            action,
            source,
        }
    }
}

/// A count or size as a BIGINT.
fn int(n: u64) -> Result<i64, Failure> {
    i64::try_from(n).map_err(|_| Failure::Value(format!("{n} does not fit the ledger")))
}

/// A BIGINT the schema's CHECKs keep non-negative, as a count.
fn unsigned(n: i64) -> Result<u64, Failure> {
    u64::try_from(n).map_err(|_| Failure::Value(format!("negative count {n} in the ledger")))
}

impl Store {
    /// Connects to `database`, refuses it unless its commits are durable,
    /// takes the poller lock (`lock.rs`) as `hold` says, brings the schema
    /// up to date and sets up the pool.
    pub async fn open(database: &Database, hold: Hold) -> Result<Self, LedgerError> {
        let name = database.url();
        let connector = Connector::new(database, &name).await?;
        let opened = async {
            let mut client = connector.connect().await?;
            connect::check_durable(&client, &name).await?;
            // The lock first, as on a file: a running poller's schema is
            // never changed under it.
            let pid = lock::acquire(&client, Path::new(&name), hold).await?;
            migrate::migrate(&mut client, &name, migrate::MIGRATIONS).await?;
            let lock = PollerLock::held(connector.clone(), client, pid, &name, hold);
            let manager = Manager::from_config(
                connector.config.clone(),
                connector.tls.clone(),
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            );
            let pool = Pool::builder(manager)
                .max_size(database.max_connections)
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(POOL_WAIT))
                .create_timeout(Some(POOL_WAIT))
                .build()
                .map_err(|err| Failure::Value(err.to_string()))?;
            let leases =
                (hold == Hold::Shared).then(|| Leases::new(connect::instance_id(), database.fleet));
            Ok(Self {
                name: name.clone(),
                pool,
                lock,
                leases,
            })
        };
        opened
            .await
            .map_err(|failure: Failure| failure.into_error(&name, "open the ledger"))
    }

    /// Names a failure with what was being attempted.
    fn finish<T>(
        &self,
        action: &'static str,
        result: Result<T, Failure>,
    ) -> Result<T, LedgerError> {
        result.map_err(|failure| failure.into_error(&self.name, action))
    }
}

/// Reads what `popferry status` shows, on a connection of its own: no
/// lock, no migration, and one REPEATABLE READ transaction so every count
/// comes from the same moment.
pub(super) async fn read_status(
    database: &Database,
    detailed: &[String],
) -> Result<Found, LedgerError> {
    let name = database.url();
    let connector = Connector::new(database, &name).await?;
    let read = async {
        let mut client = match connector.connect().await {
            Ok(client) => client,
            Err(Failure::Db(err))
                if err.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME) =>
            {
                return Ok(Found::Missing)
            }
            Err(failure) => return Err(failure),
        };
        let known = migrate::MIGRATIONS.len();
        match migrate::version(&client).await? {
            None | Some(0) => Ok(Found::Empty),
            Some(found) if (found as usize) < known => Err(Failure::Ledger(LedgerError::Older {
                path: PathBuf::from(&name),
                found,
                known,
            })),
            Some(found) if (found as usize) > known => Err(Failure::Ledger(LedgerError::TooNew {
                path: PathBuf::from(&name),
                found,
                known,
            })),
            Some(_) => Ok(Found::Ledger(reads::snapshot(&mut client, detailed).await?)),
        }
    };
    read.await
        .map_err(|failure| failure.into_error(&name, "read the status"))
}
