//! `popferry run` keeps connections open between polls on servers that
//! offer SLEE-WAKE, and uses UID-PARAM and DELI. These tests count what
//! the test server sees: TCP accepts, logins, commands.

mod harness;
mod pop3_server;
mod smtp_receiver;

use harness::{within, Rig};
use pop3_server::{Extensions, Fault, Options};
use popferry::config::Config;
use popferry::deliver::Relay;
use popferry::ledger::{Ledger, MessageState};
use popferry::poll::PollOptions;
use popferry::scheduler::interval::Pace;
use popferry::scheduler::Shared;

fn with_extensions(extensions: Extensions) -> Options {
    Options {
        extensions,
        ..Options::default()
    }
}

async fn pooled_rig(extra: &str) -> Rig {
    Rig::with_server(with_extensions(Extensions::all()), extra).await
}

#[tokio::test]
async fn ten_idle_polls_use_one_connection_and_one_login() {
    within(async {
        let rig = pooled_rig("").await;
        rig.add("m1", "");
        let daemon = rig.daemon();
        for round in 1..=10 {
            let report = rig.pooled_poll(&daemon).await.expect("poll");
            let expected = u64::from(round == 1);
            assert_eq!(report.delivered, expected, "round {round}");
        }
        assert_eq!(rig.pop3.accepts(), 1, "TCP connections");
        assert_eq!(rig.pop3.logins(), 1, "logins");
        assert_eq!(rig.pop3.commands("WAKE"), 9);
        assert_eq!(rig.pop3.commands("SLEE"), 10);
        assert_eq!(
            rig.pop3.commands("UIDL"),
            1,
            "[ACTIVITY/NONE] after a settled poll skips the listing"
        );
        assert_eq!(rig.pop3.commands("QUIT"), 0);
        assert!(rig.pop3.maildrop().is_empty());
        rig.assert_delivered_once(&["m1"]);
    })
    .await;
}

#[tokio::test]
async fn mail_arriving_between_polls_is_fetched_after_wake() {
    within(async {
        let rig = pooled_rig("").await;
        let daemon = rig.daemon();
        rig.pooled_poll(&daemon).await.expect("empty poll");
        rig.add("late", "");
        let report = rig.pooled_poll(&daemon).await.expect("poll after WAKE");
        assert_eq!(report.delivered, 1);
        assert_eq!(rig.pop3.accepts(), 1, "the parked connection was reused");
        assert!(rig.pop3.maildrop().is_empty(), "deleted by DELI");
        assert_eq!(rig.pop3.commands("DELI"), 1);
        assert_eq!(rig.pop3.commands("DELE"), 0);
        let record = rig.record("late").await.expect("recorded");
        assert_eq!(record.state, MessageState::Deleted);
        rig.assert_delivered_once(&["late"]);
    })
    .await;
}

#[tokio::test]
async fn a_server_closing_the_parked_connection_means_a_fresh_login() {
    within(async {
        let rig = pooled_rig("").await;
        rig.add("m1", "");
        let daemon = rig.daemon();
        rig.pooled_poll(&daemon).await.expect("first poll");
        assert_eq!(rig.pop3.close_sleeping(), 1);
        rig.add("m2", "");
        let report = rig.pooled_poll(&daemon).await.expect("poll after close");
        assert_eq!(report.delivered, 1);
        assert_eq!((rig.pop3.accepts(), rig.pop3.logins()), (2, 2));
        rig.assert_delivered_once(&["m1", "m2"]);
        assert_eq!(rig.smtp.offers().len(), 2, "nothing offered twice");
        assert!(rig.pop3.maildrop().is_empty());
    })
    .await;
}

#[tokio::test]
async fn refused_wake_falls_back_to_a_fresh_login() {
    for code in ["IN-USE", "AUTH", "SYS/TEMP"] {
        within(async {
            let rig = pooled_rig("").await;
            let daemon = rig.daemon();
            rig.pooled_poll(&daemon).await.expect("first poll");
            rig.pop3.set_fault(Some(Fault::RefuseWake { code }));
            rig.add("m1", "");
            let report = rig.pooled_poll(&daemon).await.expect("poll after refusal");
            assert_eq!(rig.pop3.faults_fired(), 1, "{code}: WAKE was refused");
            assert_eq!(report.delivered, 1, "{code}");
            assert_eq!(rig.pop3.logins(), 2, "{code}: logged in afresh");
            rig.assert_delivered_once(&["m1"]);
            let third = rig.pooled_poll(&daemon).await.expect("third poll");
            assert_eq!(third.delivered, 0, "{code}");
            assert_eq!(rig.pop3.logins(), 2, "{code}: the new session was parked");
        })
        .await;
    }
}

