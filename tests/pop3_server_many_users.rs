//! The test POP3 server's `any_user` option: any user name logs in to a
//! mailbox of its own, thousands of them at once, and the server counts
//! the logins per second and each user's first login, which the scale
//! benchmark (benches/scale.rs) reports.

mod pop3_server;

use std::future::Future;
use std::time::Duration;

use pop3_server::{Extensions, Options, Pop3Server, Wire};

const MESSAGE: &[u8] = b"Subject: for u7\r\n\r\nhi\r\n";

async fn within<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("test did not finish within its time limit")
}

async fn any_user() -> Pop3Server {
    Pop3Server::start(Options {
        any_user: true,
        extensions: Extensions::all(),
        ..Options::default()
    })
    .await
}

async fn log_in(server: &Pop3Server, user: &str, password: &str) -> (Wire, String) {
    let mut wire = Wire::connect(server).await;
    assert_eq!(
        wire.cmd(&format!("USER {user}")).await.get(..3),
        Some("+OK")
    );
    let reply = wire.cmd(&format!("PASS {password}")).await;
    (wire, reply)
}

#[tokio::test]
async fn any_user_logs_in_to_a_mailbox_of_its_own() {
    within(async {
        let server = any_user().await;
        server.add_for("u7", "m1", MESSAGE);
        let (mut seven, reply) = log_in(&server, "u7", "secret").await;
        assert_eq!(reply, "+OK Welcome.");
        assert_eq!(seven.cmd("STAT").await, format!("+OK 1 {}", MESSAGE.len()));
        let (mut stranger, reply) = log_in(&server, "nobody-added-mail", "secret").await;
        assert_eq!(reply, "+OK Welcome.");
        assert_eq!(stranger.cmd("STAT").await, "+OK 0 0");
        let (_, refused) = log_in(&server, "u8", "wrong").await;
        assert_eq!(refused, "-ERR [AUTH] Wrong username or password.");
        assert_eq!(seven.cmd("DELE 1").await.get(..3), Some("+OK"));
        assert_eq!(seven.cmd("QUIT").await.get(..3), Some("+OK"));
        assert!(server.maildrop_of("u7").is_empty());
        assert_eq!(server.logins(), 2);
        assert_eq!(server.first_logins().0, 2);
    })
    .await;
}

#[tokio::test]
async fn thousands_of_users_stay_parked_at_once() {
    const USERS: usize = 2000;
    within(async {
        let server = any_user().await;
        let mut parked = Vec::with_capacity(USERS);
        for n in 0..USERS {
            let (mut wire, reply) = log_in(&server, &format!("u{n}"), "secret").await;
            assert_eq!(reply, "+OK Welcome.");
            assert_eq!(wire.cmd("SLEE").await.get(..3), Some("+OK"));
            parked.push(wire);
        }
        assert_eq!(server.sleeping_connections(), USERS);
        let (users, last) = server.first_logins();
        assert_eq!(users, USERS);
        assert!(last.is_some());
        let busiest = server.busiest_second();
        assert!(
            busiest > 0 && busiest <= USERS,
            "busiest second {busiest} of {USERS} logins"
        );
        server.add_for("u1999", "late", b"Subject: late\r\n\r\nx\r\n");
        let last = parked.last_mut().expect("a parked session");
        assert_eq!(last.cmd("WAKE").await.get(..3), Some("+OK"));
        assert_eq!(last.cmd("STAT").await.get(..5), Some("+OK 1"));
    })
    .await;
}
