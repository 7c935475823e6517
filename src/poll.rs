//! One poll of one account: the path of every message from RETR to DELE.
//!
//! Read this file top to bottom to know what popferry does to a mailbox:
//!
//! 1. connect (implicit TLS, or STLS when `tls = "starttls"`), CAPA, log in;
//! 2. UIDL and LIST: the server's snapshot of the mailbox. Ledger rows for
//!    unique-ids the snapshot no longer shows are pruned;
//! 3. for each listed message, the ledger decides ([`decide`]):
//!    * recorded as delivered with the same size: **DELE only**. This heals
//!      a lost QUIT reply: the server never committed the deletion, but the
//!      relay already has the message, so it is not sent again;
//!    * new (or a reused unique-id with a different size): **RETR, deliver,
//!      commit to the ledger, then DELE**;
//! 4. QUIT; its `+OK` is the server's word that the deletions are done, and
//!    the ledger marks them confirmed.
//!
//! # The guarantee
//!
//! A DELE is sent only after the ledger commit for that message returned,
//! and a ledger commit is an fsynced SQLite transaction. So a message is
//! deleted from the server only after its delivery is durably recorded.
//! If the link drops, the QUIT reply is lost or popferry is killed, the next
//! poll finds the recorded unique-ids and deletes without redelivering.
//!
//! One window cannot be closed by any POP3-to-SMTP relay: if popferry dies
//! after the relay answered 250 and before the ledger commit finished, the
//! message is still on the server and not in the ledger, so the next poll
//! delivers it again. That is at most one message per killed process.
//!
//! With `keep = true` nothing is deleted and the ledger alone makes sure
//! each message is delivered once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use lettre::Address;
use tracing::{debug, info, warn};

use crate::config::{Account, AuthMethod, SecretError, TlsMode};
use crate::deliver::{trace_header, Outcome, Relay};
use crate::ledger::{Ledger, LedgerError, MessageRecord, MessageState, PollOutcome, PollReport};
use crate::pop3::{Capabilities, Client, Endpoint, Limits, Pop3Error};
use crate::quarantine;
use crate::tls::{self, TlsConfigError};

/// Why a poll stopped before QUIT.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Pop3(#[from] Pop3Error),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("password for account {account}: {source}")]
    Password {
        account: String,
        source: SecretError,
    },
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error("{peer} does not support UIDL, so popferry cannot tell which messages it already delivered; it will not fetch from this server")]
    NoUidl { peer: String },
    #[error("deliver_to address {address:?} is not valid")]
    Recipient { address: String },
    #[error("cannot quarantine a message: {0}")]
    Quarantine(#[from] std::io::Error),
}

/// Choices made per run, not per account.
#[derive(Debug, Clone, Copy, Default)]
pub struct PollOptions {
    /// Try rejected messages again now instead of waiting for their retry time.
    pub retry_rejected: bool,
}

/// What the ledger says to do with one listed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Fetch,
    /// Delivered before: delete without delivering again.
    Delete,
    Skip,
    /// Bigger than `max_message_size`: record it and leave it on the server.
    TooLarge,
}

/// First rejected retry after an hour, doubling up to a day.
const REJECT_RETRY_BASE: i64 = 3600;
const REJECT_RETRY_MAX: i64 = 24 * 3600;

/// Decide what to do with a listed message from its ledger record.
pub fn decide(
    record: Option<&MessageRecord>,
    size: u64,
    account: &Account,
    now: i64,
    options: PollOptions,
) -> Action {
    let record = record.filter(|r| r.size == size);
    match record.map(|r| (r.state, r.retry_at)) {
        Some((MessageState::Delivered | MessageState::Deleted | MessageState::Quarantined, _)) => {
            if account.keep {
                Action::Skip
            } else {
                Action::Delete
            }
        }
        Some((MessageState::Rejected, Some(at))) if at > now && !options.retry_rejected => {
            Action::Skip
        }
        _ if size > account.max_message_size => Action::TooLarge,
        _ => Action::Fetch,
    }
}

/// Poll `account` once and record the poll in the ledger.
pub async fn poll(
    account: &Account,
    ledger: &Ledger,
    relay: &Relay,
    options: PollOptions,
) -> Result<PollReport, PollError> {
    let id = ledger.start_poll(&account.name).await?;
    let mut report = PollReport {
        outcome: PollOutcome::Ok,
        listed: 0,
        delivered: 0,
        deleted: 0,
        deferred: 0,
        rejected: 0,
        error: None,
    };
    let result = run(account, ledger, relay, options, &mut report).await;
    if let Err(e) = &result {
        report.outcome = PollOutcome::Failed;
        report.error = Some(e.to_string());
    }
    ledger.finish_poll(id, &report).await?;
    result.map(|()| report)
}

