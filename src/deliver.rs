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
//! round trips, a new connection with STARTTLS and AUTH about six. Up to
//! `[smtp] max_connections` of them carry messages at once, a limit held
//! for the whole process (`slots.rs`), since a relay 20 ms away takes a
//! message per 40 ms on each connection however fast popferry is.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::{SmtpConfig, TlsMode};
use crate::smtp::{Connection, Login, Settings, SmtpError, Verdict};
use crate::tls::{client_config, TlsConfigError};

mod slots;
mod trace;

pub use slots::REMEMBER as REFUSAL_REMEMBERED;
use slots::{Counted, Slots};
pub use trace::{return_path, trace_header};

/// The default of `[smtp] max_connections`: SMTP transactions in flight
/// to one relay at once, for the whole process. Chosen from the bench
/// (release build, 300 messages of 4 KiB with the relay at 20 ms RTT,
/// scenario f, medians of 3 on a shared 2-core machine). With CHUNKING
/// (one round trip a message, as Postfix and Exim offer) 4, 8 and 16
/// connections took 1.92, 1.08 and 0.68 s; with DATA (two round trips)
/// 4, 8 and 16 took 3.7, 2.1 and 1.2 s. 8 is the smallest count that
/// meets issue 14's target on a relay offering CHUNKING (under 1.5 s, at
/// most 0.2x the 7.0 s of a client sending each MAIL behind the previous
/// dot), and every transaction in flight is one more message a crash
/// can make arrive twice, so more is not better. On loopback (scenario
/// a) the count makes no difference beyond the noise. A relay that takes
/// fewer connections says so and gets fewer (`slots.rs`); Postfix's own
/// default per-client limit is 50.
pub const MAX_CONNECTIONS: usize = 8;
/// An idle connection older than this is closed rather than reused: relays
/// drop idle clients after a few minutes (Postfix: 300 s) and a dead one
/// costs a failed round trip to find out.
const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// Connections refused to one message before its poll gives up: the
/// second means the relay refuses also the connections it has open.
const REFUSALS: usize = 2;

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

/// One SMTP relay, its idle connections and its slots (see `slots.rs`).
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    envelope_from: Option<String>,
    idle: Mutex<Vec<(Pooled, Instant)>>,
    slots: Slots,
}

