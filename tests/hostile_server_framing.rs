//! Servers that break the framing of replies: no greeting, a line that
//! never ends, a listing or body that never ends, a one-byte-a-second
//! trickle, `+OK` to everything, NUL bytes and invalid UTF-8. Each poll
//! fails within a bound derived from the account's `timeout`, with an
//! error that names the server and says what it did, and nothing is
//! deleted that was not delivered.

mod harness;
mod hostile_peer;
mod pop3_server;
mod smtp_receiver;

use std::time::{Duration, Instant};

use harness::{within, Rig, POP3_TIMEOUT};
use hostile_peer::{greeting, logged_in, mailbox, Listed, Peer, Reply};
use popferry::pop3::listing::MAX_CAPA_LINES;

const ONE_SECOND: Duration = Duration::from_secs(1);

/// A rig whose account polls `peer`; the rig's own POP3 server stays idle.
async fn rig_on(peer: &Peer, extra: &str) -> Rig {
    let mut rig = Rig::start(extra).await;
    rig.account.pop3.port = peer.port();
    rig
}

/// Polls `peer` once through a fresh rig (`extra` added to its account)
/// and asserts that the poll failed with an error naming the peer and
/// containing `what`, within `limit`, with nothing relayed and nothing
/// deleted. Returns the error text and how long the poll took.
async fn poll_fails(peer: &Peer, extra: &str, limit: Duration, what: &str) -> (String, Duration) {
    let rig = rig_on(peer, extra).await;
    let started = Instant::now();
    let result = rig.poll().await;
    let elapsed = started.elapsed();
    let err = result.expect_err("the poll must fail").to_string();
    assert!(err.contains(&peer.addr()), "names the server: {err}");
    assert!(err.contains(what), "says {what:?}: {err}");
    assert!(elapsed < limit, "failed after {elapsed:?}, limit {limit:?}");
    assert!(rig.smtp.offers().is_empty(), "nothing may be relayed");
    assert!(peer.received("DELE").is_empty(), "nothing may be deleted");
    (err, elapsed)
}

#[tokio::test]
async fn greeting_never_sent_fails_within_the_timeout() {
    within(async {
        let peer = Peer::start(Reply::Silence, |_| Reply::Silence).await;
        let limit = POP3_TIMEOUT + ONE_SECOND;
        let (_, elapsed) = poll_fails(&peer, "", limit, "did not answer greeting within 2s").await;
        assert!(elapsed >= POP3_TIMEOUT, "gave up early: {elapsed:?}");
        assert!(peer.commands().is_empty(), "{:?}", peer.commands());
    })
    .await;
}

#[tokio::test]
async fn ten_mib_line_without_crlf_fails_at_the_line_limit() {
    within(async {
        let ten_mib = Reply::Endless {
            head: b"+OK ".to_vec(),
            unit: b"x".to_vec(),
            total: Some(10 << 20),
        };
        for (greeting, script) in [
            (ten_mib.clone(), Reply::ok()),
            (greeting(), ten_mib.clone()),
        ] {
            let peer = Peer::start(greeting, logged_in(move |_| script.clone())).await;
            poll_fails(&peer, "", POP3_TIMEOUT, "line longer than 8192 bytes").await;
        }
    })
    .await;
}

#[tokio::test]
async fn capa_listing_that_never_ends_fails_at_its_line_cap() {
    within(async {
        let peer = Peer::start(greeting(), |_| Reply::Endless {
            head: b"+OK\r\n".to_vec(),
            unit: b"X-NOISE\r\n".to_vec(),
            total: None,
        })
        .await;
        let (err, _) = poll_fails(&peer, "", POP3_TIMEOUT, "CAPA listing of more than").await;
        assert!(err.contains(&MAX_CAPA_LINES.to_string()), "{err}");
    })
    .await;
}

#[tokio::test]
async fn retr_body_that_never_ends_fails_at_max_message_size() {
    within(async {
        let endless = Listed::honest("endless", b"Subject: x\r\n\r\nbody\r\n".to_vec());
        let healthy = mailbox(vec![endless]);
        let peer = Peer::start(greeting(), move |command| {
            if command.starts_with("RETR") {
                Reply::Endless {
                    head: b"+OK\r\n".to_vec(),
                    unit: b"all work and no play\r\n".to_vec(),
                    total: None,
                }
            } else {
                healthy(command)
            }
        })
        .await;
        poll_fails(
            &peer,
            "max_message_size = \"1MiB\"",
            POP3_TIMEOUT,
            "larger than the limit of 1048576 bytes",
        )
        .await;
        assert_eq!(peer.received("RETR"), ["RETR 1"]);
    })
    .await;
}

