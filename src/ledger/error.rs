//! What can go wrong with the ledger.
//!
//! Every variant names the ledger (its file, or its database's URL, which
//! never holds a password), because an operator running several instances
//! (or a test suite) needs to know which database to look at.
//! Sources are kept as `source` rather than repeated in the message, so the
//! CLI's error chain prints each cause once.

use std::path::{Path, PathBuf};

use rusqlite::{ffi, ErrorCode};

use super::sqlite::BUSY_TIMEOUT;
use super::PollId;
use crate::config::SecretError;
use crate::tls::TlsConfigError;

/// A failure of the PostgreSQL driver or of its connection pool.
pub type DatabaseError = Box<dyn std::error::Error + Send + Sync>;

/// A ledger operation failed. Nothing the caller was about to do on the
/// strength of this operation (above all, a DELE) may go ahead.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The parent folder or the database file could not be created.
    #[error("cannot create the ledger file {}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },

    /// Another process holds the polling lock of [`super::Ledger::open`].
    #[error(
        "the ledger {} is in use by another popferry process (`popferry run` or \
         `popferry fetch`); stop that one first, or give this configuration its own \
         `state` file: two processes polling into one ledger could deliver a message twice",
        path.display()
    )]
    InUse { path: PathBuf },

    /// The lock itself failed (not because someone else holds it).
    #[error("cannot lock the ledger {}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },

    /// SQLite could not open the file or set up the connection.
    #[error("cannot open the ledger {}", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },

    /// `popferry status` could not read the file at all (its mode, say).
    #[error("cannot read the ledger {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The file is not an SQLite database.
    #[error("{} is not a popferry ledger (not an SQLite database)", path.display())]
    NotALedger { path: PathBuf },

    /// `popferry status` found a schema older than this build's. It only
    /// reads, so it does not upgrade; any poller of this build does.
    #[error(
        "the ledger {} has schema {found}, older than this build's {known}: `popferry status` \
         only reads and does not upgrade it; run `popferry fetch` once (or restart \
         `popferry run`), then ask again",
        path.display()
    )]
    Older {
        path: PathBuf,
        found: u32,
        known: usize,
    },

    /// A schema migration failed; it was rolled back, so the file is still
    /// at the previous version.
    #[error("cannot upgrade the ledger {} to schema {version}", path.display())]
    Migrate {
        path: PathBuf,
        version: u32,
        source: rusqlite::Error,
    },

    /// The file's schema is newer than this binary understands. Writing
    /// rows could break invariants the newer release relies on, so the file
    /// is refused before any migration or row touches it.
    #[error(
        "ledger {} was written by a newer popferry (schema {found}, this build knows {known})",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        known: usize,
    },

    /// SQLITE_FULL. Singled out because the fix is the operator's, not
    /// popferry's, and because they need to hear that no mail was lost.
    #[error(
        "the disk holding the ledger {} is full: free some space and run popferry again; \
         messages not yet recorded stay on the server",
        path.display()
    )]
    DiskFull {
        path: PathBuf,
        source: rusqlite::Error,
    },

    /// SQLITE_BUSY after waiting [`BUSY_TIMEOUT`]: another process holds
    /// SQLite's write lock. Singled out, like a full disk, because the fix
    /// is the operator's and SQLite's own words ("database is locked")
    /// name neither the file nor the way out.
    #[error(
        "the ledger {} is locked by another program (popferry waited {}s): let it finish or \
         stop it (an sqlite3 shell, a backup, a second popferry on the same file), then run \
         popferry again; messages not yet recorded stay on the server",
        path.display(),
        BUSY_TIMEOUT.as_secs()
    )]
    Locked {
        path: PathBuf,
        source: rusqlite::Error,
    },

    /// Any other database failure; `action` says what was being attempted.
    #[error("ledger {}: cannot {action}", path.display())]
    Query {
        path: PathBuf,
        action: &'static str,
        source: rusqlite::Error,
    },

    /// `finish_poll` was given a poll that is unknown or already finished,
    /// which means the caller's bookkeeping is wrong.
    #[error(
        "ledger {}: poll {id} is not running (never started, or already finished)",
        path.display()
    )]
    PollNotRunning { path: PathBuf, id: PollId },

    /// Another process holds the poller lock of a PostgreSQL ledger
    /// (`postgres/lock.rs`), the database's counterpart of the file lock.
    #[error(
        "the ledger {} is in use by another popferry process ({holder}): the `popferry run` \
         instances of a fleet share a database with each other, but `fetch`, `import` and \
         `adopt` need it to themselves, since they poll without leases; stop the other \
         process first",
        path.display()
    )]
    DatabaseInUse {
        path: PathBuf,
        /// Who holds the lock, as the database knows the session: the
        /// name popferry gave it (host and PID), where it connected from
        /// and since when.
        holder: String,
    },

    /// A write found that this process's session no longer holds the
    /// poller lock (a database restart, a dropped link), so it wrote
    /// nothing.
    #[error(
        "ledger {}: lost the ledger's poller lock (the database restarted, or the link to it \
         dropped), so nothing was recorded; the next write takes the lock again, unless \
         another popferry process took it meanwhile",
        path.display()
    )]
    LockLost { path: PathBuf },

    /// A write of a poll found that this instance no longer holds the
    /// account's lease under the poll's epoch (it expired while the
    /// process was stopped or cut off from the database, or another
    /// instance took the account over), so it wrote nothing; the poll
    /// stops without deleting anything.
    #[error(
        "account {account}: this instance no longer holds the account's lease (it ran out \
         while the process was stopped or could not reach the database, or another instance \
         took the account over), so nothing was recorded or deleted"
    )]
    Fenced { account: String },

    /// The database's password could not be fetched.
    #[error("cannot get the password of the ledger database {}", path.display())]
    Password { path: PathBuf, source: SecretError },

    /// The TLS settings of `[database]` could not be used.
    #[error("cannot set up TLS to the ledger database {}", path.display())]
    Tls {
        path: PathBuf,
        source: TlsConfigError,
    },

    /// The server would not make a commit durable when it returns, so the
    /// guarantee cannot hold: refused before anything is written.
    #[error(
        "the ledger database {} runs with {setting} = {value}: a commit there is not on disk \
         when it returns, so a crash of the database could forget deliveries whose messages \
         popferry already deleted; set {setting} = on in the server's configuration",
        path.display()
    )]
    NotDurable {
        path: PathBuf,
        setting: &'static str,
        value: String,
    },

    /// A schema migration failed on PostgreSQL; it was rolled back with its
    /// version bump, so the database is still at the previous version.
    #[error("cannot upgrade the ledger {} to schema {version}", path.display())]
    MigrateDatabase {
        path: PathBuf,
        version: u32,
        source: DatabaseError,
    },

    /// Any failure of a PostgreSQL ledger's connection or statement;
    /// `action` says what was being attempted.
    #[error("ledger {}: cannot {action}", path.display())]
    Database {
        path: PathBuf,
        action: &'static str,
        source: DatabaseError,
    },

    /// The tokio runtime shut down before the operation got a thread. The
    /// operation never ran, so nothing was written.
    #[error("ledger {}: the runtime shut down before the operation ran", path.display())]
    ShuttingDown { path: PathBuf },
}

