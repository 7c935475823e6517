//! On a server that offers QAUT, `popferry run` logs a finished account
//! out with QAUT and the next account of that server logs in on the same
//! connection: many accounts share `max_connections_per_server` slots
//! without a TCP connection per poll. QAUT's `+OK` commits the deletions as
//! QUIT's does. The test server counts accepts, logins and commands.

mod harness;
mod pop3_server;
mod smtp_receiver;
mod support;
mod tls_peer;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use harness::{message, uid_of, within, Rig};
use pop3_server::{Extensions, Fault, Options, Pop3Server, TlsFront};
use popferry::config::{Account, Config};
use popferry::deliver::Relay;
use popferry::ledger::{Ledger, MessageState};
use popferry::poll::{PollError, PollOptions};
use popferry::scheduler::interval::Pace;
use popferry::scheduler::Shared;
use smtp_receiver::SmtpReceiver;
use tls_peer::{acceptor, Leaf};

/// QAUT without SLEE-WAKE: every poll ends with QAUT.
fn qaut_only() -> Extensions {
    Extensions {
        qaut: true,
        uid_param: true,
        pipelining: true,
        ..Extensions::default()
    }
}

/// Many accounts, each its own user and mailbox, on one test server.
struct Fleet {
    pop3: Pop3Server,
    smtp: SmtpReceiver,
    accounts: Vec<Account>,
    shared: Arc<Shared>,
    ledger: Ledger,
    relay: Relay,
    /// The implicit-TLS front the accounts connect to, if `tls`.
    front: Option<TlsFront>,
    _dir: tempfile::TempDir,
}

