//! The client side of SASL (RFC 4422), sans-IO: no sockets, no tokio.
//!
//! POP3 (RFC 5034) and SMTP (RFC 4954) carry SASL the same way: `AUTH
//! <mechanism> [initial response]`, then server challenges and client
//! responses as base64 lines until a final status. An [`Exchange`] is the
//! whole client half of that dialogue for one mechanism; the protocol
//! drivers only move its lines and read the final status, and
//! [`choose`] is where both protocols decide which mechanism to use.
//!
//! Secrets (passwords, access tokens) go into an [`Exchange`] and come out
//! only as response lines for the wire: no `Debug`, `Display` or error of
//! this module shows them.

mod choose;
mod exchange;
mod oauth;
mod scram;

pub use choose::{choose, Protocol, SecretKind};
pub use exchange::{Credentials, Exchange};

use std::fmt;

/// The mechanisms popferry speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// RFC 4616: the password in the clear (base64 only); TLS makes it safe.
    Plain,
    /// The old two-prompt exchange (username, then password) many SMTP
    /// servers still offer; as exposed as PLAIN.
    Login,
    /// RFC 2195: an HMAC-MD5 of a server challenge. The password does not
    /// cross the wire, but the server must store it in the clear.
    CramMd5,
    /// RFC 5802 and RFC 7677, without channel binding: neither side sees
    /// the other's secret and the server proves it knows the password.
    ScramSha256,
    /// Google's and Microsoft's OAuth 2.0 bearer-token format.
    XOAuth2,
    /// RFC 7628: the standard form of an OAuth 2.0 bearer token.
    OAuthBearer,
}

impl Mechanism {
    /// The name on the wire (`AUTH <name>`, CAPA's `SASL`, EHLO's `AUTH`).
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// Whether the first message may ride on the AUTH line. The OAuth
    /// mechanisms always wait for the server's empty challenge: Microsoft's
    /// POP3 answers a one-line `AUTH XOAUTH2 <token>` with a protocol error,
    /// and tokens (about 2.5 KB at Microsoft) outgrow Postfix's 2048-byte
    /// lines. LOGIN and CRAM-MD5 have no initial response.
    fn inline_initial_response(self) -> bool {
        matches!(self, Mechanism::Plain | Mechanism::ScramSha256)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a server's refusal of a login is to be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The credentials or the token were refused (`[AUTH]`, 535): trying
    /// the same again soon only risks a ban.
    Rejected,
    /// The server could not check them now (`[SYS/TEMP]`, 454, any 4xx):
    /// the next poll may succeed with the same credentials.
    Temporary,
}

/// Why an exchange failed on the client's side, or could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error(
        "the server does not offer {wanted} (it offers {offered}); choose one of those in `auth`"
    )]
    NotOffered { wanted: Mechanism, offered: String },
    #[error(
        "the server offers no login method popferry can use with a {secret} (it offers {offered})"
    )]
    NothingUsable { secret: SecretKind, offered: String },
    #[error("SCRAM-SHA-256 needs the password prepared with SASLprep, which popferry does only for printable ASCII; this password has other characters: use auth = \"plain\" over TLS")]
    SaslPrep,
    #[error("{mechanism}: the server sent a malformed challenge ({what})")]
    Malformed {
        mechanism: Mechanism,
        what: &'static str,
    },
    #[error("{mechanism}: the server sent another challenge after the exchange was complete")]
    UnexpectedChallenge { mechanism: Mechanism },
    #[error(
        "SCRAM-SHA-256: the server's nonce does not extend popferry's; the login was abandoned"
    )]
    NonceMismatch,
    #[error("SCRAM-SHA-256: the server asks for {count} iterations; popferry accepts 1 to {max}")]
    IterationCount { count: u64, max: u32 },
    #[error("SCRAM-SHA-256: the server's signature is wrong, so it does not know the password (or someone in the middle is answering); the login was abandoned")]
    ServerSignature,
    #[error("SCRAM-SHA-256: the server reported the error {0:?}")]
    ServerError(String),
    #[error(
        "SCRAM-SHA-256: the server accepted the login without proving that it knows the password"
    )]
    Unverified,
    #[error("the system's random number generator failed, so no SCRAM nonce could be made")]
    NoRandomness,
}

/// A name in a GS2 header or a SCRAM username (RFC 5801 `saslname`):
/// `,` and `=` would end or confuse the field, so they are escaped.
fn saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The end of a refused login's message: the `status` of an OAuth failure
/// challenge, if one came, and for a refused token what to check. By then
/// the token is one fresh from its source (a cached one is replaced and
/// the login retried first), so the token itself is rarely the problem,
/// and the servers' own words ("Authentication failed") do not say what
/// is.
pub(crate) fn refusal_note(
    mechanism: Mechanism,
    status: Option<&str>,
    temporary: bool,
    service: &str,
) -> String {
    let mut note = status.map_or_else(String::new, |status| format!(" (OAuth status {status:?})"));
    if matches!(mechanism, Mechanism::XOAuth2 | Mechanism::OAuthBearer) && !temporary {
        note += &format!(
            "; check that username is the mailbox address the token was issued for, that the \
             scopes include {service} access, and that {service} is enabled for the mailbox"
        );
    }
    note
}