impl LedgerError {
    /// Wraps a failure to open or set up the connection, recognising a
    /// full disk and a lock held elsewhere.
    pub(super) fn open(path: &Path, source: rusqlite::Error) -> Self {
        Self::operator_fault(path, source).unwrap_or_else(|source| Self::Open {
            path: path.to_owned(),
            source,
        })
    }

    /// Wraps a failed statement, recognising a full disk and a lock held
    /// elsewhere.
    pub(super) fn query(path: &Path, action: &'static str, source: rusqlite::Error) -> Self {
        Self::operator_fault(path, source).unwrap_or_else(|source| Self::Query {
            path: path.to_owned(),
            action,
            source,
        })
    }

    /// Wraps a failed migration, recognising a full disk and a lock held
    /// elsewhere.
    pub(super) fn migrate(path: &Path, version: u32, source: rusqlite::Error) -> Self {
        Self::operator_fault(path, source).unwrap_or_else(|source| Self::Migrate {
            path: path.to_owned(),
            version,
            source,
        })
    }

    /// `DiskFull` or `Locked` if that is what `source` means, otherwise
    /// `source` back.
    ///
    /// A full disk shows as SQLITE_FULL when a page write fails, but as
    /// SQLITE_IOERR_SHMSIZE when it is the WAL index (`-wal`'s `-shm`
    /// companion) that cannot grow, which is what opening a ledger on a
    /// full disk runs into first; SQLite extends that file only by
    /// allocating it, so the failure means no space.
    fn operator_fault(path: &Path, source: rusqlite::Error) -> Result<Self, rusqlite::Error> {
        let path = path.to_owned();
        let extended = match &source {
            rusqlite::Error::SqliteFailure(e, _) => e.extended_code,
            _ => 0,
        };
        match source.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Ok(Self::DiskFull { path, source }),
            _ if extended == ffi::SQLITE_IOERR_SHMSIZE => Ok(Self::DiskFull { path, source }),
            Some(ErrorCode::DatabaseBusy) => Ok(Self::Locked { path, source }),
            _ => Err(source),
        }
    }
}
