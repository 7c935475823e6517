//! Errors of a POP3 session. Each names the server, and the command where
//! that helps, so an admin reading one line in a log knows where to look.

use std::io;
use std::time::Duration;

use super::codec::DecodeError;
use super::command::EncodeError;
use super::pace::MIN_RATE;
use super::reply::{ListingError, Reply};
use crate::sasl::{refusal_note, Mechanism, Refusal, SaslError};

/// RFC 3206 and RFC 2449 codes of a login refused for now, not for good.
const TEMPORARY_CODES: [&str; 3] = ["SYS/TEMP", "IN-USE", "LOGIN-DELAY"];

#[derive(Debug, thiserror::Error)]
pub enum Pop3Error {
    #[error("cannot connect to {peer}: {source}")]
    Connect { peer: String, source: io::Error },
    #[error("TLS handshake with {peer} failed: {source}")]
    Tls { peer: String, source: io::Error },
    #[error("{peer} did not answer {during} within {}", humantime::format_duration(*after))]
    Timeout {
        peer: String,
        during: &'static str,
        after: Duration,
    },
    #[error("{peer} answered {during} too slowly: {received} bytes in {}, under the {MIN_RATE} bytes a second below which a server counts as stalled", humantime::format_duration(*after))]
    TooSlow {
        peer: String,
        during: &'static str,
        received: u64,
        after: Duration,
    },
    #[error("{peer} sent a {listing} listing of more than {limit} lines, the most popferry reads; it gave up on this mailbox")]
    ListingTooLong {
        peer: String,
        listing: &'static str,
        limit: usize,
    },
    #[error("{peer} lists message {number} twice in UIDL; a listing that names one message twice is broken, so nothing is moved from this mailbox until the server is repaired")]
    RepeatedNumber { peer: String, number: u32 },
    #[error("{peer} closed the connection during {during}")]
    Closed { peer: String, during: &'static str },
    #[error("network error with {peer} during {during}: {source}")]
    Io {
        peer: String,
        during: &'static str,
        source: io::Error,
    },
    #[error("{peer}: {source}")]
    Decode { peer: String, source: DecodeError },
    #[error("{peer}: {source}")]
    Listing { peer: String, source: ListingError },
    #[error("{peer} refused {command}: {reply}")]
    Refused {
        peer: String,
        command: &'static str,
        reply: Reply,
    },
    #[error("{peer} answered {command} with an unexpected reply: {reply}")]
    Unexpected {
        peer: String,
        command: &'static str,
        reply: Reply,
    },
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("{peer} does not offer STLS, and the account requires it (tls = \"starttls\"); refusing to send credentials in the clear")]
    NoStls { peer: String },
    #[error("{peer} sent data right after accepting STLS, before the TLS handshake; dropped the connection (RFC 2595 forbids this; it can be an injection attack)")]
    StlsInjection { peer: String },
    #[error("{peer} refused AUTH {mechanism}: {reply}{}", refusal_note(
        *mechanism,
        oauth_status.as_deref(),
        TEMPORARY_CODES.iter().any(|code| reply.has_code(code)),
        "POP",
    ))]
    AuthRefused {
        peer: String,
        mechanism: Mechanism,
        /// The `-ERR` line; its RFC 3206 code tells a refused secret
        /// (`[AUTH]`) from a server that cannot check it now (`[SYS/TEMP]`).
        reply: Reply,
        /// The `status` of an OAuth failure challenge, if one came.
        oauth_status: Option<String>,
    },
    #[error("{peer}: {source}")]
    Sasl { peer: String, source: SaslError },
    #[error("{peer} offers no APOP timestamp in its greeting; use auth = \"user\" or \"plain\"")]
    NoApopTimestamp { peer: String },
}

impl Pop3Error {
    /// True when the login cannot succeed as configured: the server
    /// refused the credentials, or the SASL exchange cannot work with this
    /// server. Retrying immediately will not help and may get the client's
    /// address banned. A temporary refusal ([`Refusal::Temporary`]) is not
    /// one.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, Pop3Error::Sasl { .. }) || self.auth_refusal() == Some(Refusal::Rejected)
    }

    /// How to take the server's refusal of a login, if this is one.
    /// `[SYS/TEMP]`, `[IN-USE]` and `[LOGIN-DELAY]` (RFC 2449, RFC 3206)
    /// say the same credentials may work later; anything else, `[AUTH]` or
    /// no code at all, counts as a refusal of the credentials.
    pub fn auth_refusal(&self) -> Option<Refusal> {
        let reply = match self {
            Pop3Error::AuthRefused { reply, .. }
            | Pop3Error::Refused {
                command: "PASS" | "APOP" | "USER",
                reply,
                ..
            } => reply,
            _ => return None,
        };
        Some(if TEMPORARY_CODES.iter().any(|code| reply.has_code(code)) {
            Refusal::Temporary
        } else {
            Refusal::Rejected
        })
    }

    /// True when the server says the message addressed by `UID:` is not
    /// there: someone else deleted it, so there is nothing left to do.
    pub fn is_message_gone(&self) -> bool {
        matches!(self, Pop3Error::Refused { reply, .. } if reply.has_code("UID"))
    }

    /// True when a body outgrew `max_message_size` while it was read: the
    /// message itself is the problem, not the connection's health, and it
    /// will be as large next time.
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            Pop3Error::Decode {
                source: DecodeError::MessageTooLarge { .. },
                ..
            }
        )
    }
}
