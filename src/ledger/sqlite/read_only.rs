//! The ledger opened for reading only, for `popferry status`: no lock, no
//! migration, and no file or folder created, so it is safe as any user,
//! beside a running daemon, and on a ledger nobody may write.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::migrate::MIGRATIONS;
use super::{report, BUSY_TIMEOUT};
use crate::ledger::{LedgerError, Snapshot};

/// The first bytes of every SQLite database file.
const MAGIC: &[u8] = b"SQLite format 3\0";

/// What [`LedgerReader::open`] found.
#[derive(Debug)]
pub enum Opened {
    /// No file at the path: nothing was fetched with this configuration.
    Missing,
    /// A file without a schema: a poller was stopped between creating the
    /// file and writing the first table. Nothing was fetched either.
    Empty,
    Ready(LedgerReader),
}

/// A read-only connection to a ledger of the schema this build knows.
#[derive(Debug)]
pub struct LedgerReader {
    path: PathBuf,
    conn: Connection,
}

impl LedgerReader {
    /// Opens the ledger at `path` read-only.
    ///
    /// A ledger of an older schema is refused rather than read in part:
    /// `status` does not migrate, and a poller upgrades the file the moment
    /// it opens it, so an older file means no poller of this build has run
    /// yet, which the error says how to fix.
    ///
    /// SQLite creates the `-wal` and `-shm` files next to a WAL database
    /// for any reader, and a read-only one leaves them behind. They exist
    /// anyway while a poller has the ledger open, so then they are used;
    /// when there is no `-wal`, no process has the ledger open (the last
    /// one to close it folds the WAL into the file and removes it) and the
    /// file is read as `immutable`, which creates nothing. A poller that
    /// opens the ledger during that read only appends to a new `-wal`, so
    /// the read sees the ledger as it was a moment before. Only a poller
    /// that also finishes and folds its WAL back into the file within that
    /// millisecond could make the read fail (or, in theory, mix two
    /// states); asking again answers.
    ///
    /// This blocks on file I/O; call it from `spawn_blocking`.
    pub fn open(path: &Path) -> Result<Opened, LedgerError> {
        let read_error = |source| LedgerError::Read {
            path: path.to_owned(),
            source,
        };
        let mut header = Vec::with_capacity(100);
        match File::open(path) {
            Ok(file) => file
                .take(100)
                .read_to_end(&mut header)
                .map_err(read_error)?,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Opened::Missing),
            Err(e) => return Err(read_error(e)),
        };
        if header.is_empty() {
            return Ok(Opened::Empty);
        }
        if !header.starts_with(MAGIC) {
            return Err(LedgerError::NotALedger {
                path: path.to_owned(),
            });
        }
        // Bytes 18 and 19 are the read and write versions: 2 means WAL.
        let wal_mode = header.get(18..20) == Some(&[2, 2][..]);
        let immutable = wal_mode && !sidecar(path, "-wal").exists();
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let open_error = |source| LedgerError::open(path, source);
        let conn = Connection::open_with_flags(uri(path, immutable), flags).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        let found: u32 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(open_error)?;
        let known = MIGRATIONS.len();
        match found as usize {
            0 => Ok(Opened::Empty),
            n if n < known => Err(LedgerError::Older {
                path: path.to_owned(),
                found,
                known,
            }),
            n if n > known => Err(LedgerError::TooNew {
                path: path.to_owned(),
                found,
                known,
            }),
            _ => Ok(Opened::Ready(Self {
                path: path.to_owned(),
                conn,
            })),
        }
    }

    /// Reads everything `status` shows, with the recent polls and waiting
    /// messages of each account in `detailed`.
    pub fn snapshot(&mut self, detailed: &[String]) -> Result<Snapshot, LedgerError> {
        report::snapshot(&mut self.conn, detailed)
            .map_err(|source| LedgerError::query(&self.path, "read the status", source))
    }
}

/// `path` with `suffix` appended to its file name, as SQLite names the
/// files beside a database.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// An SQLite URI naming `path` exactly: every byte outside the unreserved
/// set is percent-encoded, so `?`, `#` or `%` in a folder name stay part of
/// the path. An absolute path gets the empty authority (`file:///…`), so a
/// path starting with `//` is not taken for a host name.
fn uri(path: &Path, immutable: bool) -> String {
    let mut uri = String::from(if path.is_absolute() {
        "file://"
    } else {
        "file:"
    });
    for &byte in path.as_os_str().as_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri.push_str(if immutable {
        "?mode=ro&immutable=1"
    } else {
        "?mode=ro"
    });
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_keeps_odd_paths_whole() {
        assert_eq!(
            uri(Path::new("/var/lib/a b?#%.db"), false),
            "file:///var/lib/a%20b%3F%23%25.db?mode=ro"
        );
        assert_eq!(
            uri(Path::new("//srv/l.db"), true),
            "file:////srv/l.db?mode=ro&immutable=1"
        );
        assert_eq!(uri(Path::new("l.db"), false), "file:l.db?mode=ro");
    }

    #[test]
    fn sidecar_appends_to_the_file_name() {
        assert_eq!(
            sidecar(Path::new("/x/ledger.db"), "-wal"),
            Path::new("/x/ledger.db-wal")
        );
    }
}
