//! The test POP3 server's CORE and REFR (spec 3.6), its faults for CORE and
//! QAUT, and the per-user mailboxes that put many accounts on one server,
//! over raw TCP so the exact reply lines are what is under test.

mod pop3_server;

use std::future::Future;
use std::time::Duration;

use pop3_server::{Extensions, Fault, Options, Pop3Server, Wire};

const A: &[u8] = b"Subject: a\r\n\r\nfirst\r\n";
const B: &[u8] = b"Subject: b\r\n\r\nsecond\r\n";

async fn within<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), test)
        .await
        .expect("test did not finish within its time limit")
}

async fn server(extensions: Extensions, aliases: &[&str]) -> Pop3Server {
    Pop3Server::start(Options {
        extensions,
        aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        ..Options::default()
    })
    .await
}

fn core_and_refr() -> Extensions {
    Extensions {
        core: true,
        refr: true,
        ..Extensions::default()
    }
}

#[tokio::test]
async fn core_commits_and_reports_activity_since_its_last_snapshot() {
    within(async {
        let server = server(core_and_refr(), &[]).await;
        server.add("a", A);
        let mut wire = Wire::connect(&server).await;
        assert_eq!(wire.cmd("CORE").await, "-ERR Authenticate first.");
        assert_eq!(wire.cmd("USER alice").await.get(..3), Some("+OK"));
        assert_eq!(wire.cmd("PASS secret").await, "+OK Welcome.");
        assert_eq!(wire.cmd("DELE 1").await.get(..3), Some("+OK"));
        assert_eq!(
            wire.cmd("CORE").await,
            "+OK [ACTIVITY/NONE] Refreshed. Deleted 1 messages."
        );
        assert!(server.uids().is_empty(), "committed like QUIT");
        server.add("b", B);
        assert_eq!(
            wire.cmd("REFR").await,
            "+OK [ACTIVITY/NEW] Refreshed. Deleted 0 messages."
        );
        assert_eq!(wire.cmd("STAT").await, format!("+OK 1 {}", B.len()));
        assert_eq!(server.commands("CORE") + server.commands("REFR"), 3);
    })
    .await;
}

#[tokio::test]
async fn core_is_unknown_unless_enabled_and_refused_asleep() {
    within(async {
        let plain = server(Extensions::all(), &[]).await;
        let mut wire = Wire::login(&plain).await;
        assert_eq!(wire.cmd("CORE").await, "-ERR Unknown command: CORE");
        assert_eq!(wire.cmd("SLEE").await.get(..3), Some("+OK"));
        let both = server(
            Extensions {
                sleep_wake: true,
                ..core_and_refr()
            },
            &[],
        )
        .await;
        let mut wire = Wire::login(&both).await;
        assert_eq!(wire.cmd("SLEE").await.get(..3), Some("+OK"));
        assert!(wire
            .cmd("CORE")
            .await
            .starts_with("-ERR This command is not allowed"));
    })
    .await;
}

#[tokio::test]
async fn core_and_qaut_faults_act_once() {
    within(async {
        let server = server(
            Extensions {
                qaut: true,
                ..core_and_refr()
            },
            &[],
        )
        .await;
        server.add("a", A);
        server.set_fault(Some(Fault::RefuseCore));
        let mut wire = Wire::login(&server).await;
        assert_eq!(wire.cmd("DELE 1").await.get(..3), Some("+OK"));
        assert_eq!(wire.cmd("CORE").await, "-ERR [SYS/TEMP] Cannot refresh.");
        assert_eq!(server.uids(), ["a"], "a refused CORE commits nothing");
        server.set_fault(Some(Fault::LostQautReply));
        wire.write("QAUT\r\n").await;
        assert!(wire.closed().await, "no reply, a hang-up");
        assert!(server.uids().is_empty(), "but committed");
        assert_eq!(server.faults_fired(), 2);
    })
    .await;
}

#[tokio::test]
async fn messages_added_for_a_user_are_theirs_alone() {
    within(async {
        let server = server(Extensions::all(), &["bob"]).await;
        server.add("shared", A);
        server.add_for("bob", "bobs", B);
        let mut alice = Wire::login(&server).await;
        assert_eq!(alice.cmd("STAT").await, format!("+OK 1 {}", A.len()));
        assert_eq!(alice.cmd("QAUT").await.get(..3), Some("+OK"));
        assert_eq!(alice.cmd("USER bob").await.get(..3), Some("+OK"));
        assert_eq!(alice.cmd("PASS secret").await, "+OK Welcome.");
        let both = A.len() + B.len();
        assert_eq!(alice.cmd("STAT").await, format!("+OK 2 {both}"));
        assert_eq!(alice.cmd("DELE 2").await.get(..3), Some("+OK"));
        assert_eq!(alice.cmd("QUIT").await.get(..3), Some("+OK"));
        assert!(server.maildrop_of("bob").is_empty());
        assert_eq!(server.uids(), ["shared"]);
    })
    .await;
}
