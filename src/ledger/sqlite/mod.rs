//! The SQLite engine: the ledger in one file, the default.
//!
//! "Durably" is made concrete by `synchronous=FULL`: a commit that returned
//! has been fsynced. Only the poll history is written at `NORMAL`
//! (`Durability`).
//!
//! # Threads
//!
//! One process owns one connection (SQLite allows a single writer anyway),
//! shared by every account task through the [`Ledger`](super::Ledger)'s
//! clones. Each method runs on tokio's blocking pool, because a commit
//! waits for an fsync that can take tens of milliseconds and must not stall
//! the reactor that is driving the POP3 and SMTP sessions of other accounts.

mod change;
mod empty_polls;
mod imported;
mod messages;
mod migrate;
mod polls;
mod read_only;
mod recipients;
mod report;
#[cfg(test)]
mod tests;
mod totals;

use std::fs::{DirBuilder, File, OpenOptions, TryLockError};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, Row};

use super::LedgerError;
pub use read_only::{LedgerReader, Opened};

/// How long a statement waits for another process (say `popferry status`
/// next to the daemon) to release its lock before failing with "busy".
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many prepared statements a connection keeps: more than the ledger
/// has.
const STATEMENTS: usize = 64;

/// The one connection of a SQLite ledger, shared by the clones of its
/// [`Ledger`](super::Ledger).
#[derive(Debug)]
pub(super) struct Store {
    /// Only for error messages and logs.
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Whether `conn` is at `synchronous = NORMAL` now. Read and changed
    /// only with `conn` locked. A PRAGMA cannot be kept prepared (SQLite
    /// parses it again on every run, and the parse is what applies it), so
    /// it is run only when the level has to change: re-parsing it on every
    /// call was a tenth of the daemon's CPU at 100 polls a second.
    unsynced: AtomicBool,
    /// The polling lock of [`Store::open`], released when the last clone
    /// is dropped (or the process ends).
    _lock: Option<File>,
}

