//! A logged-in POP3 session and what its server offers beyond RFC 1939.
//!
//! A poll works on a [`Session`] whether it was just opened or woken from
//! the pool: the extensions decide how messages are addressed (`UID:` when
//! the server offers UID-PARAM, so a number cannot go stale), how they are
//! deleted (DELI, durable at its `+OK`, or DELE, durable at QUIT/SLEE) and
//! how the poll ends (SLEE, CORE or QAUT to keep the connection, or QUIT:
//! `pooling.rs`). How a new connection gets logged in is `login.rs`.

use std::collections::HashMap;
use std::time::Duration;

use tracing::debug;

use crate::config::{Account, TlsMode};
use crate::poll::PollError;
use crate::pop3::command::Command;
use crate::pop3::{Capabilities, Client, Endpoint, Limits, Msg, Pop3Error};
use crate::sasl::{Mechanism, Refusal};
use crate::tls;

mod known;
mod login;
mod pooling;

pub use known::KnownCapabilities;
use login::{authenticate, login_secret};
use pooling::Phase;
pub use pooling::{Kept, Vacant};

/// The extensions of one server that popferry uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extensions {
    /// SLEE/WAKE: `SLEE-WAKE`, or `SLEEPING` as a later draft names it.
    pub sleep: bool,
    /// `UID:<uid>` in place of a message number.
    pub uid_param: bool,
    /// DELI, offered by the server and allowed by the account.
    pub deli: bool,
    /// RFC 2449 PIPELINING: commands may be sent without waiting.
    pub pipelining: bool,
    /// RFC 2449 LOGIN-DELAY: the least time between two logins.
    pub login_delay: Option<Duration>,
    /// QAUT: log out and keep the connection for another login.
    pub qaut: bool,
    /// CORE, or REFR as older builds name it: commit and reload while
    /// staying logged in.
    pub refresh: Option<Refresh>,
}

/// The name a server knows the commit-and-refresh command by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    Core,
    /// The name before CORE.
    Refr,
}

impl Extensions {
    fn new(caps: &Capabilities, account: &Account) -> Extensions {
        let login_delay = caps
            .args("LOGIN-DELAY")
            .and_then(|args| args.first()?.parse().ok())
            .map(Duration::from_secs);
        Extensions {
            sleep: caps.has("SLEE-WAKE") || caps.has("SLEEPING"),
            uid_param: caps.has("UID-PARAM"),
            deli: account.deli && caps.has("DELI"),
            pipelining: caps.has("PIPELINING"),
            login_delay,
            qaut: caps.has("QAUT"),
            refresh: if caps.has("CORE") {
                Some(Refresh::Core)
            } else if caps.has("REFR") {
                Some(Refresh::Refr)
            } else {
                None
            },
        }
    }
}

/// How a session logged in, for `popferry check --connect` to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    /// USER/PASS.
    User,
    Apop,
    Sasl(Mechanism),
}

impl std::fmt::Display for LoginMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginMethod::User => f.write_str("USER/PASS"),
            LoginMethod::Apop => f.write_str("APOP"),
            LoginMethod::Sasl(mechanism) => write!(f, "SASL {mechanism}"),
        }
    }
}

/// What WAKE says about the mailbox since the session went to sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// `[ACTIVITY/NONE]`: no unique-id appeared that was not there before.
    None,
    /// `[ACTIVITY/NEW]`, or no code at all: list the mailbox again.
    New,
}

/// How a delete ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// DELI's `+OK`: the message is gone, whatever happens to the link.
    Now,
    /// DELE's `+OK`: gone once QUIT or SLEE succeeds.
    AtCommit,
    /// The server says no message has that unique-id any more.
    AlreadyGone,
}

/// The mailbox as one UIDL and LIST saw it.
#[derive(Debug)]
pub struct Listing {
    /// Message number and unique-id, in the server's order.
    pub uids: Vec<(u32, String)>,
    /// Size by message number.
    pub sizes: HashMap<u32, u64>,
}

/// A logged-in connection. While it sits in the pool it is asleep (SLEE)
/// or refreshed (CORE).
#[derive(Debug)]
pub struct Session {
    client: Client,
    extensions: Extensions,
    /// CAPA as it was before login (after STLS), when the server still
    /// lists its SASL mechanisms; a server without CAPA has none.
    capabilities: Capabilities,
    login: LoginMethod,
    /// True when the last cycle left nothing on the server to act on later,
    /// so a WAKE with `[ACTIVITY/NONE]` means there is nothing to do.
    pub settled: bool,
    /// How the last poll left it, so the next knows how to resume it.
    phase: Phase,
}