async fn run(
    account: &Account,
    ledger: &Ledger,
    relay: &Relay,
    options: PollOptions,
    report: &mut PollReport,
) -> Result<(), PollError> {
    let recipients = recipients(account)?;
    let mut client = login(account).await?;

    let uids = client.uidl().await?.ok_or_else(|| PollError::NoUidl {
        peer: client.peer().to_owned(),
    })?;
    let sizes: HashMap<u32, u64> = client.list().await?.into_iter().collect();
    report.listed = uids.len() as u64;
    let listed: HashSet<String> = uids.iter().map(|(_, uid)| uid.clone()).collect();
    let pruned = ledger.forget_absent(&account.name, &listed).await?;
    debug!(
        pruned,
        "pruned ledger rows for messages no longer on the server"
    );

    let known = ledger.messages(&account.name).await?;
    let now = now();
    let mut deleted = Vec::new();
    for (n, uid) in &uids {
        let Some(&size) = sizes.get(n) else {
            warn!(
                uid,
                "message listed by UIDL but not by LIST; leaving it for the next poll"
            );
            continue;
        };
        let record = known.get(uid);
        match decide(record, size, account, now, options) {
            Action::Skip => {}
            Action::Delete => {
                client.dele(*n).await?;
                deleted.push(uid.clone());
            }
            Action::TooLarge => {
                let reason = format!(
                    "message of {size} bytes exceeds max_message_size ({})",
                    account.max_message_size
                );
                warn!(uid, "{reason}; left on the server");
                ledger
                    .record_rejected(&account.name, uid, size, &reason, retry_at(record, now))
                    .await?;
                report.rejected += 1;
            }
            Action::Fetch => {
                let mut message =
                    trace_header(&account.pop3.host, &account.name, uid, client.is_tls());
                // LIST's size (already bounded by max_message_size) sizes the
                // buffer once; growing by doubling would briefly hold two
                // copies of a large message.
                message.reserve_exact(usize::try_from(size).unwrap_or(0));
                client.retr(*n, &mut message).await?;
                match relay.deliver(&message, &recipients).await {
                    Outcome::Delivered => {
                        ledger.record_delivered(&account.name, uid, size).await?;
                        report.delivered += 1;
                        if !account.keep {
                            client.dele(*n).await?;
                            deleted.push(uid.clone());
                        }
                    }
                    Outcome::Deferred(reason) => {
                        warn!(uid, %reason, "relay deferred the message; it stays on the server for the next poll");
                        report.deferred += 1;
                    }
                    Outcome::Rejected(reason) => {
                        report.rejected += 1;
                        let Some(dir) = &account.quarantine_dir else {
                            warn!(uid, %reason, "relay rejected the message; it stays on the server");
                            ledger
                                .record_rejected(
                                    &account.name,
                                    uid,
                                    size,
                                    &reason,
                                    retry_at(record, now),
                                )
                                .await?;
                            continue;
                        };
                        let path = quarantine::save(dir, &account.name, uid, message).await?;
                        warn!(uid, %reason, path = %path.display(), "relay rejected the message; quarantined");
                        ledger
                            .record_quarantined(&account.name, uid, size, &reason, &path)
                            .await?;
                        if !account.keep {
                            client.dele(*n).await?;
                            deleted.push(uid.clone());
                        }
                    }
                }
            }
        }
    }

    client.quit().await?;
    ledger.mark_deleted(&account.name, &deleted).await?;
    report.deleted = deleted.len() as u64;
    info!(
        listed = report.listed,
        delivered = report.delivered,
        deleted = report.deleted,
        deferred = report.deferred,
        rejected = report.rejected,
        "poll finished"
    );
    Ok(())
}

/// Connect, secure the link as configured and authenticate.
pub async fn login(account: &Account) -> Result<Client, PollError> {
    let server = &account.pop3;
    let tls_config = match server.tls {
        TlsMode::None => None,
        _ => Some(tls::client_config(server.ca_file.as_deref())?),
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
    let password = resolve_password(account).await?;
    let mut client = Client::connect(&endpoint).await?;
    let mut caps = client.capa().await?.unwrap_or_default();
    if let (TlsMode::StartTls, Some(config)) = (server.tls, tls_config) {
        if !caps.has("STLS") {
            return Err(Pop3Error::NoStls {
                peer: client.peer().to_owned(),
            }
            .into());
        }
        client = client.starttls(config).await?;
        caps = client.capa().await?.unwrap_or_default();
    }
    authenticate(&mut client, account, &caps, password.expose()).await?;
    Ok(client)
}

async fn authenticate(
    client: &mut Client,
    account: &Account,
    caps: &Capabilities,
    password: &str,
) -> Result<(), Pop3Error> {
    let user = &account.username;
    match account.auth {
        AuthMethod::Auto if caps.sasl_supports("PLAIN") => client.login_plain(user, password).await,
        AuthMethod::Auto | AuthMethod::User => client.login_user(user, password).await,
        AuthMethod::Plain => client.login_plain(user, password).await,
        AuthMethod::Apop => client.login_apop(user, password).await,
    }
}

/// Password sources may read files or run commands: off the reactor.
async fn resolve_password(account: &Account) -> Result<crate::config::Secret, PollError> {
    let source = account.password.clone();
    let resolved = tokio::task::spawn_blocking(move || source.resolve())
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    resolved.map_err(|source| PollError::Password {
        account: account.name.clone(),
        source,
    })
}

fn recipients(account: &Account) -> Result<Arc<[Address]>, PollError> {
    account
        .deliver_to
        .iter()
        .map(|a| {
            a.parse()
                .map_err(|_| PollError::Recipient { address: a.clone() })
        })
        .collect()
}

/// When a rejected message is next tried: an hour after the first
/// rejection, doubling with each attempt, at most a day.
fn retry_at(record: Option<&MessageRecord>, now: i64) -> i64 {
    let attempts = record
        .filter(|r| r.state == MessageState::Rejected)
        .map_or(0, |r| r.attempts);
    let delay = REJECT_RETRY_BASE
        .saturating_mul(1 << attempts.min(10))
        .min(REJECT_RETRY_MAX);
    now + delay
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
#[path = "poll_tests.rs"]
mod tests;
