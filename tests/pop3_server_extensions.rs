//! The test POP3 server's extensions (SLEE/WAKE, UID-PARAM, DELI, QAUT,
//! PIPELINING), counters and faults, over raw TCP.
//!
//! Raw lines rather than popferry's client, because the client does not
//! speak these commands yet and the exact reply lines are what is under
//! test: they are the reference server's, which the pooling client will
//! be written against.

mod pop3_server;

use std::future::Future;
use std::time::Duration;

use pop3_server::{Extensions, Fault, Options, Pop3Server, Wire};

const A: &[u8] = b"Subject: a\r\n\r\nfirst\r\n.dotted\r\n";
const B: &[u8] = b"Subject: b\r\n\r\nsecond\r\n";
const C: &[u8] = b"Subject: c\r\n\r\nthird\r\n";

const ASLEEP: &str =
    "-ERR This command is not allowed in a sleeping state. (Only NOOP, QUIT or WAKE.)";
const NO_UID: &str = "-ERR [UID/NOT-FOUND] No such UID.";
const DELETED: &str = "-ERR That message has been deleted.";

async fn within<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), test)
        .await
        .expect("test did not finish within its time limit")
}

/// Waits for a server-side effect that follows a client action without a
/// reply to wait for (a hang-up, a close).
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..200 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

async fn server(extensions: Extensions) -> Pop3Server {
    let server = Pop3Server::start(Options {
        extensions,
        ..Options::default()
    })
    .await;
    server.add("a", A);
    server.add("b", B);
    server
}

#[tokio::test]
async fn capa_lists_exactly_the_enabled_extensions() {
    within(async {
        let capa = |server: Pop3Server| async move {
            let mut wire = Wire::connect(&server).await;
            assert_eq!(wire.cmd("CAPA").await, "+OK Capabilities are...");
            wire.body().await
        };
        let plain = capa(server(Extensions::default()).await).await;
        assert_eq!(plain, ["USER", "UIDL", "TOP"]);

        let all = capa(server(Extensions::all()).await).await;
        for token in ["RESP-CODES", "SLEE-WAKE", "UID-PARAM", "DELI", "QAUT"] {
            assert!(all.iter().any(|t| t == token), "{token} in {all:?}");
        }
        assert!(all.iter().any(|t| t == "PIPELINING"), "{all:?}");
        assert!(!all.iter().any(|t| t == "SLEEPING"), "{all:?}");

        let draft = Extensions {
            sleeping: true,
            ..Extensions::default()
        };
        let tokens = capa(server(draft).await).await;
        assert_eq!(tokens, ["USER", "UIDL", "TOP", "RESP-CODES", "SLEEPING"]);

        let server = server(Extensions::default()).await;
        let mut wire = Wire::login(&server).await;
        for verb in ["SLEE", "WAKE", "DELI 1", "QAUT"] {
            let unknown = format!("-ERR Unknown command: {}", &verb[..4]);
            assert_eq!(wire.cmd(verb).await, unknown, "off by default");
        }
    })
    .await;
}

#[tokio::test]
async fn slee_commits_and_counts_deli_again() {
    within(async {
        let server = server(Extensions::all()).await;
        server.add("c", C);
        let mut wire = Wire::login(&server).await;
        assert_eq!(wire.cmd("DELI 1").await, "+OK Deleted message. UID:a");
        assert_eq!(server.uids(), ["b", "c"], "DELI deletes at once");
        let dele = "+OK Message UID:b flagged for delete on QUIT or SLEE.";
        assert_eq!(wire.cmd("DELE 2").await, dele);
        assert_eq!(server.uids(), ["b", "c"], "DELE waits");
        assert_eq!(wire.cmd("SLEE").await, "+OK Zzzzz. Deleted 2 messages.");
        assert_eq!(server.uids(), ["c"]);
        assert_eq!(server.sleeping_connections(), 1);

        assert_eq!(wire.cmd("WAKE").await, "+OK [ACTIVITY/NONE] Welcome back.");
        assert_eq!(wire.cmd("DELI 1").await, "+OK Deleted message. UID:c");
        assert_eq!(wire.cmd("SLEE").await, "+OK Zzzzz. Deleted 1 messages.");
        assert!(server.uids().is_empty());
        assert_eq!(wire.cmd("QUIT").await, "+OK Closing connection.");
    })
    .await;
}

