//! How a poll ends and the next one starts when `popferry run` keeps the
//! connection, by what the server offers (spec 6.2, 6.3):
//!
//! * SLEE-WAKE: SLEE parks the session asleep, still logged in as its
//!   account; the next poll sends WAKE;
//! * CORE (or REFR), without SLEE-WAKE: CORE commits and reloads, and the
//!   session stays logged in, in TRANSACTION; the next poll sends CORE
//!   again for a fresh listing;
//! * QAUT, without either: QAUT logs out and keeps the connection, TLS
//!   included, for any account of the same server to log in on.
//!
//! Each `+OK` commits the deletions exactly as QUIT's does.
//!
//! A connection that another account logs in on keeps the CAPA it was
//! given before the first login. That is no cache across connections
//! (spec 6.1 forbids one): it is the same connection, back in the same
//! AUTHORIZATION state, whose capabilities (STLS, SASL, the extensions)
//! are those of the link, not of whoever logged in last, so a CAPA there
//! would only cost a round trip per account.

use tracing::info;

use super::{authenticate, Activity, Refresh, Session};
use crate::config::Account;
use crate::credential::LoginSecret;
use crate::pop3::{Capabilities, Client, Endpoint, Pop3Error, Reply};

/// Where the last poll left a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// In TRANSACTION, mid-poll.
    Awake,
    /// After SLEE: only NOOP, WAKE and QUIT are allowed.
    Asleep,
    /// After CORE: in TRANSACTION with a listing from the CORE.
    Refreshed,
}

/// A connection kept between polls.
#[derive(Debug)]
pub enum Kept {
    /// Still logged in as its account (asleep after SLEE, or refreshed
    /// after CORE): only that account may use it.
    Session(Session),
    /// Logged out with QAUT: any account of the same server may log in.
    Vacant(Vacant),
}

impl Kept {
    /// Logs out, at shutdown or when the pool has no room.
    pub async fn quit(self) {
        let quit = match self {
            Kept::Session(session) => session.quit().await,
            Kept::Vacant(vacant) => vacant.quit().await,
        };
        quit.ok();
    }
}

/// A connection in AUTHORIZATION after QAUT, its TCP and TLS still up.
#[derive(Debug)]
pub struct Vacant {
    client: Client,
    /// CAPA as this connection showed it before its first login.
    capabilities: Capabilities,
}

impl Vacant {
    /// Keeps the connection from being closed for idleness.
    pub async fn keepalive(&mut self) -> Result<(), Pop3Error> {
        self.client.noop().await
    }

    pub async fn quit(self) -> Result<(), Pop3Error> {
        self.client.quit().await
    }

    /// Logs `account` in on this connection. A refused login closes it
    /// with QUIT: a server may count failed logins per connection or drop
    /// it after a few, and the next account should not inherit that.
    pub(super) async fn log_in(
        self,
        account: &Account,
        endpoint: &Endpoint,
        secret: &LoginSecret,
    ) -> Result<Session, Pop3Error> {
        let Vacant {
            mut client,
            capabilities,
        } = self;
        client.retune(endpoint.timeout, endpoint.limits);
        match authenticate(&mut client, account, Some(&capabilities), secret).await {
            Ok(login) => Ok(Session::logged_in(client, capabilities, login, account)),
            Err(e) => {
                if !link_lost(&e) {
                    client.quit().await.ok();
                }
                Err(e)
            }
        }
    }
}

/// True when the connection itself failed, rather than the server saying
/// no: a reused connection that fails so was closed while it waited.
pub(super) fn link_lost(error: &Pop3Error) -> bool {
    matches!(
        error,
        Pop3Error::Closed { .. }
            | Pop3Error::Io { .. }
            | Pop3Error::Timeout { .. }
            | Pop3Error::TooSlow { .. }
            | Pop3Error::Decode { .. }
    )
}

