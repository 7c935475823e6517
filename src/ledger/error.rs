//! What can go wrong with the ledger.
//!
//! Every variant names the ledger file, because an operator running several
//! instances (or a test suite) needs to know which database to look at.
//! Sources are kept as `source` rather than repeated in the message, so the
//! CLI's error chain prints each cause once.

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

use super::PollId;

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

    /// The tokio runtime shut down before the operation got a thread. The
    /// operation never ran, so nothing was written.
    #[error("ledger {}: the runtime shut down before the operation ran", path.display())]
    ShuttingDown { path: PathBuf },
}

impl LedgerError {
    /// Wraps a failed statement, recognising a full disk.
    pub(super) fn query(path: &Path, action: &'static str, source: rusqlite::Error) -> Self {
        match Self::disk_full(path, source) {
            Ok(full) => full,
            Err(source) => Self::Query {
                path: path.to_owned(),
                action,
                source,
            },
        }
    }

    /// Wraps a failed migration, recognising a full disk.
    pub(super) fn migrate(path: &Path, version: u32, source: rusqlite::Error) -> Self {
        match Self::disk_full(path, source) {
            Ok(full) => full,
            Err(source) => Self::Migrate {
                path: path.to_owned(),
                version,
                source,
            },
        }
    }

    /// `DiskFull` if that is what `source` means, otherwise `source` back.
    fn disk_full(path: &Path, source: rusqlite::Error) -> Result<Self, rusqlite::Error> {
        if source.sqlite_error_code() == Some(ErrorCode::DiskFull) {
            Ok(Self::DiskFull {
                path: path.to_owned(),
                source,
            })
        } else {
            Err(source)
        }
    }
}