/// One byte a second passes every per-read timeout; the pace rule fails
/// it within one `timeout`, whichever reply is trickled.
#[tokio::test]
async fn one_byte_a_second_trickle_fails_within_one_timeout() {
    within(async {
        let trickle = |text: &str| Reply::Trickle {
            bytes: text.as_bytes().to_vec(),
            every: ONE_SECOND,
        };
        let body = b"Subject: slow\r\n\r\nslow body\r\n".to_vec();
        let mut retr = b"+OK\r\n".to_vec();
        popferry::pop3::codec::dot_stuff(&body, &mut retr);
        let retr = Reply::Trickle {
            bytes: retr,
            every: ONE_SECOND,
        };
        let cases = [
            (
                trickle("+OK slowloris at your service\r\n"),
                None,
                "greeting",
            ),
            (
                greeting(),
                Some(("UIDL", trickle("+OK\r\n1 a\r\n.\r\n"))),
                "UIDL",
            ),
            (greeting(), Some(("RETR", retr)), "RETR"),
        ];
        for (greeting, slow, during) in cases {
            let healthy = mailbox(vec![Listed::honest("a", body.clone())]);
            let peer = Peer::start(greeting, move |command| match &slow {
                Some((verb, reply)) if command.starts_with(verb) => reply.clone(),
                _ => healthy(command),
            })
            .await;
            let (err, elapsed) =
                poll_fails(&peer, "", POP3_TIMEOUT + ONE_SECOND, "too slowly").await;
            assert!(err.contains(during), "{during}: {err}");
            assert!(
                elapsed >= POP3_TIMEOUT,
                "{during}: gave up early: {elapsed:?}"
            );
        }
    })
    .await;
}

/// A server that answers `+OK` to every line never finishes a multi-line
/// reply, so the first one (CAPA) runs into the timeout.
#[tokio::test]
async fn server_answering_ok_to_everything_fails_within_the_timeout() {
    within(async {
        let peer = Peer::start(Reply::ok(), |_| Reply::ok()).await;
        poll_fails(
            &peer,
            "",
            POP3_TIMEOUT + ONE_SECOND,
            "did not answer CAPA in full within 2s",
        )
        .await;
        assert_eq!(peer.commands(), ["CAPA"]);
    })
    .await;
}

/// NUL bytes and invalid UTF-8 in status lines reach neither the error
/// text nor the log as raw bytes; in a body they are the message's own
/// business and are relayed byte for byte.
#[tokio::test]
async fn nul_and_invalid_utf8_are_escaped_in_errors_and_relayed_in_bodies() {
    within(async {
        let refusing = Peer::start(
            Reply::Bytes(b"+OK \xff\xfe\x00 hello\r\n".to_vec()),
            logged_in(|_| {
                Reply::Bytes(b"-ERR [SYS/PERM] \x00\x1b[31m\xc3\x28 broken\r\n".to_vec())
            }),
        )
        .await;
        let (err, _) = poll_fails(&refusing, "", POP3_TIMEOUT, "refused LIST").await;
        assert!(
            !err.chars().any(char::is_control),
            "raw control bytes: {err:?}"
        );
        assert!(err.contains("broken"), "{err}");

        let body = b"Subject: binary\r\n\r\nNUL \x00 here, \xff\xfe not UTF-8\r\n.dot\r\n".to_vec();
        let peer = Peer::start(
            greeting(),
            mailbox(vec![Listed::honest("bin", body.clone())]),
        )
        .await;
        let rig = rig_on(&peer, "").await;
        let report = rig
            .poll()
            .await
            .expect("a binary body is a message like any other");
        assert_eq!((report.delivered, report.deleted), (1, 1), "{report:?}");
        let accepted = rig.smtp.accepted();
        assert_eq!(accepted.len(), 1);
        assert!(accepted[0].data.ends_with(&body), "relayed byte for byte");
        assert_eq!(peer.received("DELE"), ["DELE 1"]);
    })
    .await;
}
