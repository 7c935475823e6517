//! Why a poll stopped.

use crate::credential::CredentialError;
use crate::ledger::LedgerError;
use crate::pop3::Pop3Error;
use crate::smtp::SmtpError;
use crate::tls::TlsConfigError;

/// Why a poll stopped before QUIT.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Pop3(#[from] Pop3Error),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The login secret could not be had. Every place that prints a poll's
    /// error already names the account, so the error does not.
    #[error(transparent)]
    Credential(CredentialError),
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    /// No connection to the relay could be set up, or it said it is
    /// closing (421); the messages not yet delivered stay on the POP3
    /// server, and nothing is recorded against them.
    #[error("{source}; undelivered messages stay on the POP3 server")]
    Relay { source: SmtpError },
    #[error("{peer} does not support UIDL, so popferry cannot tell which messages it already delivered; it will not fetch from this server")]
    NoUidl { peer: String },
    #[error("deliver_to address {address:?} is not valid")]
    Recipient { address: String },
    #[error("cannot quarantine a message: {0}")]
    Quarantine(#[from] std::io::Error),
    /// The first-poll guard ([`super::refuses_first_poll`]): nothing was
    /// delivered or deleted.
    #[error(
        "account {account} keeps its mail on the server (keep = true) and the ledger knows \
         nothing of it, but the server lists {listed} messages (more than {limit}): delivering \
         them all could resend years of mail, so nothing was delivered or deleted. If another \
         program delivered them, record them with `popferry adopt {account}` (everything \
         listed now) or `popferry import fetchmail|mpop|getmail FILE --account {account}` \
         (its state file); to deliver them all, run `popferry fetch --deliver-existing {account}`",
        limit = super::FIRST_POLL_LIMIT
    )]
    FirstPoll { account: String, listed: u64 },
}

impl PollError {
    /// True when the POP3 server or the relay refused the credentials: retrying soon will
    /// not help and may get the client's address banned.
    pub fn is_auth_failure(&self) -> bool {
        match self {
            PollError::Pop3(e) => e.is_auth_failure(),
            // A refused refresh token or client needs a person; asking the
            // token endpoint again soon only gets the client throttled.
            PollError::Credential(CredentialError::OAuth(e)) => !e.is_temporary(),
            PollError::Relay { source } => source.is_auth_failure(),
            _ => false,
        }
    }

    /// True when only a person can make the next poll succeed: refused
    /// credentials, or a first poll the guard stopped. The daemon waits its
    /// longest backoff before trying again.
    pub fn needs_a_person(&self) -> bool {
        self.is_auth_failure() || matches!(self, PollError::FirstPoll { .. })
    }

    /// The error and each cause under it, joined by ": ", for the one line
    /// an operator reads. A cause is left out when the line already holds
    /// its text (many messages quote their source) or when it only restates
    /// the previous cause (SQLite's "Error code 11: <same words>").
    pub fn with_causes(&self) -> String {
        line_with_causes(self)
    }
}

/// [`PollError::with_causes`] for any error, such as the one a command
/// ends with.
pub fn line_with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut last = line.clone();
    let mut cause = error.source();
    while let Some(error) = cause {
        let text = error.to_string();
        if !line.contains(&text) && !text.ends_with(&last) {
            line = format!("{line}: {text}");
            last = text;
        }
        cause = error.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_listed_once_each() {
        let source = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some("database disk image is malformed".into()),
        );
        let error = PollError::Ledger(LedgerError::Query {
            path: "/var/lib/popferry/popferry.db".into(),
            action: "record deliveries",
            source,
        });
        assert_eq!(
            error.with_causes(),
            "ledger /var/lib/popferry/popferry.db: cannot record deliveries: \
             database disk image is malformed"
        );
        let quoted = PollError::Credential(CredentialError::Password(
            crate::config::SecretError::EnvMissing {
                name: "ALICE_PASSWORD".into(),
            },
        ));
        assert_eq!(quoted.with_causes(), quoted.to_string());
    }

    #[test]
    fn a_command_error_with_context_lists_each_cause_once() {
        let store = crate::oauth::OAuthError::Store {
            action: "create",
            path: "/nowhere/alice.refresh.lock".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        let error = anyhow::Error::new(store).context("signing in for account \"alice\"");
        let line = line_with_causes(error.as_ref());
        assert!(line.starts_with("signing in for account \"alice\": cannot create"));
        assert_eq!(line.matches("permission denied").count(), 1, "{line}");
    }
}
