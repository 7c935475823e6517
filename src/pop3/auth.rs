//! Logging in: USER/PASS, APOP and SASL (the mechanisms are in
//! [`crate::sasl`]; this drives one of their exchanges).
//!
//! Kept apart from the driver because this is the only code that touches
//! passwords; none of it logs an argument (see [`Command`]'s `Debug`).

use md5::{Digest as _, Md5};

use super::client::Client;
use super::command::Command;
use super::error::Pop3Error;
use super::reply::Status;
use crate::sasl::{Exchange, SaslError};

/// The longest AUTH command line, CRLF included (RFC 5034 §4).
const MAX_AUTH_LINE: usize = 255;

impl Client {
    /// USER and PASS (RFC 1939).
    pub async fn login_user(&mut self, user: &str, password: &str) -> Result<(), Pop3Error> {
        self.expect_ok(Command::User(user)).await?;
        self.expect_ok(Command::Pass(password)).await?;
        Ok(())
    }

    /// APOP (RFC 1939 §7): the password never crosses the wire, but MD5 of
    /// the greeting's timestamp and the password does.
    pub async fn login_apop(&mut self, user: &str, password: &str) -> Result<(), Pop3Error> {
        let text = &self.greeting.text;
        let stamp = text
            .find('<')
            .and_then(|start| {
                text[start..]
                    .find('>')
                    .map(|len| &text[start..=start + len])
            })
            .ok_or_else(|| Pop3Error::NoApopTimestamp {
                peer: self.peer().to_owned(),
            })?;
        let digest = Md5::digest(format!("{stamp}{password}").as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.expect_ok(Command::Apop { user, digest: &hex }).await?;
        Ok(())
    }

    /// AUTH (RFC 5034) with one SASL exchange: the initial response on
    /// the command line when it fits, then one line per `+` challenge until
    /// `+OK` or `-ERR`. A challenge the exchange cannot answer is cancelled
    /// with `*`, and its error is the one reported. Every read is bounded
    /// by the session timeout and the exchange answers a bounded number of
    /// challenges, so a server that never finishes cannot hold the poll.
    pub async fn authenticate(&mut self, mut exchange: Exchange) -> Result<(), Pop3Error> {
        let mechanism = exchange.mechanism();
        let initial = exchange.initial_response(MAX_AUTH_LINE);
        self.send(Command::Auth {
            mechanism: mechanism.name(),
            initial: initial.as_deref(),
        })?;
        self.flush().await?;
        let mut abandoned = None;
        loop {
            let reply = self.read_reply("AUTH").await?;
            if let Some(source) = abandoned.take() {
                return Err(self.sasl_error(source));
            }
            match reply.status {
                Status::Ok => return exchange.finish().map_err(|e| self.sasl_error(e)),
                Status::Err => {
                    return Err(Pop3Error::AuthRefused {
                        peer: self.peer().to_owned(),
                        mechanism,
                        reply,
                        oauth_status: exchange.oauth_status().map(str::to_owned),
                    })
                }
                Status::Continue => {
                    let line = exchange.answer(&reply.text).unwrap_or_else(|e| {
                        abandoned = Some(e);
                        "*".to_owned()
                    });
                    self.send(Command::AuthResponse(&line))?;
                    self.flush().await?;
                }
            }
        }
    }

    pub(crate) fn sasl_error(&self, source: SaslError) -> Pop3Error {
        Pop3Error::Sasl {
            peer: self.peer().to_owned(),
            source,
        }
    }
}