#[tokio::test]
async fn sleeping_session_takes_only_noop_wake_and_quit() {
    within(async {
        let server = server(Extensions::all()).await;
        let mut wire = Wire::connect(&server).await;
        for verb in ["SLEE", "WAKE", "QAUT", "STAT"] {
            assert_eq!(wire.cmd(verb).await, "-ERR Authenticate first.");
        }
        let mut wire = Wire::login(&server).await;
        assert_eq!(wire.cmd("WAKE").await, "-ERR Not sleeping.");
        assert_eq!(wire.cmd("DELE 1").await.get(..3), Some("+OK"));
        assert_eq!(wire.cmd("SLEE").await, "+OK Zzzzz. Deleted 1 messages.");
        for verb in [
            "CAPA", "STAT", "UIDL", "RETR 2", "DELE 2", "RSET", "SLEE", "QAUT",
        ] {
            assert_eq!(wire.cmd(verb).await, ASLEEP, "{verb}");
        }
        let noop = "+OK There's no-one here but us POP3 services.";
        assert_eq!(wire.cmd("NOOP").await, noop);
        assert_eq!(server.sleeping_connections(), 1);
        assert_eq!(wire.cmd("QUIT").await, "+OK Closing connection.");
        assert!(wire.closed().await);
        assert_eq!(server.uids(), ["b"], "the refused DELE did nothing");
    })
    .await;
}

#[tokio::test]
async fn wake_says_new_only_for_uids_outside_the_last_snapshot() {
    within(async {
        let server = server(Extensions::all()).await;
        let mut wire = Wire::login(&server).await;
        let mut other = Wire::login(&server).await;
        assert_eq!(other.cmd("DELI 1").await, "+OK Deleted message. UID:a");

        assert_eq!(wire.cmd("SLEE").await, "+OK Zzzzz. Deleted 0 messages.");
        let none = "+OK [ACTIVITY/NONE] Welcome back.";
        assert_eq!(wire.cmd("WAKE").await, none, "a removal is no activity");
        assert_eq!(wire.cmd("UIDL").await, "+OK Unique-IDs follow...");
        assert_eq!(wire.body().await, ["1 b"], "renumbered from 1");

        assert_eq!(wire.cmd("SLEE").await, "+OK Zzzzz. Deleted 0 messages.");
        server.add("c", C);
        assert_eq!(wire.cmd("WAKE").await, "+OK [ACTIVITY/NEW] Welcome back.");
        assert_eq!(wire.cmd("UIDL").await, "+OK Unique-IDs follow...");
        assert_eq!(wire.body().await, ["1 b", "2 c"]);
        assert_eq!(wire.cmd("SLEE").await, "+OK Zzzzz. Deleted 0 messages.");
        assert_eq!(wire.cmd("WAKE").await, none, "compared with the last WAKE");
    })
    .await;
}

#[tokio::test]
async fn uid_param_names_snapshot_messages_and_newer_ones_as_zero() {
    within(async {
        let server = server(Extensions::all()).await;
        let mut wire = Wire::login(&server).await;
        server.add("c", C);

        assert_eq!(wire.cmd("RETR UID:b").await, "+OK Message text follows...");
        assert_eq!(wire.body().await, ["Subject: b", "", "second"]);
        assert_eq!(
            wire.cmd("TOP uid:a 0").await,
            "+OK Header and first 0 lines..."
        );
        assert_eq!(wire.body().await, ["Subject: a", ""], "prefix in any case");
        assert_eq!(wire.cmd("LIST UID:a").await, format!("+OK 1 {}", A.len()));
        for miss in ["RETR UID:A", "RETR UID:zz9", "LIST UID:", "DELI UID:\u{e9}"] {
            assert_eq!(wire.cmd(miss).await, NO_UID, "{miss}");
        }

        assert_eq!(wire.cmd("LIST UID:c").await, format!("+OK 0 {}", C.len()));
        assert_eq!(wire.cmd("UIDL UID:c").await, "+OK 0 c");
        assert_eq!(wire.cmd("RETR UID:c").await, "+OK Message text follows...");
        assert_eq!(wire.body().await, ["Subject: c", "", "third"]);
        assert_eq!(
            wire.cmd("RETR 3").await,
            "-ERR No such message.",
            "a bare number"
        );
        assert_eq!(wire.cmd("UIDL").await, "+OK Unique-IDs follow...");
        assert_eq!(
            wire.body().await,
            ["1 a", "2 b"],
            "c is not in the snapshot"
        );

        let dele = "+OK Message UID:c flagged for delete on QUIT or SLEE.";
        assert_eq!(wire.cmd("DELE UID:c").await, dele);
        assert_eq!(wire.cmd("DELE UID:a").await.get(..3), Some("+OK"));
        for gone in ["RETR UID:a", "DELE UID:c", "RETR 1"] {
            assert_eq!(wire.cmd(gone).await, DELETED, "{gone}");
        }
        let quit = "+OK 2 messages deleted. Closing connection.";
        assert_eq!(wire.cmd("QUIT").await, quit);
        assert_eq!(server.uids(), ["b"]);

        let plain = Extensions {
            uid_param: false,
            ..Extensions::all()
        };
        let server = self::server(plain).await;
        let mut wire = Wire::login(&server).await;
        assert_eq!(wire.cmd("RETR UID:a").await, "-ERR Bad parameters.");
    })
    .await;
}

