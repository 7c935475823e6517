//! Logging in: USER/PASS, APOP and SASL PLAIN.
//!
//! Kept apart from the driver because this is the only code that touches
//! passwords; none of it logs an argument (see [`Command`]'s `Debug`).

use base64::Engine as _;
use md5::{Digest as _, Md5};

use super::client::Client;
use super::command::Command;
use super::error::Pop3Error;
use super::reply::Status;

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

    /// AUTH PLAIN (RFC 5034, RFC 4616). The credentials go in the initial
    /// response when the command fits the 255-octet line limit of RFC 5034,
    /// otherwise after the server's `+` continuation.
    pub async fn login_plain(&mut self, user: &str, password: &str) -> Result<(), Pop3Error> {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("\0{user}\0{password}").as_bytes());
        let fits = "AUTH PLAIN ".len() + token.len() + 2 <= 255;
        self.send(Command::Auth {
            mechanism: "PLAIN",
            initial: fits.then_some(token.as_str()),
        })?;
        self.flush().await?;
        let mut sent = fits;
        loop {
            let reply = self.read_reply("AUTH").await?;
            match reply.status {
                Status::Ok => return Ok(()),
                Status::Err => return Err(self.refused("AUTH", reply)),
                // A second challenge for PLAIN means the server did not like
                // the exchange; `*` cancels it (RFC 5034 §4).
                Status::Continue => {
                    let line = if sent { "*" } else { token.as_str() };
                    sent = true;
                    self.send(Command::AuthResponse(line))?;
                    self.flush().await?;
                }
            }
        }
    }
}
