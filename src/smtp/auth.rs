//! Logging in to the relay: SMTP AUTH (RFC 4954) with one SASL exchange of
//! [`crate::sasl`].

use super::client::{Connection, Settings};
use super::error::SmtpError;
use crate::config::Secret;
use crate::sasl::{self, Credentials, Exchange, Protocol, SaslError, SecretKind};

/// The longest AUTH command line, CRLF included (RFC 4954 §4, RFC 5321's
/// 512-octet command line).
const MAX_AUTH_LINE: usize = 512;

impl Connection {
    /// Logs in with the configured mechanism, or for `auto` the strongest
    /// the relay offers over this link ([`sasl::choose`]).
    pub(super) async fn login(
        &mut self,
        settings: &Settings,
        user: &str,
        password: &Secret,
    ) -> Result<(), SmtpError> {
        let tls = self.stream.is_tls();
        let offered = Some(self.ext.auth.as_slice());
        let mechanism = sasl::choose(
            settings.auth,
            offered,
            SecretKind::of_password(password.expose()),
            tls,
            Protocol::Smtp,
        )
        .map_err(|e| self.sasl_error(e))?;
        let credentials = Credentials {
            username: user,
            secret: password.expose(),
            host: &settings.host,
            port: settings.port,
        };
        let exchange = Exchange::new(mechanism, &credentials).map_err(|e| self.sasl_error(e))?;
        self.authenticate(exchange).await
    }

    /// AUTH (RFC 4954) with one SASL exchange: the initial response on the
    /// command line when it fits, then one line per 334 challenge until the
    /// final reply. A challenge the exchange cannot answer is cancelled
    /// with `*`, and its error is the one reported. Every read is bounded
    /// by the timeout and the exchange answers a bounded number of
    /// challenges, so a relay that never finishes cannot hold delivery.
    async fn authenticate(&mut self, mut exchange: Exchange) -> Result<(), SmtpError> {
        let mechanism = exchange.mechanism();
        let mut line = format!("AUTH {mechanism}");
        if let Some(initial) = exchange.initial_response(MAX_AUTH_LINE) {
            line = format!("{line} {initial}");
        }
        let mut abandoned = None;
        loop {
            self.write("AUTH", format!("{line}\r\n").as_bytes()).await?;
            let reply = self.read("AUTH").await?;
            if let Some(source) = abandoned.take() {
                return Err(self.sasl_error(source));
            }
            match reply.code {
                235 => return exchange.finish().map_err(|e| self.sasl_error(e)),
                334 => {
                    let challenge = reply.lines.first().map_or("", String::as_str);
                    line = exchange.answer(challenge).unwrap_or_else(|e| {
                        abandoned = Some(e);
                        "*".to_owned()
                    });
                }
                _ => {
                    return Err(SmtpError::AuthRefused {
                        peer: self.peer.clone(),
                        mechanism,
                        reply,
                        oauth_status: exchange.oauth_status().map(str::to_owned),
                    })
                }
            }
        }
    }

    fn sasl_error(&self, source: SaslError) -> SmtpError {
        SmtpError::Sasl {
            peer: self.peer.clone(),
            source,
        }
    }
}
