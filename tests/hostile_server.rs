//! POP3 servers that answer nonsense, never answer, lack UIDL, refuse the
//! login or hold oversized messages. Each must fail the poll (or skip the
//! message) cleanly: a typed error naming the server, within the timeout,
//! and nothing deleted that was not delivered.

mod harness;
mod pop3_server;
mod smtp_receiver;

use std::time::Instant;

use harness::{within, Rig, POP3_TIMEOUT};
use pop3_server::{Fault, Options};
use popferry::ledger::MessageState;
use popferry::poll::PollError;

const UIDS: [&str; 3] = ["m1", "m2", "m3"];

async fn rig_with(options: Options, extra: &str) -> Rig {
    let rig = Rig::with_server(options, extra).await;
    for uid in UIDS {
        rig.add(uid, "");
    }
    rig
}

/// Nothing was delivered and the server still holds every message.
fn assert_untouched(rig: &Rig) {
    assert!(rig.smtp.offers().is_empty(), "nothing may be relayed");
    assert_eq!(rig.pop3.commands("DELE"), 0, "nothing may be deleted");
    assert_eq!(rig.pop3.uids(), UIDS);
}

#[tokio::test]
async fn garbage_reply_fails_the_poll_naming_the_server() {
    within(async {
        let rig = rig_with(Options::default(), "").await;
        rig.pop3.set_fault(Some(Fault::Garbage { verb: "RETR" }));

        let err = rig.poll().await.expect_err("garbage must fail the poll");
        assert_eq!(rig.pop3.faults_fired(), 1);
        let text = err.to_string();
        let peer = format!("127.0.0.1:{}", rig.pop3.port());
        assert!(text.contains(&peer), "{text}");
        assert!(text.contains("HELLO? this is not POP3"), "{text}");
        assert_untouched(&rig);
    })
    .await;
}

#[tokio::test]
async fn stalled_server_fails_the_poll_within_the_timeout() {
    within(async {
        let rig = rig_with(Options::default(), "").await;
        rig.pop3.set_fault(Some(Fault::Stall { verb: "UIDL" }));

        let started = Instant::now();
        let err = rig.poll().await.expect_err("a stall must fail the poll");
        let elapsed = started.elapsed();
        assert_eq!(rig.pop3.faults_fired(), 1);
        assert!(elapsed >= POP3_TIMEOUT, "gave up early: {elapsed:?}");
        assert!(elapsed < POP3_TIMEOUT * 3, "took {elapsed:?}");
        assert!(err.to_string().contains("did not answer UIDL"), "{err}");
        assert_untouched(&rig);
    })
    .await;
}

#[tokio::test]
async fn server_without_uidl_is_refused_before_any_fetch() {
    within(async {
        let options = Options {
            uidl: false,
            capabilities: vec!["USER".into(), "TOP".into()],
            ..Options::default()
        };
        let rig = rig_with(options, "").await;

        let err = rig.poll().await.expect_err("no UIDL must fail the poll");
        assert!(matches!(err, PollError::NoUidl { .. }), "{err:?}");
        assert!(err.to_string().contains("UIDL"), "{err}");
        assert_eq!(rig.pop3.commands("RETR"), 0);
        assert_eq!(rig.pop3.commands("TOP"), 0);
        assert_untouched(&rig);
    })
    .await;
}

/// A password long enough that `AUTH PLAIN <initial response>` would pass
/// the 255-octet line limit of RFC 5034, so the client must wait for `+`.
fn long_password() -> String {
    "p".repeat(220)
}

#[tokio::test]
async fn auth_plain_works_with_initial_response_and_with_continuation() {
    within(async {
        for (password, continuations) in [("secret".to_owned(), 0), (long_password(), 1)] {
            let options = Options {
                password,
                capabilities: vec!["UIDL".into(), "SASL PLAIN".into()],
                ..Options::default()
            };
            let rig = rig_with(options, "auth = \"plain\"").await;

            let report = rig.poll().await.expect("poll with AUTH PLAIN");
            assert_eq!(report.delivered, 3, "{report:?}");
            assert_eq!(rig.pop3.logins(), 1);
            assert_eq!(rig.pop3.commands("USER"), 0, "SASL, not USER/PASS");
            assert_eq!(rig.pop3.plain_continuations(), continuations);
            rig.assert_delivered_once(&UIDS);
        }
    })
    .await;
}

#[tokio::test]
async fn wrong_password_is_an_auth_failure_and_delivers_nothing() {
    within(async {
        let rig = Rig::with_password(Options::default(), "wrong", "").await;
        for uid in UIDS {
            rig.add(uid, "");
        }

        let err = rig.poll().await.expect_err("a refused login must fail");
        match &err {
            PollError::Pop3(e) => assert!(e.is_auth_failure(), "{e:?}"),
            other => panic!("expected a POP3 error, got {other:?}"),
        }
        assert!(err.to_string().contains("[AUTH]"), "{err}");
        assert_eq!(rig.pop3.logins(), 0);
        assert_eq!(rig.pop3.commands("UIDL"), 0);
        assert_untouched(&rig);
    })
    .await;
}

#[tokio::test]
async fn oversized_message_is_left_on_the_server_and_the_others_delivered() {
    within(async {
        let rig = Rig::start("max_message_size = 2000").await;
        rig.add("m1", "");
        let padding = format!("X-Padding: {}", "x".repeat(5000));
        rig.add("big", &padding);
        rig.add("m3", "");

        let report = rig.poll().await.expect("poll");
        assert_eq!(
            (report.delivered, report.rejected, report.deleted),
            (2, 1, 2),
            "{report:?}"
        );
        assert_eq!(rig.pop3.commands("RETR"), 2, "big was never fetched");
        assert_eq!(rig.offered_count("big"), 0);
        rig.assert_delivered_once(&["m1", "m3"]);
        assert_eq!(rig.pop3.uids(), ["big"]);
        let record = rig.record("big").await.expect("big recorded");
        assert_eq!(record.state, MessageState::Rejected);
        assert!(record
            .last_error
            .is_some_and(|e| e.contains("max_message_size")));
    })
    .await;
}