impl Session {
    /// Connects, secures the link as configured and logs in, asking the
    /// server for its capabilities.
    pub async fn open(account: &Account) -> Result<Session, PollError> {
        Session::open_on(account, None, &KnownCapabilities::default()).await
    }

    /// Logs in on `vacant`, a connection another account of the same
    /// server left with QAUT, or on a new connection when there is none or
    /// it turns out to be dead. A new connection skips CAPA when `known`
    /// has the server's answer.
    pub async fn open_on(
        account: &Account,
        mut vacant: Option<Vacant>,
        known: &KnownCapabilities,
    ) -> Result<Session, PollError> {
        let server = &account.pop3;
        let tls_config = match server.tls {
            TlsMode::None => None,
            _ => Some(tls::client_config(
                &server.trust,
                server.client_identity.as_ref(),
            )?),
        };
        let endpoint = Endpoint {
            host: server.host.clone(),
            port: server.port,
            implicit_tls: tls_config
                .clone()
                .filter(|_| server.tls == TlsMode::Implicit),
            timeout: account.timeout,
            limits: Limits {
                max_message: account.max_message_size,
                ..Limits::default()
            },
        };
        let mut secret = login_secret(account).await?;
        let mut retried = false;
        loop {
            let outcome = match vacant.take() {
                Some(vacant) => match vacant.log_in(account, &endpoint, &secret).await {
                    Err(e) if pooling::link_lost(&e) => {
                        debug!(error = %e, "the reused connection is gone; connecting afresh");
                        continue;
                    }
                    outcome => outcome.map_err(PollError::from),
                },
                None => {
                    login::on_new_connection(account, &endpoint, tls_config.clone(), known, &secret)
                        .await
                        .map(|(client, capa, login)| {
                            Session::logged_in(client, capa.unwrap_or_default(), login, account)
                        })
                }
            };
            match outcome {
                Err(PollError::Pop3(e))
                    if secret.is_token() && e.auth_refusal() == Some(Refusal::Rejected) =>
                {
                    if retried || !secret.refused(&account.name).await {
                        return Err(e.into());
                    }
                    debug!(error = %e, "the server refused a cached OAuth2 token; refreshing");
                    secret = login_secret(account).await?;
                    retried = true;
                }
                outcome => return outcome,
            }
        }
    }

    fn logged_in(
        client: Client,
        capabilities: Capabilities,
        login: LoginMethod,
        account: &Account,
    ) -> Session {
        let extensions = Extensions::new(&capabilities, account);
        debug!(?extensions, %login, "logged in");
        Session {
            client,
            extensions,
            capabilities,
            login,
            settled: false,
            phase: Phase::Awake,
        }
    }

    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    pub fn extensions(&self) -> Extensions {
        self.extensions
    }

    /// What the server offered before login.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    pub fn login_method(&self) -> LoginMethod {
        self.login
    }

    /// How a command names the message listed as `n` with `uid`.
    pub fn target<'a>(&self, n: u32, uid: &'a str) -> Msg<'a> {
        if self.extensions.uid_param {
            Msg::Uid(uid)
        } else {
            Msg::Number(n)
        }
    }

    /// The server's snapshot of the mailbox: UIDL and LIST, both sent at
    /// once where the server pipelines.
    pub async fn listing(&mut self) -> Result<Listing, PollError> {
        let client = &mut self.client;
        client.send(Command::Uidl)?;
        if self.extensions.pipelining {
            client.send(Command::List)?;
        }
        client.flush().await?;
        let uids = client.read_uidl().await?;
        if !self.extensions.pipelining {
            client.send(Command::List)?;
            client.flush().await?;
        }
        let sizes = client.read_list().await?;
        let uids = uids.ok_or_else(|| PollError::NoUidl {
            peer: client.peer().to_owned(),
        })?;
        Ok(Listing {
            uids,
            sizes: sizes.into_iter().collect(),
        })
    }

    /// Queues the deletion of a message, DELI where the server and the
    /// account allow it, otherwise DELE; [`Session::deleted`] reads the
    /// reply.
    pub fn queue_delete(&mut self, target: Msg<'_>) -> Result<(), Pop3Error> {
        self.client.send(if self.extensions.deli {
            Command::Deli(target)
        } else {
            Command::Dele(target)
        })
    }

    /// The reply to the oldest queued deletion.
    pub async fn deleted(&mut self) -> Result<Deleted, Pop3Error> {
        let (verb, done) = if self.extensions.deli {
            ("DELI", Deleted::Now)
        } else {
            ("DELE", Deleted::AtCommit)
        };
        match self.client.read_ok(verb).await {
            Ok(_) => Ok(done),
            Err(e) if e.is_message_gone() => Ok(Deleted::AlreadyGone),
            Err(e) => Err(e),
        }
    }
}
