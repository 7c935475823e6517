//! Forwarding a fetched message to the SMTP relay with lettre.
//!
//! The message is relayed as the raw bytes the POP3 server sent, with one
//! `Received:` trace header in front (RFC 5321 §4.4); it is never parsed
//! and rebuilt. The relay's verdict comes back as a three-way [`Outcome`]
//! because the poll treats each differently: delivered messages may be
//! deleted, deferred ones are simply tried again next poll, rejected ones
//! are recorded so they are not retried on every poll.

use std::collections::HashMap;
use std::sync::Arc;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::PoolConfig;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{SecretError, SmtpConfig, TlsMode};

/// What the relay made of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The relay answered 250 to the end of DATA: it owns the message now.
    Delivered,
    /// A 4xx reply, a timeout or a network failure: try again later.
    Deferred(String),
    /// A 5xx reply: retrying the same bytes will fail the same way.
    Rejected(String),
}

/// A relay that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("SMTP relay {relay}: cannot read ca_file {path}: {source}")]
    CaFile {
        relay: String,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("SMTP relay {relay}: TLS setup failed: {source}")]
    Tls {
        relay: String,
        source: lettre::transport::smtp::Error,
    },
    #[error("SMTP relay {relay}: password: {source}")]
    Password { relay: String, source: SecretError },
}

/// One pooled SMTP transport per distinct `[smtp]` table, shared by every
/// account that delivers through it.
#[derive(Debug, Clone, Default)]
pub struct Relays {
    relays: HashMap<Arc<SmtpConfig>, Relay>,
}

impl Relays {
    /// The relay for `config`, built on first use.
    pub fn get(&mut self, config: &Arc<SmtpConfig>) -> Result<Relay, RelayError> {
        if let Some(relay) = self.relays.get(config) {
            return Ok(relay.clone());
        }
        let relay = Relay::new(config)?;
        self.relays.insert(config.clone(), relay.clone());
        Ok(relay)
    }
}

/// A pooled connection to one SMTP relay.
#[derive(Clone)]
pub struct Relay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    envelope_from: Option<Address>,
    name: String,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Relay({})", self.name)
    }
}

impl Relay {
    pub fn new(config: &SmtpConfig) -> Result<Relay, RelayError> {
        let name = format!("{}:{}", config.host, config.port);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .timeout(Some(config.timeout))
            .pool_config(PoolConfig::new().max_size(8));
        if config.tls != TlsMode::None {
            let params = tls_parameters(config, &name)?;
            builder = builder.tls(match config.tls {
                TlsMode::Implicit => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        }
        if let Some(helo) = &config.helo_name {
            builder = builder.hello_name(ClientId::Domain(helo.clone()));
        }
        if let Some(creds) = &config.credentials {
            let password = creds
                .password
                .resolve()
                .map_err(|source| RelayError::Password {
                    relay: name.clone(),
                    source,
                })?;
            builder = builder.credentials(Credentials::new(
                creds.username.clone(),
                password.expose().to_owned(),
            ));
        }
        let envelope_from = config.envelope_from.as_deref().and_then(|a| a.parse().ok());
        Ok(Relay {
            transport: builder.build(),
            envelope_from,
            name,
        })
    }

    /// Send `message` (trace header included) to `recipients`.
    pub async fn deliver(&self, message: &[u8], recipients: &[Address]) -> Outcome {
        let sender = match &self.envelope_from {
            Some(from) => Some(from.clone()),
            None => return_path(message),
        };
        let envelope = match Envelope::new(sender, recipients.to_vec()) {
            Ok(envelope) => envelope,
            Err(e) => return Outcome::Rejected(format!("invalid envelope: {e}")),
        };
        // lettre ends the DATA with CRLF "." CRLF after the bytes it is
        // given, so the message's own final line break must not be sent
        // twice or the relay stores an extra empty line.
        let data = message
            .strip_suffix(b"\r\n")
            .or_else(|| message.strip_suffix(b"\n"))
            .unwrap_or(message);
        match self.transport.send_raw(&envelope, data).await {
            Ok(_) => Outcome::Delivered,
            Err(e) if e.is_permanent() => Outcome::Rejected(format!("{} said: {e}", self.name)),
            Err(e) => Outcome::Deferred(format!("{}: {e}", self.name)),
        }
    }
}

fn tls_parameters(config: &SmtpConfig, name: &str) -> Result<TlsParameters, RelayError> {
    let tls_error = |source| RelayError::Tls {
        relay: name.to_owned(),
        source,
    };
    let mut params = TlsParameters::builder(config.host.clone());
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path).map_err(|source| RelayError::CaFile {
            relay: name.to_owned(),
            path: path.clone(),
            source,
        })?;
        params = params.add_root_certificate(Certificate::from_pem(&pem).map_err(tls_error)?);
    }
    params.build_rustls().map_err(tls_error)
}

/// The envelope sender from the message's `Return-Path:` header, which the
/// final delivery agent on the POP3 side wrote from the original envelope.
/// `<>` (a bounce) stays a null sender; a missing or unparsable header also
/// gives a null sender, the choice that cannot create mail loops.
pub fn return_path(message: &[u8]) -> Option<Address> {
    let headers = header_block(message);
    let line = headers
        .split(|&b| b == b'\n')
        .find(|line| line.len() > 12 && line[..12].eq_ignore_ascii_case(b"return-path:"))?;
    let value = std::str::from_utf8(&line[12..]).ok()?.trim();
    let addr = value.trim_start_matches('<').trim_end_matches('>').trim();
    addr.parse().ok()
}

fn header_block(message: &[u8]) -> &[u8] {
    let end = message
        .windows(2)
        .position(|w| w == b"\n\n" || w == b"\n\r")
        .unwrap_or(message.len());
    &message[..end]
}

/// The `Received:` trace header popferry adds, naming the POP3 server and
/// the account the message came from. CRLF-terminated like the message.
pub fn trace_header(pop3_host: &str, account: &str, uid: &str, tls: bool) -> Vec<u8> {
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let with = if tls { "POP3S" } else { "POP3" };
    format!(
        "Received: from {pop3_host} by popferry ({version}) with {with}\r\n\tfor account {account} id {uid}; {date}\r\n",
        version = env!("CARGO_PKG_VERSION"),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_path_is_read_from_the_header_block_only() {
        let msg = b"Return-Path: <bob@example.org>\r\nSubject: x\r\n\r\nReturn-Path: <evil@example.org>\r\n";
        assert_eq!(return_path(msg), Some("bob@example.org".parse().unwrap()));
        let body_only = b"Subject: x\r\n\r\nReturn-Path: <evil@example.org>\r\n";
        assert_eq!(return_path(body_only), None);
        assert_eq!(return_path(b"return-path: <>\r\n\r\n"), None);
    }

    #[test]
    fn trace_header_names_server_and_account() {
        let header =
            String::from_utf8(trace_header("pop.example.com", "alice", "U1", true)).unwrap();
        assert!(header.starts_with("Received: from pop.example.com by popferry"));
        assert!(header.contains("account alice id U1"));
        assert!(header.ends_with("\r\n") && header.matches("\r\n").count() == 2);
    }
}
