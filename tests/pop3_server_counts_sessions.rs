//! The test POP3 server knows who is logged in to which mailbox: it counts
//! the most sessions one mailbox had at once (the fleet tests' proof that
//! no two popferry instances ever polled one account together), can lock a
//! maildrop against a second session, and ends a silent session after its
//! autologout time without committing its deletions.

mod pop3_server;

use std::future::Future;
use std::time::Duration;

use pop3_server::{Extensions, Options, Pop3Server, Wire};

async fn within<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), test)
        .await
        .expect("test did not finish within its time limit")
}

async fn log_in(server: &Pop3Server, user: &str) -> (Wire, String) {
    let mut wire = Wire::connect(server).await;
    assert_eq!(
        wire.cmd(&format!("USER {user}")).await.get(..3),
        Some("+OK")
    );
    let reply = wire.cmd("PASS secret").await;
    (wire, reply)
}

fn many_users() -> Options {
    Options {
        any_user: true,
        extensions: Extensions::all(),
        ..Options::default()
    }
}

#[tokio::test]
async fn two_sessions_on_one_mailbox_are_counted() {
    within(async {
        let server = Pop3Server::start(many_users()).await;
        let (mut first, reply) = log_in(&server, "u1").await;
        assert_eq!(reply, "+OK Welcome.");
        let (mut other_user, _) = log_in(&server, "u2").await;
        assert_eq!(server.most_sessions_at_once(), 1, "two mailboxes, one each");
        let (mut second, reply) = log_in(&server, "u1").await;
        assert_eq!(reply, "+OK Welcome.", "no lock: both are let in");
        assert_eq!(server.most_sessions_at_once(), 2);
        assert_eq!(server.overlapping_logins(), 1);
        for wire in [&mut first, &mut second, &mut other_user] {
            assert_eq!(wire.cmd("QUIT").await.get(..3), Some("+OK"));
        }
        let (_, reply) = log_in(&server, "u1").await;
        assert_eq!(reply, "+OK Welcome.");
        assert_eq!(server.overlapping_logins(), 1, "the earlier ones ended");
        assert_eq!(server.most_sessions_at_once(), 2, "the most is kept");
    })
    .await;
}

#[tokio::test]
async fn a_locked_maildrop_refuses_a_second_session_until_the_first_ends() {
    within(async {
        let server = Pop3Server::start(Options {
            lock_maildrops: true,
            ..many_users()
        })
        .await;
        let (mut first, _) = log_in(&server, "u1").await;
        let (_, refused) = log_in(&server, "u1").await;
        assert_eq!(
            refused,
            "-ERR [IN-USE] Mailbox is locked by another POP3 session."
        );
        assert_eq!(server.refused_in_use(), 1);
        assert_eq!(first.cmd("QAUT").await.get(..3), Some("+OK"));
        let (mut second, reply) = log_in(&server, "u1").await;
        assert_eq!(reply, "+OK Welcome.", "QAUT released the mailbox");
        assert!(second.cmd("NOOP").await.starts_with("+OK"));
        drop(second);
        let (_, reply) = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let attempt = log_in(&server, "u1").await;
                if attempt.1 == "+OK Welcome." {
                    return attempt;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("a dropped link releases the mailbox");
        assert_eq!(reply, "+OK Welcome.");
        assert_eq!(server.most_sessions_at_once(), 1);
        assert_eq!(server.overlapping_logins(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_silent_session_is_logged_out_without_committing() {
    within(async {
        let server = Pop3Server::start(Options {
            autologout: Some(Duration::from_millis(300)),
            lock_maildrops: true,
            ..many_users()
        })
        .await;
        server.add_for("u1", "m1", b"Subject: x\r\n\r\nhi\r\n");
        let (mut silent, _) = log_in(&server, "u1").await;
        assert_eq!(silent.cmd("DELE 1").await.get(..3), Some("+OK"));
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(silent.closed().await, "the server hung up");
        assert_eq!(server.maildrop_of("u1"), ["m1"], "no UPDATE state");
        let (_, reply) = log_in(&server, "u1").await;
        assert_eq!(reply, "+OK Welcome.", "and the mailbox is free again");
    })
    .await;
}
