//! The test POP3 server against popferry's own client, command by command.
//!
//! The poll tests trust this server to behave like RFC 1939 says unless a
//! fault is set; this checks that trust, including the commands a poll
//! never sends (STAT, TOP, RSET, NOOP), the commit-only-at-QUIT rule, and
//! one uid listed for several messages.

mod pop3_server;

use std::time::Duration;

use pop3_server::{Options, Pop3Server};
use popferry::pop3::{Client, Endpoint, Limits};

const MESSAGE: &[u8] = b"Subject: hi\r\n\r\nline one\r\n.dotted\r\nline three\r\n";
const SECOND: &[u8] = b"Subject: two\r\n\r\nbody\r\n";

/// A plain-TCP endpoint for the test server with a short timeout.
fn endpoint(server: &Pop3Server) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port: server.port(),
        implicit_tls: None,
        timeout: Duration::from_secs(2),
        limits: Limits::default(),
    }
}

async fn connect(server: &Pop3Server) -> Client {
    let mut client = Client::connect(&endpoint(server)).await.expect("connect");
    client.login_user("alice", "secret").await.expect("login");
    client
}

#[tokio::test]
async fn commands_follow_rfc_1939_and_deletions_wait_for_quit() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = Pop3Server::start(Options::default()).await;
        server.add("a", MESSAGE);
        server.add("b", SECOND);

        let mut client = connect(&server).await;
        let caps = client.capa().await.expect("CAPA").expect("CAPA listing");
        assert!(caps.has("UIDL") && caps.has("TOP") && caps.has("USER"));
        let (count, total) = client.stat().await.expect("STAT");
        assert_eq!((count, total), (2, (MESSAGE.len() + SECOND.len()) as u64));
        let uids = client.uidl().await.expect("UIDL").expect("listing");
        assert_eq!(uids, [(1, "a".to_owned()), (2, "b".to_owned())]);

        let mut body = Vec::new();
        client.retr(1, &mut body).await.expect("RETR");
        assert_eq!(body, MESSAGE, "dot-stuffing round-trips");
        let mut top = Vec::new();
        client.top(1, 1, &mut top).await.expect("TOP");
        assert_eq!(top, b"Subject: hi\r\n\r\nline one\r\n");

        client.dele(1).await.expect("DELE");
        assert_eq!(
            client.list().await.expect("LIST"),
            [(2, SECOND.len() as u64)]
        );
        client.rset().await.expect("RSET");
        assert_eq!(
            client.list().await.expect("LIST").len(),
            2,
            "RSET undeletes"
        );
        client.dele(2).await.expect("DELE");
        client.noop().await.expect("NOOP");
        drop(client);
        // Give the server's session a moment to see the hang-up.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(server.uids(), ["a", "b"], "no QUIT, no commit");

        let mut client = connect(&server).await;
        client.dele(2).await.expect("DELE");
        client.quit().await.expect("QUIT");
        assert_eq!(server.uids(), ["a"], "QUIT commits");
        assert_eq!((server.accepts(), server.logins()), (2, 2));
        assert_eq!(server.commands("DELE"), 3);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn refuses_wrong_password_with_an_auth_code() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = Pop3Server::start(Options::default()).await;
        let mut client = Client::connect(&endpoint(&server)).await.expect("connect");
        let err = client
            .login_user("alice", "nope")
            .await
            .expect_err("refused");
        assert!(err.is_auth_failure(), "{err:?}");
        assert!(err.to_string().contains("[AUTH]"), "{err}");
        assert_eq!(server.logins(), 0);
    })
    .await
    .expect("test timed out");
}

/// Messages added under one uid are listed under it, each with its own
/// number, as popa3d lists identical copies (the bytes differ here only to
/// tell which copy went); a DELE by number removes only that one.
#[tokio::test]
async fn one_uid_added_twice_is_listed_for_both_numbers() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = Pop3Server::start(Options::default()).await;
        server.add("twin", MESSAGE);
        server.add("other", SECOND);
        server.add("twin", SECOND);

        let mut client = connect(&server).await;
        let uids = client.uidl().await.expect("UIDL").expect("listing");
        let expected = [(1, "twin"), (2, "other"), (3, "twin")].map(|(n, u)| (n, u.to_owned()));
        assert_eq!(uids, expected);
        let mut body = Vec::new();
        client.retr(3, &mut body).await.expect("RETR");
        assert_eq!(body, SECOND);
        client.dele(3).await.expect("DELE");
        client.quit().await.expect("QUIT");
        let left: Vec<(String, Vec<u8>)> = server
            .maildrop()
            .into_iter()
            .map(|m| (m.uid, m.bytes))
            .collect();
        let kept = [("twin", MESSAGE), ("other", SECOND)].map(|(u, b)| (u.to_owned(), b.to_vec()));
        assert_eq!(left, kept, "only message 3 went");
    })
    .await
    .expect("test timed out");
}
