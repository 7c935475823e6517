//! A poll's world for the per-recipient tests: the scriptable POP3 server,
//! an [`RcptRelay`], a ledger and an account whose `deliver_to` (and any
//! other account keys) the test chooses.

use popferry::config::{Account, Config};
use popferry::deliver::Relay;
use popferry::ledger::{Ledger, MessageState, PollReport, RecipientState};
use popferry::poll::{poll, PollError, PollOptions};

use super::{Behaviour, RcptRelay, Rule};
use crate::pop3_server::{Options, Pop3Server};

pub struct World {
    pub pop3: Pop3Server,
    pub relay: RcptRelay,
    pub ledger: Ledger,
    pub account: Account,
    pub smtp: Relay,
    _dir: tempfile::TempDir,
}

impl World {
    /// One connection at a time: the connection counts these tests assert
    /// are those of reuse and refusal, not of parallel delivery
    /// (`tests/parallel_delivery.rs`).
    pub async fn start(behaviour: Behaviour, deliver_to: &[&str]) -> World {
        let relay = RcptRelay::start(behaviour).await;
        let smtp = format!(
            "host = \"127.0.0.1\"\nport = {}\nmax_connections = 1",
            relay.port()
        );
        World::with(relay, &smtp, behaviour, deliver_to, "").await
    }

    /// `address` is the `[smtp]` table's host/port or socket lines;
    /// `extra` goes at the end of the `[[account]]` table.
    pub async fn with(
        relay: RcptRelay,
        address: &str,
        behaviour: Behaviour,
        deliver_to: &[&str],
        extra: &str,
    ) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = Options::default();
        let user = options.user.clone();
        let password = options.password.clone();
        let pop3 = Pop3Server::start(options).await;
        let protocol = if behaviour.lmtp { "lmtp" } else { "smtp" };
        let recipients: Vec<String> = deliver_to.iter().map(|a| format!("{a:?}")).collect();
        let toml = format!(
            r#"
[smtp]
{address}
protocol = "{protocol}"
tls = "none"
timeout = "5s"

[[account]]
name = "alice"
host = "127.0.0.1"
port = {pop3_port}
tls = "none"
username = "{user}"
password = "{password}"
deliver_to = [{recipients}]
timeout = "5s"
{extra}
"#,
            pop3_port = pop3.port(),
            recipients = recipients.join(", "),
        );
        let config = Config::from_toml(&toml, &dir.path().join("popferry.toml")).expect("config");
        let account = config.accounts.into_iter().next().expect("one account");
        let smtp = Relay::new(&account.smtp, "test").expect("relay");
        let ledger = Ledger::open(&dir.path().join("ledger.db")).expect("ledger");
        World {
            pop3,
            relay,
            ledger,
            account,
            smtp,
            _dir: dir,
        }
    }

    pub async fn poll(&self) -> Result<PollReport, PollError> {
        self.poll_with(&PollOptions::default()).await
    }

    pub async fn poll_with(&self, options: &PollOptions) -> Result<PollReport, PollError> {
        poll(&self.account, &self.ledger, &self.smtp, options).await
    }

    pub async fn state(&self, uid: &str) -> Option<MessageState> {
        let records = self.ledger.messages("alice").await.expect("ledger");
        records.get(uid).map(|r| r.state)
    }

    pub async fn refusals(&self) -> Vec<(String, RecipientState, String)> {
        let refused = self.ledger.refused_recipients().await.expect("ledger");
        refused
            .into_iter()
            .map(|r| (r.address, r.state, r.reply))
            .collect()
    }
}

/// An LMTP relay with `behaviour` answers each accepted recipient after
/// the data: one has it, one refuses for good (552), one for now (452) and
/// gets it, alone, at the next poll. The same for DATA and for BDAT LAST.
pub async fn lmtp_replies_per_recipient(behaviour: Behaviour) -> World {
    const OK: &str = "ok@example.org";
    const OTHER: &str = "other@example.org";
    const LATER: &str = "later@example.org";
    let behaviour = Behaviour {
        lmtp: true,
        ..behaviour
    };
    let world = World::start(behaviour, &[OK, OTHER, LATER]).await;
    (world.relay).set(OTHER, Rule::AfterData("552 5.2.2 over quota".into()));
    (world.relay).set(
        LATER,
        Rule::AfterData("452 4.2.2 over quota for now".into()),
    );
    world.pop3.add("m1", &crate::harness::message("m1", ""));
    world.poll().await.expect("poll");
    assert_eq!(world.relay.received(OK), 1);
    assert_eq!(world.state("m1").await, Some(MessageState::Partial));
    world.relay.clear(LATER);
    world.poll().await.expect("second poll");
    assert_eq!(world.relay.received(OK), 1, "no second copy");
    assert_eq!(world.relay.received(LATER), 1);
    assert_eq!(world.relay.received(OTHER), 0);
    assert!(world.pop3.uids().is_empty());
    let refusals = world.refusals().await;
    assert!(
        refusals.iter().any(|(a, s, r)| a == OTHER
            && *s == RecipientState::Rejected
            && r.contains("552 5.2.2 over quota")),
        "{refusals:?}"
    );
    world
}
