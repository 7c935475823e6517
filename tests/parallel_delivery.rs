//! `[smtp] max_connections`: a poll hands messages to that many SMTP
//! transactions at once, the limit holds across accounts sharing a relay,
//! and a relay that refuses connections beyond its own limit gets fewer,
//! not a failed poll. Against the loopback receiver, which takes a while
//! per message (as a relay 20 ms away does) so that transactions overlap,
//! and counts the connections it has open.

mod harness;
mod pop3_server;
mod smtp_receiver;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use harness::{message, uid_of, within};
use pop3_server::{Extensions, Options, Pop3Server};
use popferry::config::{Account, Config};
use popferry::deliver::Relay;
use popferry::ledger::{Ledger, MessageState};
use popferry::poll::{poll, Events, PollError, PollEvents, PollOptions};
use smtp_receiver::{Greeting, SmtpReceiver};

const DELAY: Duration = Duration::from_millis(25);

/// One relay, and one POP3 server and account per name, all sharing the
/// relay's `[smtp]` table.
struct World {
    smtp: SmtpReceiver,
    servers: Vec<Pop3Server>,
    accounts: Vec<Account>,
    relay: Relay,
    ledger: Ledger,
    _dir: tempfile::TempDir,
}

impl World {
    async fn start(accounts: &[&str], max_connections: usize) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let smtp = SmtpReceiver::start().await;
        smtp.set_delay(DELAY);
        let mut servers = Vec::new();
        let mut toml = format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout = \"5s\"\n\
             max_connections = {max_connections}\n",
            smtp.port()
        );
        for name in accounts {
            let options = Options {
                extensions: Extensions {
                    pipelining: true,
                    ..Extensions::default()
                },
                ..Options::default()
            };
            let server = Pop3Server::start(options).await;
            toml += &format!(
                "\n[[account]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {}\n\
                 tls = \"none\"\nusername = \"alice\"\npassword = \"secret\"\n\
                 deliver_to = [\"{name}@example.org\"]\ntimeout = \"5s\"\n",
                server.port()
            );
            servers.push(server);
        }
        let config = Config::from_toml(&toml, &dir.path().join("popferry.toml")).expect("config");
        let relay = Relay::new(&config.accounts[0].smtp, "test").expect("relay");
        let ledger = Ledger::open(&dir.path().join("ledger.db")).expect("ledger");
        World {
            smtp,
            servers,
            accounts: config.accounts,
            relay,
            ledger,
            _dir: dir,
        }
    }

    /// `count` new messages on server `n`, named after its account.
    fn fill(&self, n: usize, first: usize, count: usize) -> Vec<String> {
        let name = &self.accounts[n].name;
        let uids: Vec<String> = (first..first + count)
            .map(|i| format!("{name}-{i}"))
            .collect();
        for uid in &uids {
            self.servers[n].add(uid, &message(uid, ""));
        }
        uids
    }

    async fn poll(&self, n: usize, options: &PollOptions) -> Result<u64, PollError> {
        let report = poll(&self.accounts[n], &self.ledger, &self.relay, options).await?;
        Ok(report.delivered)
    }

    /// Every uid was accepted exactly once, is off its server and is on
    /// record as delivered.
    async fn assert_moved_once(&self, n: usize, uids: &[String]) {
        let accepted: Vec<String> = (self.smtp.accepted().iter())
            .filter_map(|offer| uid_of(&offer.data))
            .collect();
        for uid in uids {
            let times = accepted.iter().filter(|a| *a == uid).count();
            assert_eq!(times, 1, "deliveries of {uid}");
        }
        assert!(self.servers[n].uids().is_empty(), "all deleted");
        let records = (self.ledger.messages(&self.accounts[n].name).await).expect("ledger");
        for uid in uids {
            let state = records.get(uid).map(|r| r.state);
            assert!(
                matches!(state, Some(MessageState::Delivered | MessageState::Deleted)),
                "{uid}: {state:?}"
            );
        }
    }
}

/// Counts the connections the poll says carry a message, as the
/// `popferry_smtp_connections_in_use` gauge does.
#[derive(Debug, Default)]
struct InUse {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl PollEvents for InUse {
    fn relay_busy(&self, busy: bool) {
        if busy {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.max.fetch_max(now, Ordering::SeqCst);
        } else {
            self.now.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn messages_go_over_max_connections_at_once_and_never_more() {
    within(async {
        let world = World::start(&["alice"], 4).await;
        let uids = world.fill(0, 0, 40);
        let in_use = Arc::new(InUse::default());
        let options = PollOptions {
            events: Events(in_use.clone()),
            ..PollOptions::default()
        };
        assert_eq!(world.poll(0, &options).await.expect("poll"), 40);
        assert_eq!(world.smtp.max_open(), 4, "four connections, all used");
        assert_eq!(in_use.max.load(Ordering::SeqCst), 4, "busy at once");
        assert_eq!(in_use.now.load(Ordering::SeqCst), 0, "all handed back");
        world.assert_moved_once(0, &uids).await;
    })
    .await;
}

#[tokio::test]
async fn two_accounts_polling_at_once_share_the_relays_limit() {
    within(async {
        let world = World::start(&["alice", "bob"], 3).await;
        let alice = world.fill(0, 0, 24);
        let bob = world.fill(1, 0, 24);
        let options = PollOptions::default();
        let (a, b) = tokio::join!(world.poll(0, &options), world.poll(1, &options));
        assert_eq!((a.expect("alice"), b.expect("bob")), (24, 24));
        assert_eq!(world.smtp.max_open(), 3, "three for both accounts together");
        world.assert_moved_once(0, &alice).await;
        world.assert_moved_once(1, &bob).await;
    })
    .await;
}

#[tokio::test]
async fn a_relay_refusing_beyond_two_connections_gets_everything_once_and_the_poll_succeeds() {
    within(async {
        for refusal in [Greeting::TooMany, Greeting::Close] {
            let world = World::start(&["alice"], 8).await;
            world.smtp.refuse_beyond(2, refusal);
            let first = world.fill(0, 0, 30);
            let options = PollOptions::default();
            let delivered = world.poll(0, &options).await;
            assert_eq!(delivered.expect("the poll succeeds"), 30, "{refusal:?}");
            world.assert_moved_once(0, &first).await;
            let refused = world.smtp.refused();
            assert!(
                (1..=6).contains(&refused),
                "{refusal:?}: at most one refusal per connection beyond 2: {refused}"
            );
            assert_eq!(world.smtp.max_open(), 2);

            // The next poll remembers the relay's limit and does not knock.
            let second = world.fill(0, 30, 30);
            assert_eq!(world.poll(0, &options).await.expect("again"), 30);
            world.assert_moved_once(0, &second).await;
            assert_eq!(world.smtp.refused(), refused, "{refusal:?}: no new refusal");
        }
    })
    .await;
}

#[tokio::test]
async fn a_relay_refusing_every_connection_fails_the_poll_and_records_nothing() {
    within(async {
        let world = World::start(&["alice"], 4).await;
        world.smtp.refuse_beyond(0, Greeting::TooMany);
        let uids = world.fill(0, 0, 5);
        let error = world.poll(0, &PollOptions::default()).await.unwrap_err();
        assert!(matches!(error, PollError::Relay { .. }), "{error:?}");
        assert!(error.to_string().contains("421"), "{error}");
        assert!(world.smtp.offers().is_empty());
        assert_eq!(world.servers[0].uids().len(), uids.len(), "all still there");
        let records = world.ledger.messages("alice").await.expect("ledger");
        assert!(records.is_empty(), "nothing recorded: {records:?}");
    })
    .await;
}
