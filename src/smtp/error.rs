use std::io;
use std::time::Duration;

use super::client::MAIL_FROM;
use super::reply::{Reply, ReplyError};
use crate::credential::CredentialError;
use crate::sasl::{refusal_note, Mechanism, Refusal, SaslError};

/// Why a message did not reach the relay.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("cannot connect to SMTP relay {peer}: {source}")]
    Connect { peer: String, source: io::Error },
    #[error("TLS handshake with SMTP relay {peer} failed: {source}")]
    Tls { peer: String, source: io::Error },
    #[error("SMTP relay {peer}: {during}: {source}")]
    Io {
        peer: String,
        during: &'static str,
        source: io::Error,
    },
    #[error("SMTP relay {peer} did not answer {during} within {}", humantime::format_duration(*after))]
    Timeout {
        peer: String,
        during: &'static str,
        after: Duration,
    },
    #[error("SMTP relay {peer} closed the connection during {during}")]
    Closed { peer: String, during: &'static str },
    #[error("SMTP relay {peer} sent a malformed reply: {source}")]
    Reply { peer: String, source: ReplyError },
    #[error("SMTP relay {peer} said to {command}: {reply}")]
    Refused {
        peer: String,
        command: &'static str,
        reply: Reply,
    },
    #[error("SMTP relay {peer} does not offer STARTTLS; refusing to send mail in clear text (set tls = \"none\" only for a relay on a trusted link)")]
    NoStartTls { peer: String },
    #[error("SMTP relay {peer} refused AUTH {mechanism}: {reply}{}", refusal_note(
        *mechanism,
        oauth_status.as_deref(),
        (400..500).contains(&reply.code),
        "SMTP AUTH",
    ))]
    AuthRefused {
        peer: String,
        mechanism: Mechanism,
        /// The final reply: its code and enhanced code tell a refused
        /// secret (535 5.7.8) from a relay that cannot check it now (454, 4xx).
        reply: Reply,
        /// The `status` of an OAuth failure challenge, if one came.
        oauth_status: Option<String>,
    },
    #[error("SMTP relay {peer}: AUTH: {source}")]
    Sasl { peer: String, source: SaslError },
    #[error("SMTP relay {peer} does not offer SMTPUTF8, which the address {address} needs (RFC 6531), so the message cannot be sent to this recipient through it")]
    NeedsSmtpUtf8 { peer: String, address: String },
    #[error("SMTP relay {peer} gave no answer for this recipient after the data ({why}); it is tried again later")]
    Unanswered { peer: String, why: String },
    #[error("SMTP relay {peer}: {source}")]
    Credential {
        peer: String,
        source: CredentialError,
    },
}

impl SmtpError {
    /// How to take the relay's refusal of the login, if this is one: 4xx
    /// is temporary, anything else refuses the credentials.
    pub fn auth_refusal(&self) -> Option<Refusal> {
        match self {
            SmtpError::AuthRefused { reply, .. } if (400..500).contains(&reply.code) => {
                Some(Refusal::Temporary)
            }
            SmtpError::AuthRefused { .. } => Some(Refusal::Rejected),
            _ => None,
        }
    }

    /// A 5xx reply: the relay will refuse the same message again. A
    /// refused login is not one: it says nothing about the message.
    pub fn is_permanent(&self) -> bool {
        match self {
            SmtpError::Refused { reply, .. } => reply.is_permanent(),
            SmtpError::NeedsSmtpUtf8 { .. } => true,
            _ => false,
        }
    }

    /// The relay is closing the connection (421, RFC 5321 §3.8): a
    /// failure of the relay, not of the message.
    pub fn is_closing(&self) -> bool {
        matches!(self, SmtpError::Refused { reply, .. } if reply.code == 421)
    }

    /// The relay refused the credentials, or no login could be made with
    /// them (a mechanism it lacks, a refused refresh token): the daemon
    /// backs off as after a wrong password.
    pub fn is_auth_failure(&self) -> bool {
        match self {
            SmtpError::Sasl { .. } => true,
            SmtpError::Credential {
                source: CredentialError::OAuth(e),
                ..
            } => !e.is_temporary(),
            _ => self.auth_refusal() == Some(Refusal::Rejected),
        }
    }

    /// The connection was found closed when the transaction began: an
    /// idle connection the relay dropped, or one it will take no more mail
    /// on (Exim answers MAIL with 421 after `smtp_accept_max_per_connection`
    /// messages). Nothing of the message was taken.
    pub fn went_stale(&self) -> bool {
        match self {
            SmtpError::Closed { during, .. } | SmtpError::Io { during, .. } => *during == MAIL_FROM,
            SmtpError::Refused { command, reply, .. } => *command == MAIL_FROM && reply.code == 421,
            _ => false,
        }
    }
}
