//! The rig the in-process poll tests share: a [`Pop3Server`], an
//! [`SmtpReceiver`], a ledger in a temporary folder, and an account built
//! through `Config::from_toml` (so the tests exercise the same defaults
//! and validation as a real configuration file).
//!
//! Several test crates include this module and each uses a subset of it,
//! hence the `dead_code` allowance.
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use popferry::config::{Account, Config, Daemon};
use popferry::deliver::Relay;
use popferry::ledger::{Ledger, MessageRecord, PollReport};
use popferry::poll::{poll, PollError, PollOptions};
use popferry::scheduler::interval::Pace;
use popferry::scheduler::Shared;

use crate::pop3_server::{Options, Pop3Server};
use crate::smtp_receiver::SmtpReceiver;

/// Every test body runs under this limit, so a hang fails instead of
/// blocking the suite.
pub const TEST_LIMIT: Duration = Duration::from_secs(30);

/// The account's POP3 `timeout`, kept short so stalls fail fast.
pub const POP3_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn within<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("test did not finish within its time limit")
}

pub struct Rig {
    pub pop3: Pop3Server,
    pub smtp: SmtpReceiver,
    pub ledger: Ledger,
    pub account: Account,
    pub relay: Relay,
    pub dir: tempfile::TempDir,
}

impl Rig {
    /// A rig with the default server and `extra` appended to the
    /// `[[account]]` table (e.g. `keep = true`).
    pub async fn start(extra: &str) -> Rig {
        Rig::with_server(Options::default(), extra).await
    }

    pub async fn with_server(options: Options, extra: &str) -> Rig {
        let password = options.password.clone();
        Rig::with_password(options, &password, extra).await
    }

    /// Like [`Rig::with_server`], but the account sends `password`, which
    /// need not be the one the server expects.
    pub async fn with_password(options: Options, password: &str, extra: &str) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        let user = options.user.clone();
        let pop3 = Pop3Server::start(options).await;
        let smtp = SmtpReceiver::start().await;
        let account = account(&pop3, &smtp, &user, password, extra, dir.path());
        let relay = Relay::new(&account.smtp, "test").expect("relay");
        let ledger = Ledger::open(&dir.path().join("ledger.db")).expect("ledger");
        Rig {
            pop3,
            smtp,
            ledger,
            account,
            relay,
            dir,
        }
    }

    pub async fn poll(&self) -> Result<PollReport, PollError> {
        self.poll_with(&PollOptions::default()).await
    }

    pub async fn poll_with(&self, options: &PollOptions) -> Result<PollReport, PollError> {
        poll(&self.account, &self.ledger, &self.relay, options).await
    }

    /// The daemon's way to poll: through a pool, parking the session with
    /// SLEE where the server offers it. Keep the same `Shared` across
    /// calls to reuse the parked session.
    pub fn daemon(&self) -> Shared {
        Shared::new(self.ledger.clone(), Daemon::default())
    }

    /// One poll as `popferry run` makes it.
    pub async fn pooled_poll(&self, shared: &Shared) -> Result<PollReport, PollError> {
        shared
            .poll(
                &self.account,
                &self.relay,
                &PollOptions::default(),
                &mut Pace::default(),
            )
            .await
            .result
    }

    /// Adds `uid` with the bytes of [`message`].
    pub fn add(&self, uid: &str, headers: &str) {
        self.pop3.add(uid, &message(uid, headers));
    }

    /// How many times the receiver accepted the message with this uid.
    pub fn accepted_count(&self, uid: &str) -> usize {
        self.smtp
            .accepted()
            .iter()
            .filter(|offer| uid_of(&offer.data).as_deref() == Some(uid))
            .count()
    }

    /// How many times the message with this uid was offered at all.
    pub fn offered_count(&self, uid: &str) -> usize {
        self.smtp
            .offers()
            .iter()
            .filter(|offer| uid_of(&offer.data).as_deref() == Some(uid))
            .count()
    }

    pub async fn record(&self, uid: &str) -> Option<MessageRecord> {
        let mut records = self
            .ledger
            .messages(&self.account.name)
            .await
            .expect("ledger");
        records.remove(uid)
    }

    /// Asserts each uid was accepted exactly once by the receiver.
    pub fn assert_delivered_once(&self, uids: &[&str]) {
        for uid in uids {
            assert_eq!(self.accepted_count(uid), 1, "deliveries of {uid}");
        }
    }
}

/// The account of a rig: plain TCP on loopback both ways, USER/PASS unless
/// `extra` says otherwise.
fn account(
    pop3: &Pop3Server,
    smtp: &SmtpReceiver,
    user: &str,
    password: &str,
    extra: &str,
    dir: &Path,
) -> Account {
    let toml = format!(
        r#"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
timeout = "5s"

[[account]]
name = "alice"
host = "127.0.0.1"
port = {pop3_port}
tls = "none"
username = "{user}"
password = "{password}"
deliver_to = ["alice@example.org"]
timeout = "{timeout}s"
{extra}
"#,
        smtp_port = smtp.port(),
        pop3_port = pop3.port(),
        timeout = POP3_TIMEOUT.as_secs(),
    );
    let config = Config::from_toml(&toml, &dir.join("popferry.toml")).expect("test config");
    config.accounts.into_iter().next().expect("one account")
}

/// A small message naming its uid, with one body line that needs
/// dot-stuffing so every RETR and DATA exercises it. `headers` is one extra
/// header line without its CRLF, or empty.
pub fn message(uid: &str, headers: &str) -> Vec<u8> {
    let headers = if headers.is_empty() {
        String::new()
    } else {
        format!("{headers}\r\n")
    };
    format!(
        "Return-Path: <sender@example.net>\r\nFrom: sender@example.net\r\n\
         To: alice@example.org\r\nSubject: message {uid}\r\nX-Test-Uid: {uid}\r\n\
         {headers}\r\nBody of {uid}.\r\n.a line starting with a dot\r\n"
    )
    .into_bytes()
}

/// The uid a delivered message was made for, from its `X-Test-Uid` header.
pub fn uid_of(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.lines()
        .find_map(|line| line.strip_prefix("X-Test-Uid: "))
        .map(|uid| uid.trim().to_owned())
}
