//! Logging in to the relay: SMTP AUTH (RFC 4954) with one SASL exchange of
//! [`crate::sasl`].

use super::client::Connection;
use super::error::SmtpError;
use super::settings::{Login, Settings};
use crate::credential::LoginSecret;
use crate::sasl::{self, Credentials, Exchange, Protocol, Refusal, SaslError};

/// The longest AUTH command line, CRLF included (RFC 4954 §4, RFC 5321's
/// 512-octet command line).
const MAX_AUTH_LINE: usize = 512;

impl Connection {
    /// Logs in with the configured mechanism, or for `auto` the strongest
    /// the relay offers over this link ([`sasl::choose`]). A cached OAuth2
    /// token the relay refuses is replaced by a fresh one, once, on the
    /// same connection (RFC 4954 allows another AUTH after a failure).
    pub(super) async fn login(
        &mut self,
        settings: &Settings,
        login: &Login,
    ) -> Result<(), SmtpError> {
        let mut secret = self.secret(login).await?;
        let mut outcome = self.login_with(settings, login, &secret).await;
        let rejected = |outcome: &Result<(), SmtpError>| matches!(outcome, Err(e) if e.auth_refusal() == Some(Refusal::Rejected));
        if secret.is_token() && rejected(&outcome) && secret.refused(&login.sign_in).await {
            tracing::debug!("the relay refused a cached OAuth2 token; refreshing");
            secret = self.secret(login).await?;
            outcome = self.login_with(settings, login, &secret).await;
        }
        outcome
    }

    async fn secret(&self, login: &Login) -> Result<LoginSecret, SmtpError> {
        LoginSecret::fetch(&login.credential, &login.sign_in)
            .await
            .map_err(|source| SmtpError::Credential {
                peer: self.peer.clone(),
                source,
            })
    }

    async fn login_with(
        &mut self,
        settings: &Settings,
        login: &Login,
        secret: &LoginSecret,
    ) -> Result<(), SmtpError> {
        let tls = self.stream.is_tls();
        let offered = Some(self.ext.auth.as_slice());
        let mechanism = sasl::choose(settings.auth, offered, secret.kind(), tls, Protocol::Smtp)
            .map_err(|e| self.sasl_error(e))?;
        let credentials = Credentials {
            username: &login.username,
            secret: secret.expose(),
            host: &settings.host,
            port: settings.port,
        };
        let exchange = Exchange::new(mechanism, &credentials).map_err(|e| self.sasl_error(e))?;
        self.authenticate(exchange).await?;
        self.mechanism = Some(mechanism);
        Ok(())
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