impl Fleet {
    /// `users` accounts; the ones in `wrong` send a wrong password. With
    /// `tls`, they connect with implicit TLS through a [`TlsFront`].
    async fn start(
        extensions: Extensions,
        users: usize,
        slots: usize,
        wrong: &[usize],
        tls: bool,
    ) -> Fleet {
        let names: Vec<String> = (0..users).map(|i| format!("u{i:03}")).collect();
        let options = Options {
            user: names[0].clone(),
            aliases: names[1..].to_vec(),
            extensions,
            ..Options::default()
        };
        let password = options.password.clone();
        let pop3 = Pop3Server::start(options).await;
        let smtp = SmtpReceiver::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let (front, link) = if tls {
            let leaf = Leaf::self_signed(&["localhost"]);
            let front = TlsFront::start(&pop3, acceptor(&leaf, None)).await;
            let link = format!(
                "port = {}\ntls = \"implicit\"\ntls_fingerprint = \"{}\"\n",
                front.port(),
                leaf.fingerprint()
            );
            (Some(front), link)
        } else {
            (None, format!("port = {}\ntls = \"none\"\n", pop3.port()))
        };
        // Logins paced at the default 10 a second would make 200 of them
        // take 20 s; these tests are about the connections they share.
        let mut toml = format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             [daemon]\nmax_connections_per_server = {slots}\nmax_logins_per_second = 1000\n",
            smtp.port()
        );
        for (i, user) in names.iter().enumerate() {
            let password = if wrong.contains(&i) {
                "wrong"
            } else {
                &password
            };
            toml += &format!(
                "[[account]]\nname = \"{user}\"\nhost = \"127.0.0.1\"\n{link}\
                 username = \"{user}\"\npassword = \"{password}\"\n\
                 deliver_to = [\"{user}@example.org\"]\ndeli = false\n"
            );
        }
        let config = Config::from_toml(&toml, &dir.path().join("popferry.toml")).expect("config");
        let ledger = Ledger::open(&dir.path().join("ledger.db")).expect("ledger");
        let relay = Relay::new(&config.accounts[0].smtp, "test").expect("relay");
        Fleet {
            pop3,
            smtp,
            shared: Arc::new(Shared::new(ledger.clone(), config.daemon)),
            ledger,
            accounts: config.accounts,
            relay,
            front,
            _dir: dir,
        }
    }

    async fn poll(&self, index: usize) -> Result<(), PollError> {
        let mut pace = Pace::default();
        let polled = (self.shared)
            .poll(
                &self.accounts[index],
                &self.relay,
                &PollOptions::default(),
                &mut pace,
            )
            .await;
        polled.result.map(drop)
    }

    /// Every account polls once, all at the same time.
    async fn poll_all_at_once(&self) {
        let mut polls = tokio::task::JoinSet::new();
        for account in self.accounts.clone() {
            let (shared, relay) = (Arc::clone(&self.shared), self.relay.clone());
            polls.spawn(async move {
                let mut pace = Pace::default();
                let polled = (shared)
                    .poll(&account, &relay, &PollOptions::default(), &mut pace)
                    .await;
                (account.name, polled.result)
            });
        }
        for (name, result) in polls.join_all().await {
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    /// How often each uid reached the relay.
    fn deliveries(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for offer in self.smtp.accepted() {
            let uid = uid_of(&offer.data).expect("test message");
            *counts.entry(uid).or_default() += 1;
        }
        counts
    }
}

async fn two_hundred_accounts_on_eight_slots(extensions: Extensions, tls: bool) -> Fleet {
    let fleet = Fleet::start(extensions, 200, 8, &[], tls).await;
    for account in &fleet.accounts {
        for n in 0..2 {
            let uid = format!("{}-{n}", account.username);
            fleet
                .pop3
                .add_for(&account.username, &uid, &message(&uid, ""));
        }
    }
    fleet.poll_all_at_once().await;
    // A login on a connection another account left is a poll on record
    // like any login, not an empty pooled poll counted in memory.
    let status = fleet.ledger.status().await.expect("status");
    assert_eq!(status.len(), 200);
    for account in &status {
        let last = account.last_poll.as_ref().expect("on record");
        assert_eq!(
            (last.delivered, last.empty_polls),
            (2, 0),
            "{}",
            account.account
        );
    }
    fleet.poll_all_at_once().await;
    let deliveries = fleet.deliveries();
    assert_eq!(deliveries.len(), 400, "every message delivered");
    assert!(deliveries.values().all(|&n| n == 1), "none twice");
    for account in &fleet.accounts {
        assert!(fleet.pop3.maildrop_of(&account.username).is_empty());
    }
    assert!(fleet.pop3.open_connections() <= 8, "the cap holds");
    fleet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_accounts_share_eight_connections_through_qaut() {
    within(async {
        let fleet = two_hundred_accounts_on_eight_slots(qaut_only(), false).await;
        assert_eq!(fleet.pop3.accepts(), 8, "TCP connections for 400 polls");
        assert_eq!(fleet.pop3.logins(), 400, "one login a poll");
        assert_eq!(fleet.pop3.commands("QAUT"), 400);
        assert_eq!(fleet.pop3.commands("QUIT"), 0);
    })
    .await;
}

/// Over TLS the handed-on connection keeps its TLS session too: eight
/// handshakes for the 400 polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_two_hundred_accounts_make_eight_handshakes() {
    within(async {
        let fleet = two_hundred_accounts_on_eight_slots(qaut_only(), true).await;
        let front = fleet.front.as_ref().expect("TLS front");
        assert_eq!(front.handshakes(), 8, "TLS handshakes for 400 polls");
        assert_eq!(fleet.pop3.accepts(), 8);
        assert_eq!(fleet.pop3.logins(), 400);
    })
    .await;
}

/// With SLEE-WAKE as well, each session sleeps as its account's; a login
/// that needs its slot wakes it, logs it out with QAUT and logs in there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleeping_sessions_hand_their_connection_over_when_slots_run_out() {
    within(async {
        let fleet = two_hundred_accounts_on_eight_slots(Extensions::all(), false).await;
        assert_eq!(fleet.pop3.accepts(), 8, "TCP connections for 400 polls");
        let woken_without_login = 400 - fleet.pop3.logins();
        assert!(woken_without_login <= 8, "{woken_without_login}");
        assert_eq!(
            fleet.pop3.commands("QAUT") + woken_without_login + 8,
            400,
            "every other poll logged in on a handed-over connection"
        );
        assert_eq!(fleet.pop3.commands("QUIT"), 0);
    })
    .await;
}