/// An open connection, counted as open for as long as it lives.
struct Pooled {
    conn: Connection,
    _counted: Counted,
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
                slots: Slots::new(config.max_connections),
            }),
        })
    }

    /// `[smtp] max_connections`: how many messages are worth handing to
    /// this relay at once.
    pub fn max_connections(&self) -> usize {
        self.inner.slots.configured()
    }

    /// Whether a connection to the relay is open or being opened.
    pub fn is_connected(&self) -> bool {
        self.inner.slots.open() > 0
    }

    /// Send `message` (trace header included) to `recipients`; one
    /// outcome per recipient, in their order.
    pub async fn deliver(
        &self,
        message: &[u8],
        recipients: &[String],
    ) -> Result<Vec<Outcome>, SmtpError> {
        self.deliver_watched(message, recipients, &|_| {}).await
    }

    /// [`Relay::deliver`], telling `busy` when a connection starts
    /// carrying the message (`true`) and when it is done (`false`).
    ///
    /// The message waits for one of the relay's slots first. A connection
    /// the relay refuses (see `slots.rs`) while others are open costs a
    /// slot, and the message waits for one of those others instead.
    ///
    /// `Err` is a failure of the relay rather than of the message: no
    /// connection could be set up (connect, greeting, TLS, EHLO, STARTTLS or
    /// AUTH failed) and none is open, or the relay said 421 (closing) and
    /// no other connection is open, or said it twice to this message. The
    /// next message would fail the same way, so the poll ends rather than
    /// trying once per message, and nothing is recorded against the message.
    pub async fn deliver_watched(
        &self,
        message: &[u8],
        recipients: &[String],
        busy: &(dyn Fn(bool) + Sync),
    ) -> Result<Vec<Outcome>, SmtpError> {
        let sender = match &self.inner.envelope_from {
            Some(from) => from.clone(),
            None => return_path(message).unwrap_or_default(),
        };
        let slots = &self.inner.slots;
        let mut slot = slots.take().await;
        let mut refusals: Vec<SmtpError> = Vec::new();
        let mut stale_retry = true;
        loop {
            // Taken before looking, so a connection handed back between
            // the look and the wait is not missed.
            let changed = (!refusals.is_empty()).then(|| slots.changed());
            let (mut pooled, reused) = match (self.checkout(), changed) {
                (Some(pooled), _) => (pooled, true),
                (None, None) => {
                    let counted = slots.count();
                    match Connection::open(&self.inner.settings).await {
                        Ok(conn) => {
                            let pooled = Pooled {
                                conn,
                                _counted: counted,
                            };
                            (pooled, false)
                        }
                        Err(e) => {
                            drop(counted);
                            if !is_refusal(&e) || slots.open() == 0 {
                                return Err(e);
                            }
                            self.refused(slot, &e);
                            refusals.push(e);
                            slot = slots.take().await;
                            continue;
                        }
                    }
                }
                // Refused before: only a connection the relay already
                // took will do. Wait for one to come back, or for the
                // last to close.
                (None, Some(changed)) => {
                    if slots.open() == 0 {
                        return Err(refusals.pop().expect("refused before"));
                    }
                    drop(slot);
                    changed.await;
                    slot = slots.take().await;
                    continue;
                }
            };
            let sent = {
                let _busy = Busy::new(busy);
                pooled.conn.send(&sender, recipients, message).await
            };
            match sent {
                Ok(verdicts) => {
                    if pooled.conn.is_reusable() {
                        self.checkin(pooled);
                    }
                    return Ok(verdicts.iter().map(outcome).collect());
                }
                // Closed while idle, before the transaction began: the
                // message was not sent, so a fresh connection may send it.
                Err(e) if reused && stale_retry && e.went_stale() => {
                    tracing::debug!(error = %e, "idle SMTP connection went stale; reconnecting");
                    stale_retry = false;
                }
                // A 421 is no acceptance: the message may go again, on a
                // connection the relay keeps.
                Err(e) if e.is_closing() => {
                    drop(pooled);
                    if slots.open() == 0 || refusals.len() + 1 >= REFUSALS {
                        return Err(e);
                    }
                    self.refused(slot, &e);
                    refusals.push(e);
                    slot = slots.take().await;
                }
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

    fn refused(&self, slot: tokio::sync::SemaphorePermit<'_>, error: &SmtpError) {
        let left = self.inner.slots.lower(slot);
        tracing::warn!(
            %error,
            connections = left,
            "SMTP relay refused a connection while others are open; using fewer for {}",
            humantime::format_duration(REFUSAL_REMEMBERED)
        );
    }

    fn checkout(&self) -> Option<Pooled> {
        let mut idle = self.idle();
        while let Some((pooled, since)) = idle.pop() {
            if since.elapsed() < IDLE_LIMIT {
                return Some(pooled);
            }
        }
        None
    }

    /// Keeps `pooled` for the next message, unless a refusal lowered the
    /// slots below the connections already idle.
    fn checkin(&self, pooled: Pooled) {
        let mut idle = self.idle();
        if idle.len() < self.inner.slots.current() {
            idle.push((pooled, Instant::now()));
        }
        drop(idle);
        self.inner.slots.notify();
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<(Pooled, Instant)>> {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection carrying a message, reported as done however the
/// delivery ends (a poll dropped mid-transaction included).
struct Busy<'w>(&'w (dyn Fn(bool) + Sync));

impl<'w> Busy<'w> {
    fn new(busy: &'w (dyn Fn(bool) + Sync)) -> Self {
        busy(true);
        Busy(busy)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        (self.0)(false);
    }
}

/// How a relay at its own connection limit says no: 421 at the greeting
/// (Postfix, Exim), or a reset or close before or at the greeting. A
/// refused login or a failed TLS handshake is no such refusal.
fn is_refusal(error: &SmtpError) -> bool {
    match error {
        SmtpError::Connect { source, .. } => matches!(
            source.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
        ),
        SmtpError::Closed { during, .. } | SmtpError::Io { during, .. } => {
            matches!(*during, "greeting" | "EHLO")
        }
        _ => error.is_closing(),
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
