//! Errors of a POP3 session. Each names the server, and the command where
//! that helps, so an admin reading one line in a log knows where to look.

use std::io;
use std::time::Duration;

use super::codec::DecodeError;
use super::command::EncodeError;
use super::listing::Duplicate;
use super::pace::MIN_RATE;
use super::reply::{ListingError, Reply};

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
    #[error("{peer} lists {duplicate} in UIDL; unique-ids that are not unique cannot tell delivered mail from new, so nothing is moved from this mailbox until the server is repaired")]
    DuplicateUid { peer: String, duplicate: Duplicate },
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
    #[error("{peer} offers no APOP timestamp in its greeting; use auth = \"user\" or \"plain\"")]
    NoApopTimestamp { peer: String },
}

impl Pop3Error {
    /// True when the server refused the credentials: retrying immediately
    /// will not help and may get the client's address banned.
    pub fn is_auth_failure(&self) -> bool {
        matches!(
            self,
            Pop3Error::Refused {
                command: "PASS" | "APOP" | "AUTH" | "USER",
                ..
            }
        )
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