#[tokio::test]
async fn qaut_ok_commits_the_deletions() {
    within(async {
        let options = Options {
            extensions: qaut_only(),
            ..Options::default()
        };
        let rig = Rig::with_server(options, "deli = false").await;
        rig.add("m1", "");
        let daemon = rig.daemon();
        let report = rig.pooled_poll(&daemon).await.expect("poll");
        assert_eq!((report.delivered, report.deleted), (1, 1));
        assert_eq!(rig.pop3.commands("DELE"), 1);
        assert_eq!(rig.pop3.commands("QAUT"), 1);
        assert!(rig.pop3.maildrop().is_empty(), "QAUT committed the DELE");
        let record = rig.record("m1").await.expect("recorded");
        assert_eq!(
            record.state,
            MessageState::Deleted,
            "the ledger took QAUT's +OK"
        );
        assert_eq!(rig.pop3.open_connections(), 1, "kept, logged out");
        rig.add("m2", "");
        rig.pooled_poll(&daemon).await.expect("second poll");
        assert_eq!((rig.pop3.accepts(), rig.pop3.logins()), (1, 2));
        rig.assert_delivered_once(&["m1", "m2"]);
    })
    .await;
}

/// A QAUT whose reply never comes is a lost QUIT reply: the next poll
/// deletes what is left without delivering it again.
#[tokio::test]
async fn a_lost_qaut_reply_redelivers_nothing_and_deletes_next_time() {
    for (fault, committed) in [
        (Fault::LostQautReply, true),
        (Fault::CloseAfter { verb: "QAUT" }, false),
    ] {
        within(async {
            let options = Options {
                extensions: qaut_only(),
                ..Options::default()
            };
            let rig = Rig::with_server(options, "deli = false").await;
            rig.add("m1", "");
            rig.pop3.set_fault(Some(fault.clone()));
            let daemon = rig.daemon();
            assert!(rig.pooled_poll(&daemon).await.is_err(), "{fault:?}");
            assert_eq!(rig.pop3.maildrop().is_empty(), committed, "{fault:?}");
            let record = rig.record("m1").await.expect("recorded");
            assert_eq!(
                record.state,
                MessageState::Delivered,
                "{fault:?}: unconfirmed"
            );
            let report = rig.pooled_poll(&daemon).await.expect("next poll");
            assert_eq!(report.delivered, 0, "{fault:?}");
            assert!(rig.pop3.maildrop().is_empty(), "{fault:?}");
            assert_eq!(rig.pop3.accepts(), 2, "{fault:?}: a fresh connection");
            assert_eq!(rig.offered_count("m1"), 1, "{fault:?}");
        })
        .await;
    }
}

/// A wrong password on a connection another account handed over fails
/// that account's poll as on a fresh one, and the connection is closed
/// with QUIT rather than handed on: a server may hold failed logins
/// against a connection, and the next account must not inherit that.
#[tokio::test]
async fn a_wrong_password_on_a_reused_connection_closes_it_and_others_go_on() {
    within(async {
        let fleet = Fleet::start(qaut_only(), 2, 1, &[1], false).await;
        fleet.pop3.add_for("u000", "a1", &message("a1", ""));
        fleet.poll(0).await.expect("the good account");
        assert_eq!(fleet.pop3.open_connections(), 1, "parked after QAUT");
        let refused = fleet.poll(1).await.expect_err("wrong password");
        assert!(refused.needs_a_person(), "{refused}");
        assert_eq!(fleet.pop3.accepts(), 1, "the reused connection was tried");
        assert_eq!(fleet.pop3.commands("QUIT"), 1, "and closed");
        for _ in 0..100 {
            if fleet.pop3.open_connections() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(fleet.pop3.open_connections(), 0);
        fleet.pop3.add_for("u000", "a2", &message("a2", ""));
        fleet.poll(0).await.expect("the good account again");
        assert_eq!(fleet.pop3.accepts(), 2);
        assert_eq!(fleet.deliveries().len(), 2);
        assert!(fleet.pop3.maildrop_of("u000").is_empty());
    })
    .await;
}
