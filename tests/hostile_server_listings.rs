//! Servers whose UIDL and LIST listings cannot be trusted: a message
//! number listed twice, unique-ids with spaces or control characters,
//! LIST sizes smaller or larger than the bodies. The bodies are the truth: nothing
//! breaks, `max_message_size` holds on the bytes received, and nothing is
//! deleted that was not delivered and recorded.

mod harness;
mod hostile_peer;
mod pop3_server;
mod smtp_receiver;

use harness::{message, within, Rig};
use hostile_peer::{greeting, logged_in, mailbox, Listed, Peer, Reply};
use popferry::ledger::MessageState;
use popferry::poll::PollError;
use popferry::pop3::Pop3Error;

async fn rig_on(peer: &Peer, extra: &str) -> Rig {
    let mut rig = Rig::start(extra).await;
    rig.account.pop3.port = peer.port();
    rig
}

/// A peer that logs in, answers UIDL with `uidl` lines and LIST with a
/// size of 100 for each, and serves every RETR.
async fn peer_listing(uidl: Vec<Vec<u8>>) -> Peer {
    let count = uidl.len();
    Peer::start(
        greeting(),
        logged_in(move |command| match command {
            "UIDL" => {
                let mut bytes = b"+OK\r\n".to_vec();
                for line in &uidl {
                    bytes.extend_from_slice(line);
                    bytes.extend_from_slice(b"\r\n");
                }
                bytes.extend_from_slice(b".\r\n");
                Reply::Bytes(bytes)
            }
            "LIST" => Reply::listing((1..=count).map(|n| format!("{n} 100"))),
            _ => Reply::ok(),
        }),
    )
    .await
}

/// Nothing fetched, relayed or deleted; the error names the server.
fn assert_refused(peer: &Peer, rig: &Rig, err: &PollError, what: &str) {
    let text = err.to_string();
    assert!(text.contains(&peer.addr()), "{text}");
    assert!(text.contains(what), "says {what:?}: {text}");
    assert!(peer.received("RETR").is_empty(), "{:?}", peer.commands());
    assert!(peer.received("DELE").is_empty(), "{:?}", peer.commands());
    assert!(rig.smtp.offers().is_empty());
}

/// One message number listed twice (here under two unique-ids) leaves no
/// way to name either message, so nothing is moved and the poll says why
/// (see `Client::read_uidl`). Two numbers sharing one unique-id are
/// allowed: `tests/identical_copies_one_uid.rs`.
#[tokio::test]
async fn number_listed_twice_fails_the_poll_before_any_fetch() {
    within(async {
        let peer = peer_listing(vec![b"1 one".to_vec(), b"1 other".to_vec()]).await;
        let rig = rig_on(&peer, "").await;
        let err = rig
            .poll()
            .await
            .expect_err("a repeated number must fail the poll");
        assert!(
            matches!(
                err,
                PollError::Pop3(Pop3Error::RepeatedNumber { number: 1, .. })
            ),
            "{err:?}"
        );
        assert_refused(&peer, &rig, &err, "lists message 1 twice in UIDL");
        assert!(
            err.to_string().contains("until the server is repaired"),
            "{err}"
        );
    })
    .await;
}