impl Session {
    /// Ends a poll. With `keep` the connection is kept where the server
    /// allows it: SLEE, else CORE (both leave it this account's), else
    /// QAUT (logged out, for any account of the server); otherwise, and
    /// when the server refuses, QUIT. Any `+OK` commits the deletions; any
    /// other failure is an error, and they count as uncommitted.
    ///
    /// `pending` says whether DELEs wait for a commit: without any, CORE
    /// is not sent (the next poll's CORE reloads anyway). `settled` is
    /// whether the poll left nothing to act on later; a CORE that reports
    /// new mail unsettles it, since its fresh snapshot holds messages this
    /// poll never listed and the next CORE will not call them new.
    pub async fn end(
        mut self,
        keep: bool,
        pending: bool,
        settled: bool,
    ) -> Result<Option<Kept>, Pop3Error> {
        let extensions = self.extensions;
        self.settled = settled;
        let outcome = if !keep {
            None
        } else if extensions.sleep {
            Some(self.client.slee().await)
        } else if let Some(refresh) = extensions.refresh {
            self.phase = Phase::Refreshed;
            if !pending {
                return Ok(Some(Kept::Session(self)));
            }
            let reply = self.client.refresh(refresh == Refresh::Refr).await;
            Some(reply.map(|reply| {
                self.settled &= activity(&reply) == Activity::None;
            }))
        } else if extensions.qaut {
            return match self.client.qaut().await {
                Ok(()) => Ok(Some(Kept::Vacant(Vacant {
                    client: self.client,
                    capabilities: self.capabilities,
                }))),
                Err(e) => self.quit_after(e).await,
            };
        } else {
            None
        };
        match outcome {
            None => self.quit().await.map(|()| None),
            Some(Ok(())) => {
                if extensions.sleep {
                    self.phase = Phase::Asleep;
                }
                Ok(Some(Kept::Session(self)))
            }
            Some(Err(e)) => self.quit_after(e).await,
        }
    }

    /// QUIT after the server refused to keep the connection; any other
    /// failure is returned as it is.
    async fn quit_after(self, error: Pop3Error) -> Result<Option<Kept>, Pop3Error> {
        match error {
            Pop3Error::Refused { .. } => {
                info!(error = %error, "the server would not keep the connection; logging out");
                self.quit().await.map(|()| None)
            }
            error => Err(error),
        }
    }

    /// Starts the next poll on a kept session: WAKE after SLEE, CORE again
    /// after CORE. Message numbers from before are void either way.
    pub async fn resume(&mut self) -> Result<Activity, Pop3Error> {
        let reply = match self.phase {
            Phase::Awake => return Ok(Activity::New),
            Phase::Asleep => self.client.wake().await?,
            Phase::Refreshed => {
                let older_name = self.extensions.refresh == Some(Refresh::Refr);
                self.client.refresh(older_name).await?
            }
        };
        self.phase = Phase::Awake;
        Ok(activity(&reply))
    }

    /// Gives up a kept session that failed to resume: QUIT where the
    /// server still answers (spec 6.2: after a refused WAKE), else just
    /// the close.
    pub async fn discard(self, error: &Pop3Error) {
        if !link_lost(error) {
            self.quit().await.ok();
        }
    }

    /// Whether another account can take this session's connection (QAUT).
    pub fn can_hand_over(&self) -> bool {
        self.extensions.qaut
    }

    /// Logs a kept session out with QAUT so that another account of the
    /// same server can log in on the connection. A sleeping one must wake
    /// first (QAUT is refused in SLEEP), which costs the server a listing
    /// but still less than a new TCP and TLS connection. Nothing is
    /// pending on a kept session, so nothing is committed here.
    pub async fn hand_over(mut self) -> Result<Vacant, Pop3Error> {
        if self.phase == Phase::Asleep {
            self.client.wake().await?;
        }
        self.client.qaut().await?;
        Ok(Vacant {
            client: self.client,
            capabilities: self.capabilities,
        })
    }

    /// Keeps a parked session from being logged out for idleness.
    pub async fn keepalive(&mut self) -> Result<(), Pop3Error> {
        self.client.noop().await
    }

    /// QUIT: commits the deletions and closes.
    pub async fn quit(self) -> Result<(), Pop3Error> {
        self.client.quit().await
    }
}

/// `[ACTIVITY/NONE]`, after WAKE or CORE, is the only word that nothing
/// arrived; anything else lists the mailbox again.
fn activity(reply: &Reply) -> Activity {
    if reply.has_code("ACTIVITY/NONE") {
        Activity::None
    } else {
        Activity::New
    }
}