#[tokio::test]
async fn deli_is_durable_without_quit_and_leaves_a_gap() {
    within(async {
        let server = server(Extensions::all()).await;
        let mut wire = Wire::login(&server).await;
        assert_eq!(wire.cmd("DELI UID:a").await, "+OK Deleted message. UID:a");
        assert_eq!(wire.cmd("RSET").await.get(..3), Some("+OK"));
        assert_eq!(wire.cmd("STAT").await, format!("+OK 1 {}", B.len()));
        assert_eq!(wire.cmd("LIST").await, "+OK Message sizes follow...");
        assert_eq!(wire.body().await, [format!("2 {}", B.len())], "no shift");
        assert_eq!(wire.cmd("DELI 1").await, DELETED);
        assert_eq!(wire.cmd("RETR UID:a").await, DELETED);
        assert_eq!(wire.cmd("DELI").await, "-ERR Bad command syntax.");
        drop(wire);
        eventually("the session ends", || server.open_connections() == 0).await;
        assert_eq!(server.uids(), ["b"], "no QUIT, yet a is gone");
    })
    .await;
}

#[tokio::test]
async fn qaut_commits_and_a_second_login_uses_the_same_connection() {
    within(async {
        let server = server(Extensions::all()).await;
        let mut wire = Wire::login(&server).await;
        assert_eq!(wire.cmd("DELE 1").await.get(..3), Some("+OK"));
        let qaut = "+OK Logged out. You can either reauthenticate or exit.";
        assert_eq!(wire.cmd("QAUT").await, qaut);
        assert_eq!(server.uids(), ["b"], "committed like QUIT");
        assert_eq!(wire.cmd("STAT").await, "-ERR Authenticate first.");
        assert_eq!(
            wire.cmd("USER alice").await,
            "+OK Thank you. Send password."
        );
        assert_eq!(wire.cmd("PASS secret").await, "+OK Welcome.");
        assert_eq!(wire.cmd("STAT").await, format!("+OK 1 {}", B.len()));
        assert_eq!((server.logins(), server.accepts()), (2, 1));
        assert_eq!(server.commands("QAUT"), 1);
    })
    .await;
}

#[tokio::test]
async fn refused_wake_leaves_the_session_asleep() {
    within(async {
        let server = server(Extensions::all()).await;
        let mut wire = Wire::login(&server).await;
        server.set_fault(Some(Fault::RefuseWake { code: "IN-USE" }));
        assert_eq!(wire.cmd("WAKE").await, "-ERR Not sleeping.");
        assert_eq!(server.faults_fired(), 0, "only a sleeping WAKE takes it");
        assert_eq!(wire.cmd("SLEE").await, "+OK Zzzzz. Deleted 0 messages.");
        for (fired, code) in [(1, "IN-USE"), (2, "AUTH"), (3, "SYS/TEMP")] {
            server.set_fault(Some(Fault::RefuseWake { code }));
            let reply = wire.cmd("WAKE").await;
            assert!(reply.starts_with(&format!("-ERR [{code}] ")), "{reply}");
            assert_eq!(server.faults_fired(), fired);
            assert_eq!(server.sleeping_connections(), 1);
            assert_eq!(wire.cmd("STAT").await, ASLEEP);
        }
        assert_eq!(wire.cmd("WAKE").await, "+OK [ACTIVITY/NONE] Welcome back.");
        assert_eq!(server.sleeping_connections(), 0);
    })
    .await;
}

#[tokio::test]
async fn slee_faults_commit_then_lose_the_link() {
    within(async {
        for (fault, reply) in [
            (Fault::DropAfterSlee, Some("+OK Zzzzz. Deleted 1 messages.")),
            (Fault::LostSleeReply, None),
        ] {
            let server = server(Extensions::all()).await;
            let mut wire = Wire::login(&server).await;
            assert_eq!(wire.cmd("DELE 2").await.get(..3), Some("+OK"));
            server.set_fault(Some(fault.clone()));
            wire.write("SLEE\r\n").await;
            assert_eq!(wire.next().await.as_deref(), reply, "{fault:?}");
            assert!(wire.closed().await, "{fault:?}");
            assert_eq!(server.uids(), ["a"], "{fault:?} committed");
            assert_eq!(server.faults_fired(), 1);
            eventually("the session ends", || server.open_connections() == 0).await;
            assert_eq!(server.sleeping_connections(), 0);
        }
    })
    .await;
}

