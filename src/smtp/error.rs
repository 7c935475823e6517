use std::io;
use std::time::Duration;

use super::client::MAIL_FROM;
use super::reply::{Reply, ReplyError};

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
    #[error("SMTP relay {peer} offers no login method popferry knows (AUTH PLAIN or LOGIN); refusing to send the password")]
    NoAuth { peer: String },
}

impl SmtpError {
    /// A 5xx reply: the relay will refuse the same message again.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SmtpError::Refused { reply, .. } if reply.is_permanent())
    }

    /// A 5xx reply to AUTH: the relay refused the credentials.
    pub fn is_auth_refusal(&self) -> bool {
        matches!(self, SmtpError::Refused { command, reply, .. } if command.starts_with("AUTH") && reply.is_permanent())
    }

    /// The connection was found closed when the transaction began: an
    /// idle connection the relay dropped. Nothing of the message was sent.
    pub fn went_stale(&self) -> bool {
        matches!(self, SmtpError::Closed { during, .. } | SmtpError::Io { during, .. } if *during == MAIL_FROM)
    }

    /// The relay answered, so the connection is in a known state and can
    /// carry the next message (after RSET). 421 means it is closing.
    pub fn leaves_connection_usable(&self) -> bool {
        matches!(self, SmtpError::Refused { reply, .. } if reply.code != 421)
    }
}
