//! The SMTP client that hands messages to the relay (RFC 5321, with
//! PIPELINING, CHUNKING, STARTTLS, 8BITMIME, SMTPUTF8, SIZE and AUTH with the
//! mechanisms of [`crate::sasl`]).
//!
//! popferry has its own client rather than lettre's transport because the
//! relay leg is where its time goes, and lettre (0.11) neither sets
//! TCP_NODELAY nor pipelines a transaction, and stuffs a whole message into
//! a second buffer; see [`client`] for what each of those costs.
//!
//! [`reply`] and [`data`] are sans-IO; [`client`] drives them over a socket,
//! and `auth` drives a [`crate::sasl`] exchange to log in.

mod auth;
mod chunking;
pub mod client;
pub mod data;
mod ehlo;
mod error;
pub mod reply;
mod settings;
mod transaction;

pub use client::{Connection, Protocol};
pub use error::SmtpError;
pub use reply::Reply;
pub use settings::{peer_name, Login, Settings};
pub use transaction::Verdict;

/// Whether `text` can go between the angle brackets of MAIL FROM or RCPT
/// TO: `local@domain`, nothing that would end the path or the command line.
/// Config validation uses the same test, so an address accepted there is
/// never refused here.
pub fn is_address(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && text.len() <= 254
        && !text
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';'))
}

#[cfg(test)]
mod tests {
    use super::is_address;

    #[test]
    fn addresses() {
        assert!(is_address("alice@example.org"));
        assert!(is_address("jörg@exämple.de"));
        for bad in [
            "",
            "alice",
            "@example.org",
            "alice@",
            "a b@c",
            "a@b>",
            "a@b\r\nRCPT",
            "\"odd local\"@example.org",
        ] {
            assert!(!is_address(bad), "{bad:?}");
        }
    }
}