#[tokio::test]
async fn deli_leaves_nothing_to_redo_after_a_lost_quit_reply() {
    within(async {
        let without_sleep = Extensions {
            sleep_wake: false,
            ..Extensions::all()
        };
        let rig = Rig::with_server(with_extensions(without_sleep), "").await;
        for uid in ["m1", "m2", "m3"] {
            rig.add(uid, "");
        }
        rig.pop3.set_fault(Some(Fault::LostQuitReply));
        assert!(
            rig.poll().await.is_err(),
            "a lost QUIT reply fails the poll"
        );
        assert!(rig.pop3.maildrop().is_empty());
        for uid in ["m1", "m2", "m3"] {
            let record = rig.record(uid).await.expect("recorded");
            assert_eq!(
                record.state,
                MessageState::Deleted,
                "{uid}: DELI's +OK is final, whatever QUIT does"
            );
        }
        let second = rig.poll().await.expect("second poll");
        assert_eq!((second.listed, second.delivered, second.deleted), (0, 0, 0));
        assert_eq!(rig.pop3.commands("DELE"), 0);
        assert_eq!(rig.pop3.commands("DELI"), 3);
        rig.assert_delivered_once(&["m1", "m2", "m3"]);
    })
    .await;
}

#[tokio::test]
async fn a_lost_slee_reply_redelivers_nothing() {
    within(async {
        let rig = pooled_rig("deli = false").await;
        for uid in ["m1", "m2"] {
            rig.add(uid, "");
        }
        let daemon = rig.daemon();
        rig.pop3.set_fault(Some(Fault::LostSleeReply));
        assert!(rig.pooled_poll(&daemon).await.is_err());
        assert_eq!(rig.pop3.commands("DELE"), 2, "deli = false uses DELE");
        assert!(rig.pop3.maildrop().is_empty(), "SLEE committed");
        rig.add("m3", "");
        let report = rig.pooled_poll(&daemon).await.expect("next poll");
        assert_eq!(report.delivered, 1);
        assert_eq!(rig.pop3.accepts(), 2);
        rig.assert_delivered_once(&["m1", "m2", "m3"]);
    })
    .await;
}

#[tokio::test]
async fn a_link_dropped_after_slee_is_replaced_on_the_next_poll() {
    within(async {
        let rig = pooled_rig("").await;
        rig.add("m1", "");
        let daemon = rig.daemon();
        rig.pop3.set_fault(Some(Fault::DropAfterSlee));
        rig.pooled_poll(&daemon).await.expect("SLEE +OK");
        rig.add("m2", "");
        let report = rig.pooled_poll(&daemon).await.expect("next poll");
        assert_eq!(report.delivered, 1);
        assert_eq!(rig.pop3.accepts(), 2);
        rig.assert_delivered_once(&["m1", "m2"]);
    })
    .await;
}

#[tokio::test]
async fn sleeping_draft_name_is_understood() {
    within(async {
        let sleeping = Extensions {
            sleep_wake: false,
            sleeping: true,
            ..Extensions::all()
        };
        let rig = Rig::with_server(with_extensions(sleeping), "").await;
        let daemon = rig.daemon();
        for _ in 0..3 {
            rig.pooled_poll(&daemon).await.expect("poll");
        }
        assert_eq!(rig.pop3.accepts(), 1);
        assert_eq!(rig.pop3.commands("WAKE"), 2);
    })
    .await;
}

/// Three accounts on one server that allows two connections, polled in
/// turn: the pool keeps the session of the account due soonest (every
/// 10 s) and logs out the one due last. Logging out the longest-idle
/// session instead would log out exactly the one the next poll wants, so
/// every poll would be a fresh login and none a WAKE.
#[tokio::test]
async fn with_more_accounts_than_slots_the_session_due_soonest_stays_parked() {
    within(async {
        let dir = tempfile::tempdir().expect("temp dir");
        // Without QAUT, so that an evicted session is logged out, not
        // handed over (`tests/qaut_shares_connections.rs`).
        let without_qaut = Extensions {
            qaut: false,
            ..Extensions::all()
        };
        let options = Options {
            aliases: vec!["bob".into(), "carol".into()],
            ..with_extensions(without_qaut)
        };
        let password = options.password.clone();
        let pop3 = pop3_server::Pop3Server::start(options).await;
        let smtp = smtp_receiver::SmtpReceiver::start().await;
        let mut toml = format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             [daemon]\nmax_connections_per_server = 2\n",
            smtp.port()
        );
        // Intervals far enough apart that their jitter cannot reorder them.
        for (user, interval) in [("alice", 10), ("bob", 20), ("carol", 30)] {
            toml += &format!(
                "[[account]]\nname = \"{user}\"\nhost = \"127.0.0.1\"\nport = {}\n\
                 tls = \"none\"\nusername = \"{user}\"\npassword = \"{password}\"\n\
                 deliver_to = [\"{user}@example.org\"]\npoll_interval = \"{interval}s\"\n",
                pop3.port()
            );
        }
        let config = Config::from_toml(&toml, &dir.path().join("popferry.toml")).expect("config");
        let ledger = Ledger::open(&dir.path().join("ledger.db")).expect("ledger");
        let shared = Shared::new(ledger, config.daemon);
        let relay = Relay::new(&config.accounts[0].smtp, "test").expect("relay");
        let rounds = 4;
        for _ in 0..rounds {
            for account in &config.accounts {
                let mut pace = Pace::default();
                let polled = shared
                    .poll(account, &relay, &PollOptions::default(), &mut pace)
                    .await;
                polled.result.expect("poll");
                assert!(pop3.open_connections() <= 2, "the cap holds");
            }
        }
        assert_eq!(
            pop3.commands("WAKE"),
            rounds - 1,
            "alice's session was woken every round after the first"
        );
        assert_eq!(pop3.logins(), 1 + 2 * rounds, "bob and carol take turns");
    })
    .await;
}
