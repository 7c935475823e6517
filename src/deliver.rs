//! Forwarding a fetched message to the SMTP relay.
//!
//! The message is relayed as the raw bytes the POP3 server sent, with one
//! `Received:` trace header in front (RFC 5321 §4.4); it is never parsed
//! and rebuilt. The relay's verdict comes back for each recipient as a
//! three-way [`Outcome`] because the poll treats each differently: a
//! delivered recipient has it, a deferred one is tried again (alone) next
//! poll, a rejected one is recorded so it is not retried on every poll.
//!
//! Connections are kept open between messages and shared by every account
//! that uses the same relay: a transaction on an open connection costs two
//! round trips, a new connection with STARTTLS and AUTH about six.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::{SmtpConfig, TlsMode};
use crate::headers;
use crate::smtp::{self, Connection, Login, Settings, SmtpError, Verdict};
use crate::tls::{client_config, TlsConfigError};

/// Idle connections kept per relay; as many as polls usually run at once.
const MAX_IDLE: usize = 8;
/// An idle connection older than this is closed rather than reused: relays
/// drop idle clients after a few minutes (Postfix: 300 s) and a dead one
/// costs a failed round trip to find out.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// What the relay made of one message for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The relay took responsibility for the message for this recipient.
    Delivered,
    /// A 4xx reply, a timeout or a network failure: try again later.
    Deferred(String),
    /// A 5xx reply: retrying the same bytes will fail the same way.
    Rejected(String),
}

/// A relay that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("SMTP relay {relay}: {source}")]
    Tls {
        relay: String,
        source: TlsConfigError,
    },
}

/// One connection pool per distinct `[smtp]` table, shared by every
/// account that delivers through it.
#[derive(Debug, Clone, Default)]
pub struct Relays {
    relays: HashMap<Arc<SmtpConfig>, Relay>,
}

impl Relays {
    /// The relay for `config`, built on first use; `account` is the first
    /// account to use it, named in hints about its OAuth2 sign-in.
    pub fn get(&mut self, config: &Arc<SmtpConfig>, account: &str) -> Result<Relay, RelayError> {
        if let Some(relay) = self.relays.get(config) {
            return Ok(relay.clone());
        }
        let relay = Relay::new(config, account)?;
        self.relays.insert(config.clone(), relay.clone());
        Ok(relay)
    }
}

/// One SMTP relay and its idle connections.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    envelope_from: Option<String>,
    idle: Mutex<Vec<(Connection, Instant)>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Relay({})", self.inner.settings.peer())
    }
}

impl Relay {
    pub fn new(config: &SmtpConfig, account: &str) -> Result<Relay, RelayError> {
        let relay = config.endpoint();
        let tls_config = match config.tls {
            TlsMode::None => None,
            _ => Some(
                client_config(&config.trust, config.client_identity.as_ref()).map_err(
                    |source| RelayError::Tls {
                        relay: relay.clone(),
                        source,
                    },
                )?,
            ),
        };
        // Fetched at each login, so a rotated password file or a refreshed
        // token is used by the next connection.
        let login = (config.credentials.as_ref()).map(|creds| Login {
            username: creds.username.clone(),
            credential: creds.credential.clone(),
            sign_in: format!("{account} --smtp"),
        });
        let settings = Settings {
            host: config.host.clone(),
            port: config.port,
            socket: config.socket.clone(),
            protocol: config.protocol,
            tls: config.tls,
            tls_config,
            helo: config.helo_name.clone().unwrap_or_else(local_hostname),
            login,
            auth: (config.credentials.as_ref()).and_then(|creds| creds.auth.mechanism()),
            timeout: config.timeout,
        };
        Ok(Relay {
            inner: Arc::new(Inner {
                settings,
                envelope_from: config.envelope_from.clone(),
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Send `message` (trace header included) to `recipients`; one
    /// outcome per recipient, in their order.
    ///
    /// `Err` is a failure of the relay rather than of the message: no
    /// connection could be set up (connect, greeting, TLS, EHLO, STARTTLS or
    /// AUTH failed), or the relay said 421 (closing). The next message would
    /// fail the same way, so the poll ends rather than trying once per
    /// message, and nothing is recorded against the message.
    pub async fn deliver(
        &self,
        message: &[u8],
        recipients: &[String],
    ) -> Result<Vec<Outcome>, SmtpError> {
        let sender = match &self.inner.envelope_from {
            Some(from) => from.clone(),
            None => return_path(message).unwrap_or_default(),
        };
        let mut stale_retry = true;
        loop {
            let (mut conn, reused) = match self.checkout() {
                Some(conn) => (conn, true),
                None => (Connection::open(&self.inner.settings).await?, false),
            };
            match conn.send(&sender, recipients, message).await {
                Ok(verdicts) => {
                    if conn.is_reusable() {
                        self.checkin(conn);
                    }
                    return Ok(verdicts.iter().map(outcome).collect());
                }
                // Closed while idle, before the transaction began: the
                // message was not sent, so a fresh connection may send it.
                Err(e) if reused && stale_retry && e.went_stale() => {
                    tracing::debug!(error = %e, "idle SMTP connection went stale; reconnecting");
                    stale_retry = false;
                }
                Err(e) if e.is_closing() => return Err(e),
                // The connection failed mid-transaction: whether the relay
                // kept the message is unknown, so it is tried again later.
                Err(e) => {
                    let reason = e.to_string();
                    return Ok(vec![Outcome::Deferred(reason); recipients.len()]);
                }
            }
        }
    }

    /// Sets up a fresh connection (TLS and AUTH included) outside the
    /// pool, for `popferry check --connect` to read what the relay offered
    /// and then QUIT without sending mail.
    pub async fn probe(&self) -> Result<Connection, SmtpError> {
        Connection::open(&self.inner.settings).await
    }

    fn checkout(&self) -> Option<Connection> {
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < IDLE_LIMIT {
                return Some(conn);
            }
        }
        None
    }

    fn checkin(&self, conn: Connection) {
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    }
}

fn outcome(verdict: &Verdict) -> Outcome {
    match verdict {
        Ok(()) => Outcome::Delivered,
        Err(error) if error.is_permanent() => Outcome::Rejected(error.to_string()),
        Err(error) => Outcome::Deferred(error.to_string()),
    }
}

/// The name for EHLO when `helo_name` is not set: this machine's name as
/// the kernel knows it.
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The envelope sender from the message's `Return-Path:` header, which the
/// final delivery agent on the POP3 side wrote from the original envelope.
/// `<>` (a bounce) stays a null sender; a missing or unparsable header also
/// gives a null sender, the choice that cannot create mail loops.
pub fn return_path(message: &[u8]) -> Option<String> {
    let field = headers::fields(message).find(|field| field.is("Return-Path"))?;
    let value = std::str::from_utf8(field.value()).ok()?.trim();
    let addr = value.trim_start_matches('<').trim_end_matches('>').trim();
    smtp::is_address(addr).then(|| addr.to_owned())
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
        assert_eq!(return_path(msg), Some("bob@example.org".to_owned()));
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
