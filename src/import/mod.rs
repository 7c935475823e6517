//! Reading the state files in which fetchmail, mpop and getmail remember
//! the mail they already fetched, for `popferry import`.
//!
//! Each file lists unique-ids (UIDL) per mailbox and nothing else: no
//! sizes, which the ledger otherwise uses to tell a reused unique-id from
//! the message it was first given to. Imported rows are therefore matched
//! on the unique-id alone until a poll lists them and records their size
//! (see [`crate::ledger::MessageRecord::size`]).
//!
//! The parsers are strict where the tools are lenient: fetchmail and
//! getmail skip a line they cannot read, but an import that silently drops
//! unique-ids would deliver those messages again, so a malformed line is
//! an error that names it.

mod assign;
mod fetchmail;
mod getmail;
mod mpop;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::Account;

pub use assign::{assign, Assigned};
pub use getmail::oldmail_file_name;

/// The program whose state file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// `~/.fetchids`: one `user@host unique-id` line per message.
    Fetchmail,
    /// `~/.mpop_uidls/USER_at_HOST`: a ` count host user` line, then the
    /// unique-ids one per line.
    Mpop,
    /// `~/.getmail/oldmail-SERVER-PORT-USER`: `unique-id NUL timestamp`
    /// lines.
    Getmail,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Peer::Fetchmail => "fetchmail",
            Peer::Mpop => "mpop",
            Peer::Getmail => "getmail",
        })
    }
}

/// Whose mailbox a list of unique-ids belongs to, as the file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// fetchmail and mpop name the POP3 user and server of every list.
    Mailbox { user: String, host: String },
    /// getmail names them only in the file's name, whose parts are joined
    /// by '-', which user and host names may contain too; so the name is
    /// compared whole with the one each account would have.
    OldmailFile { name: String },
}

impl Owner {
    /// Whether `account` is the mailbox this list was made for. Host names
    /// are compared without case, as DNS does; user names exactly.
    pub fn matches(&self, account: &Account) -> bool {
        match self {
            Owner::Mailbox { user, host } => {
                *user == account.username && host.eq_ignore_ascii_case(&account.pop3.host)
            }
            Owner::OldmailFile { name } => {
                let pop3 = &account.pop3;
                *name == oldmail_file_name(&pop3.host, pop3.port, &account.username)
            }
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Mailbox { user, host } => write!(f, "user {user:?} on {host}"),
            Owner::OldmailFile { name } => write!(
                f,
                "the server, port and user in the file name {name:?} \
                 (oldmail-SERVER-PORT-USER)"
            ),
        }
    }
}

/// The unique-ids one file lists for one mailbox, in the file's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidList {
    pub owner: Owner,
    pub uids: Vec<String>,
}

/// Why a state file cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}, line {line}: {problem}; is it {peer}'s state file?", path.display())]
    Malformed {
        path: PathBuf,
        peer: Peer,
        line: usize,
        problem: String,
    },
    #[error(
        "no account in the configuration has {owner} (from {}); name the account with \
         --account NAME",
        path.display()
    )]
    NoAccount { path: PathBuf, owner: Owner },
    #[error(
        "accounts {names} all have {owner} (from {}); name one with --account NAME",
        path.display()
    )]
    SeveralAccounts {
        path: PathBuf,
        owner: Owner,
        names: String,
    },
    #[error(
        "{} holds unique-ids for {owners}, none of them account {account}'s user and \
         server; name the account they belong to",
        path.display()
    )]
    NotForAccount {
        path: PathBuf,
        account: String,
        owners: String,
    },
    #[error(
        "{} holds no unique-ids and names no mailbox; name the account with --account NAME",
        path.display()
    )]
    Empty { path: PathBuf },
}

/// A line the parsers could not read: its number (from 1) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed {
    pub line: usize,
    pub problem: String,
}

impl Malformed {
    fn new(line: usize, problem: impl Into<String>) -> Self {
        Malformed {
            line,
            problem: problem.into(),
        }
    }
}

/// Reads and parses `path` as `peer`'s state file.
///
/// This blocks on file I/O; the CLI calls it before starting any work.
pub fn read(peer: Peer, path: &Path) -> Result<Vec<UidList>, ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Read {
        path: path.to_owned(),
        source,
    })?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parsed = match peer {
        Peer::Fetchmail => fetchmail::parse(&bytes),
        Peer::Mpop => mpop::parse(&bytes),
        Peer::Getmail => getmail::parse(&bytes, &file_name),
    };
    parsed.map_err(|Malformed { line, problem }| ImportError::Malformed {
        path: path.to_owned(),
        peer,
        line,
        problem,
    })
}

/// The file's lines, numbered from 1, each without its line end; a last
/// line without one counts too, an empty tail after the last '\n' does not.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, Result<&str, Malformed>)> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let all = (!bytes.is_empty()).then(|| body.split(|&b| b == b'\n'));
    all.into_iter().flatten().enumerate().map(|(i, line)| {
        let n = i + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        (
            n,
            std::str::from_utf8(line).map_err(|_| Malformed::new(n, "not UTF-8 text")),
        )
    })
}

/// `uid` if it is a POP3 unique-id: anything else never came from a
/// server's UIDL.
fn unique_id(line: usize, uid: &str) -> Result<String, Malformed> {
    if crate::pop3::reply::is_unique_id(uid) {
        Ok(uid.to_owned())
    } else {
        Err(Malformed::new(
            line,
            format!("{uid:?} is not a POP3 unique-id (1 to 70 visible ASCII characters)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_from_one_with_or_without_a_final_line_end() {
        let numbered = |bytes: &[u8]| -> Vec<(usize, String)> {
            lines(bytes)
                .map(|(n, line)| (n, line.unwrap().to_owned()))
                .collect()
        };
        assert_eq!(numbered(b""), []);
        assert_eq!(numbered(b"a\r\nb\n"), [(1, "a".into()), (2, "b".into())]);
        assert_eq!(
            numbered(b"a\n\nb"),
            [(1, "a".into()), (2, "".into()), (3, "b".into())]
        );
    }

    #[test]
    fn bytes_that_are_not_text_name_their_line() {
        let (n, line) = lines(b"ok\n\xff\xfe\n").nth(1).unwrap();
        assert_eq!((n, line), (2, Err(Malformed::new(2, "not UTF-8 text"))));
    }

    #[test]
    fn unique_ids_are_rfc_1939_ones() {
        assert_eq!(
            unique_id(1, "000000016b0f572e").unwrap(),
            "000000016b0f572e"
        );
        assert!(unique_id(1, &"x".repeat(70)).is_ok());
        for bad in ["", "with space", "tab\there", "é", &"x".repeat(71)] {
            assert_eq!(unique_id(4, bad).unwrap_err().line, 4, "{bad:?}");
        }
    }
}
