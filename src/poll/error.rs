//! Why a poll stopped.

use crate::config::SecretError;
use crate::ledger::LedgerError;
use crate::pop3::Pop3Error;
use crate::tls::TlsConfigError;

/// Why a poll stopped before QUIT.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Pop3(#[from] Pop3Error),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("password for account {account}: {source}")]
    Password {
        account: String,
        source: SecretError,
    },
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error("{peer} does not support UIDL, so popferry cannot tell which messages it already delivered; it will not fetch from this server")]
    NoUidl { peer: String },
    #[error("deliver_to address {address:?} is not valid")]
    Recipient { address: String },
    #[error("cannot quarantine a message: {0}")]
    Quarantine(#[from] std::io::Error),
}

impl PollError {
    /// True when the server refused the credentials: retrying soon will
    /// not help and may get the client's address banned.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, PollError::Pop3(e) if e.is_auth_failure())
    }
}