impl Store {
    /// Opens the ledger at `path` for a process that polls: `popferry
    /// fetch` or `popferry run`. It creates the file (and its parent
    /// folders) if needed, upgrades its schema to the one this build knows,
    /// and holds an exclusive lock on it for as long as the handle lives.
    ///
    /// The lock is what keeps two polling processes apart. Each would see
    /// the other's delivered messages as new until their rows were
    /// committed, so both could deliver the same message; one of them is
    /// refused at startup instead. It is an advisory `flock` on the
    /// database file itself, independent of SQLite's own byte-range locks,
    /// so the kernel drops it when the process dies (no stale lock files)
    /// and every path that reaches the same file meets the same lock.
    ///
    /// The file is created here, before SQLite sees it, so that it is born
    /// with mode 0600: it lists every mailbox and message popferry handles.
    /// SQLite gives its `-wal` and `-shm` files the same mode as the
    /// database. Folders created on the way get 0700 for the same reason.
    /// An existing file keeps whatever mode the operator gave it.
    ///
    /// This blocks on file I/O; call it once at startup, or from
    /// `spawn_blocking`.
    pub(super) fn open(path: &Path) -> Result<Self, LedgerError> {
        let file = create_private(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LedgerError::InUse {
                    path: path.to_owned(),
                })
            }
            Err(TryLockError::Error(source)) => {
                return Err(LedgerError::Lock {
                    path: path.to_owned(),
                    source,
                })
            }
        }
        Self::connect(path, Some(file))
    }

    fn connect(path: &Path, lock: Option<File>) -> Result<Self, LedgerError> {
        // No SQLITE_OPEN_CREATE: the file exists now, and if it vanished in
        // between, failing is better than silently starting an empty ledger.
        // No SQLITE_OPEN_URI: a path is a path, even if it starts "file:".
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open_error = |source| LedgerError::open(path, source);
        let conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
        // WAL lets `popferry status` read while the daemon writes, and makes
        // a commit one append plus one fsync instead of several.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
            .map_err(open_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Some filesystems (network mounts) cannot do WAL. The rollback
            // journal SQLite falls back to is just as durable, only slower.
            tracing::warn!(ledger = %path.display(), mode, "ledger is not in WAL mode");
        }
        Self::start(conn, path, lock)
    }

    /// A private, empty ledger that lives as long as the handle: for tests
    /// of code that needs a ledger but not a file.
    pub(super) fn open_in_memory() -> Result<Self, LedgerError> {
        let path = Path::new(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| LedgerError::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::start(conn, path, None)
    }

    /// Applies the settings every connection needs, then the migrations.
    fn start(mut conn: Connection, path: &Path, lock: Option<File>) -> Result<Self, LedgerError> {
        let open_error = |source| LedgerError::open(path, source);
        // FULL fsyncs the WAL on every commit. NORMAL, the usual pairing
        // with WAL, may lose the last commits on power loss, and a lost
        // "delivered" row after a DELE is exactly the loss this ledger exists
        // to prevent. Set explicitly so no build-time default decides.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_error)?;
        // Off by default in SQLite, per connection; on so that any future
        // references between tables are enforced, not just declared.
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        // Without the query planner stability guarantee SQLite plans some
        // statements around their bound values (a LIMIT, a subquery's
        // ORDER BY), so each new account name re-prepared them however
        // well they were cached: the ledger's lookups are by key and
        // gain nothing from it.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(open_error)?;
        // Room for every statement a poll runs (rusqlite keeps 16), so
        // none is parsed again because another pushed it out.
        conn.set_prepared_statement_cache_capacity(STATEMENTS);
        migrate::migrate(&mut conn, path, migrate::MIGRATIONS)?;
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            unsynced: AtomicBool::new(false),
            _lock: lock,
        })
    }

    /// Runs `work` with the connection on the blocking pool. `action`
    /// completes the sentence "cannot ..." if it fails.
    async fn run<T, F>(self: &Arc<Self>, action: &'static str, work: F) -> Result<T, LedgerError>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run_with(Durability::Synced, action, work).await
    }

    async fn run_with<T, F>(
        self: &Arc<Self>,
        sync: Durability,
        action: &'static str,
        work: F,
    ) -> Result<T, LedgerError>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(self);
        let task = tokio::task::spawn_blocking(move || {
            // A panic inside `work` unwinds through rusqlite's Transaction,
            // whose drop rolls back, so the connection behind a poisoned
            // lock holds no half-done work and is safe to keep using.
            let mut conn = inner.conn.lock().unwrap_or_else(PoisonError::into_inner);
            // Checked on every call, under the lock, so a synced write
            // never depends on an earlier unsynced one having restored it.
            let unsynced = matches!(sync, Durability::Unsynced);
            if inner.unsynced.load(Ordering::Relaxed) != unsynced {
                conn.execute_batch(sync.pragma())?;
                inner.unsynced.store(unsynced, Ordering::Relaxed);
            }
            work(&mut conn)
        });
        match task.await {
            Ok(result) => result.map_err(|source| LedgerError::query(self.path(), action, source)),
            // A panic is a bug: let it reach the caller as a panic.
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => Err(LedgerError::ShuttingDown {
                path: self.path().to_owned(),
            }),
        }
    }

    /// Like [`Store::run`], but the commit is not fsynced: for the poll
    /// history, which only informs `popferry status`. In WAL mode the next
    /// synced commit (any message change) makes these durable too; power
    /// loss before that can lose the last poll rows, never a delivery.
    /// Without it an idle pooled poll would spend most of its time in two
    /// fsyncs.
    async fn run_unsynced<T, F>(
        self: &Arc<Self>,
        action: &'static str,
        work: F,
    ) -> Result<T, LedgerError>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run_with(Durability::Unsynced, action, work).await
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether a commit waits for its fsync.
#[derive(Debug, Clone, Copy)]
enum Durability {
    /// The guarantee's setting: a commit that returned has been fsynced.
    Synced,
    /// WAL's NORMAL: durable at the next synced commit or checkpoint.
    Unsynced,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Synced => "PRAGMA synchronous = FULL",
            Durability::Unsynced => "PRAGMA synchronous = NORMAL",
        }
    }
}

/// SQLite integers are signed 64-bit; a count or size beyond that cannot
/// come from a real server, but is refused rather than wrapped.
fn sql_int(n: u64) -> rusqlite::Result<i64> {
    i64::try_from(n).map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))
}

/// Reads a size or count. rusqlite reads `u64` only with its
/// `fallible_uint` feature; the schema's CHECKs keep these columns
/// non-negative, so a failure here means the file was edited by hand.
fn get_u64(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let n: i64 = row.get(index)?;
    u64::try_from(n).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, n))
}

/// Creates the ledger file and its folders private to the owner, or opens
/// the existing file as it is.
fn create_private(path: &Path) -> Result<File, LedgerError> {
    let create_error = |source| LedgerError::Create {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(create_error)?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(create_error)
}