#[tokio::test]
async fn close_after_works_for_the_new_verbs() {
    within(async {
        let server = server(Extensions::all()).await;
        let mut wire = Wire::login(&server).await;
        assert_eq!(wire.cmd("DELE 1").await.get(..3), Some("+OK"));
        server.set_fault(Some(Fault::CloseAfter { verb: "SLEE" }));
        wire.write("SLEE\r\n").await;
        assert!(wire.closed().await);
        assert_eq!(server.uids(), ["a", "b"], "nothing committed");

        let mut wire = Wire::login(&server).await;
        assert_eq!(wire.cmd("SLEE").await, "+OK Zzzzz. Deleted 0 messages.");
        server.set_fault(Some(Fault::CloseAfter { verb: "WAKE" }));
        wire.write("WAKE\r\n").await;
        assert!(wire.closed().await);
        assert_eq!(server.faults_fired(), 2);
    })
    .await;
}

#[tokio::test]
async fn close_sleeping_closes_only_parked_connections() {
    within(async {
        let server = server(Extensions::all()).await;
        let mut parked = [Wire::login(&server).await, Wire::login(&server).await];
        let mut awake = Wire::login(&server).await;
        let mut anonymous = Wire::connect(&server).await;
        for wire in &mut parked {
            assert_eq!(wire.cmd("SLEE").await, "+OK Zzzzz. Deleted 0 messages.");
        }
        assert_eq!(server.open_connections(), 4);
        assert_eq!(server.sleeping_connections(), 2);

        assert_eq!(server.close_sleeping(), 2);
        assert_eq!(server.sleeping_connections(), 0);
        for wire in &mut parked {
            assert!(wire.closed().await, "a parked connection is closed");
        }
        assert_eq!(awake.cmd("STAT").await.get(..3), Some("+OK"));
        assert_eq!(anonymous.cmd("NOOP").await.get(..3), Some("+OK"));
        eventually("two sessions end", || server.open_connections() == 2).await;
        assert_eq!(server.close_sleeping(), 0);
    })
    .await;
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    within(async {
        let server = server(Extensions::all()).await;
        let mut wire = Wire::connect(&server).await;
        wire.write("USER alice\r\nPASS secret\r\nUIDL\r\nLIST\r\nRETR 1\r\nDELE 1\r\nSTAT\r\n")
            .await;
        assert_eq!(wire.line().await, "+OK Thank you. Send password.");
        assert_eq!(wire.line().await, "+OK Welcome.");
        assert_eq!(wire.line().await, "+OK Unique-IDs follow...");
        assert_eq!(wire.body().await, ["1 a", "2 b"]);
        assert_eq!(wire.line().await, "+OK Message sizes follow...");
        let sizes = [format!("1 {}", A.len()), format!("2 {}", B.len())];
        assert_eq!(wire.body().await, sizes);
        assert_eq!(wire.line().await, "+OK Message text follows...");
        assert_eq!(wire.body().await, ["Subject: a", "", "first", "..dotted"]);
        let dele = "+OK Message UID:a flagged for delete on QUIT or SLEE.";
        assert_eq!(wire.line().await, dele);
        assert_eq!(wire.line().await, format!("+OK 1 {}", B.len()));
        assert_eq!(server.commands("RETR"), 1);
    })
    .await;
}

#[tokio::test]
async fn counters_follow_connections_through_sleep_and_quit() {
    within(async {
        let server = server(Extensions::all()).await;
        assert_eq!(server.open_connections(), 0);
        let mut wire = Wire::login(&server).await;
        assert_eq!(server.open_connections(), 1);
        assert_eq!(server.sleeping_connections(), 0);
        assert_eq!(wire.cmd("SLEE").await.get(..3), Some("+OK"));
        assert_eq!(server.sleeping_connections(), 1);
        assert_eq!(wire.cmd("WAKE").await.get(..3), Some("+OK"));
        assert_eq!(server.sleeping_connections(), 0);
        assert_eq!(wire.cmd("QUIT").await, "+OK Closing connection.");
        eventually("the session ends", || server.open_connections() == 0).await;
        assert_eq!((server.commands("SLEE"), server.commands("WAKE")), (1, 1));
        assert_eq!((server.accepts(), server.logins()), (1, 1));
    })
    .await;
}