/// RFC 1939: a unique-id is 1 to 70 characters in 0x21-0x7E. One outside
/// that (a space, a control character, NUL, invalid UTF-8, 71 characters)
/// could not be sent back as `UID:` or stored and compared reliably, so
/// the listing is refused like a duplicate.
#[tokio::test]
async fn uid_with_space_or_control_characters_fails_the_poll() {
    within(async {
        let too_long = format!("2 {}", "u".repeat(71)).into_bytes();
        for bad in [
            &b"2 with space"[..],
            b"2 tab\there",
            b"2 nul\x00byte",
            b"2 esc\x1b[2J",
            b"2 \xff\xfe",
            &too_long,
        ] {
            let peer = peer_listing(vec![b"1 fine".to_vec(), bad.to_vec()]).await;
            let rig = rig_on(&peer, "").await;
            let err = rig.poll().await.expect_err("a bad uid must fail the poll");
            assert_refused(&peer, &rig, &err, "malformed UIDL line");
            let text = err.to_string();
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    })
    .await;
}

/// A 5000-byte message that LIST calls 100 bytes: delivered whole when it
/// fits `max_message_size`, and when it does not, the limit holds on the
/// bytes received although LIST said it would fit. Either way nothing
/// undelivered is deleted.
#[tokio::test]
async fn list_smaller_than_the_body_delivers_it_whole_and_limits_the_real_bytes() {
    within(async {
        let padding = format!("X-Padding: {}", "p".repeat(5000));
        let liar = |uid: &str| Listed {
            uid: uid.to_owned(),
            list_size: 100,
            body: message(uid, &padding),
        };
        let small = || Listed::honest("small", message("small", ""));

        let peer = Peer::start(greeting(), mailbox(vec![liar("liar"), small()])).await;
        let rig = rig_on(&peer, "").await;
        let report = rig.poll().await.expect("poll");
        assert_eq!((report.delivered, report.deleted), (2, 2), "{report:?}");
        let delivered = rig.smtp.accepted();
        assert!(delivered[0].data.ends_with(&message("liar", &padding)));
        rig.assert_delivered_once(&["liar", "small"]);

        let peer = Peer::start(greeting(), mailbox(vec![liar("liar"), small()])).await;
        let rig = rig_on(&peer, "max_message_size = 2000").await;
        let err = rig.poll().await.expect_err("the limit holds on the body");
        let text = err.to_string();
        assert!(text.contains(&peer.addr()), "{text}");
        assert!(
            text.contains("larger than the limit of 2000 bytes"),
            "{text}"
        );
        assert_eq!(peer.received("DELE"), Vec::<String>::new());
        let liar_record = rig.record("liar").await.expect("liar recorded");
        assert_eq!(
            liar_record.state,
            MessageState::Rejected,
            "not fetched again"
        );

        // The oversized message does not block the account: the next poll
        // leaves it alone and delivers what is listed after it.
        let report = rig.poll().await.expect("second poll");
        assert_eq!(report.delivered, 1, "{report:?}");
        rig.assert_delivered_once(&["small"]);
        assert_eq!(rig.offered_count("liar"), 0);
        assert_eq!(
            peer.received("RETR")
                .iter()
                .filter(|r| *r == "RETR 1")
                .count(),
            1
        );
        let deleted = peer.received("DELE");
        assert!(deleted.iter().all(|d| d == "DELE 2"), "{deleted:?}");
        let record = rig.record("small").await.expect("small recorded");
        assert_eq!(
            record.state,
            MessageState::Deleted,
            "QUIT confirmed the DELE"
        );
    })
    .await;
}

/// LIST sizes larger than the bodies: within `max_message_size` the
/// message is fetched and delivered as the body is; beyond it, LIST is
/// all popferry has to go on, so the message is left on the server and
/// recorded as rejected without being fetched.
#[tokio::test]
async fn list_larger_than_the_body_delivers_the_body_or_leaves_it_by_list() {
    within(async {
        let inflated = |uid: &str, list_size| Listed {
            uid: uid.to_owned(),
            list_size,
            body: message(uid, ""),
        };
        let peer = Peer::start(
            greeting(),
            mailbox(vec![inflated("fits", 1500), inflated("huge", 1 << 40)]),
        )
        .await;
        let rig = rig_on(&peer, "max_message_size = 2000").await;
        let report = rig.poll().await.expect("poll");
        assert_eq!(
            (report.delivered, report.rejected, report.deleted),
            (1, 1, 1),
            "{report:?}"
        );
        let delivered = rig.smtp.accepted();
        assert!(delivered[0].data.ends_with(&message("fits", "")));
        assert_eq!(peer.received("RETR"), ["RETR 1"]);
        assert_eq!(peer.received("DELE"), ["DELE 1"]);
        let huge = rig.record("huge").await.expect("huge recorded");
        assert_eq!(huge.state, MessageState::Rejected);
        assert!(huge
            .last_error
            .is_some_and(|e| e.contains("max_message_size")));
    })
    .await;
}
