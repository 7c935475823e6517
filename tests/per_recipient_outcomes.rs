//! Each recipient of a message gets its own outcome, exactly once: a
//! relay that takes one recipient and refuses another must leave the
//! first with one copy and the second with a retry (4xx) or a recorded
//! refusal (5xx), and a relay that takes nobody must not be handed an
//! empty message. Against a scripted relay (SMTP and LMTP, over TCP and a
//! Unix socket); the interop suite repeats the main cases on real MTAs.

mod harness;
mod pop3_server;
mod rcpt_relay;
mod smtp_receiver;

use harness::{message, within};
use popferry::ledger::{MessageState, RecipientState};
use popferry::poll::{PollError, PollOptions};
use rcpt_relay::world::World;
use rcpt_relay::{Behaviour, RcptRelay, Rule};

const OK: &str = "ok@example.org";
const OTHER: &str = "other@example.org";
const LATER: &str = "later@example.org";

#[tokio::test]
async fn a_recipient_refused_for_good_leaves_the_other_with_one_copy() {
    within(async {
        let world = World::start(Behaviour::default(), &[OK, OTHER]).await;
        world
            .relay
            .set(OTHER, Rule::AtRcpt("550 5.1.1 no such user".into()));
        world.pop3.add("m1", &message("m1", ""));
        let report = world.poll().await.expect("poll");
        assert_eq!(report.delivered, 1);
        assert_eq!(world.relay.received(OK), 1);
        assert_eq!(world.relay.received(OTHER), 0);
        let delivered = &world.relay.deliveries()[0];
        assert!(delivered.data.ends_with(&message("m1", "")), "intact");
        // One taker and one final refusal: done, so it leaves the server.
        assert!(world.pop3.uids().is_empty(), "deleted from the server");
        let refusals = world.refusals().await;
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert_eq!(refusals[0].0, OTHER);
        assert_eq!(refusals[0].1, RecipientState::Rejected);
        assert!(
            refusals[0].2.contains("550 5.1.1 no such user"),
            "{}",
            refusals[0].2
        );
        // Later polls leave everyone alone, and once the server no longer
        // lists the message the refusal still shows.
        world.poll().await.expect("second poll");
        assert_eq!(world.relay.deliveries().len(), 1);
        assert!(world.ledger.messages("alice").await.unwrap().is_empty());
        assert_eq!(world.refusals().await, refusals);
    })
    .await;
}

#[tokio::test]
async fn a_recipient_refused_for_now_is_retried_alone() {
    within(async {
        let world = World::start(Behaviour::default(), &[OK, LATER]).await;
        world
            .relay
            .set(LATER, Rule::AtRcpt("450 4.2.0 mailbox busy".into()));
        world.pop3.add("m1", &message("m1", ""));
        world.poll().await.expect("first poll");
        assert_eq!(world.relay.received(OK), 1);
        assert_eq!(world.state("m1").await, Some(MessageState::Partial));
        assert_eq!(
            world.pop3.uids(),
            ["m1"],
            "kept until every recipient is done"
        );
        // Still busy: tried again, alone, and OK gets no second copy.
        world.poll().await.expect("second poll");
        assert_eq!(world.relay.received(OK), 1);
        world.relay.clear(LATER);
        world.poll().await.expect("third poll");
        assert_eq!(world.relay.received(OK), 1, "no second copy");
        assert_eq!(world.relay.received(LATER), 1);
        let envelopes = world.relay.transactions();
        assert_eq!(
            envelopes.last().unwrap(),
            &[LATER.to_owned()],
            "{envelopes:?}"
        );
        assert!(world.pop3.uids().is_empty(), "deleted once everyone has it");
        assert_eq!(world.state("m1").await, Some(MessageState::Deleted));
    })
    .await;
}

#[tokio::test]
async fn a_relay_opening_data_for_nobody_gets_no_empty_message() {
    within(async {
        let behaviour = Behaviour {
            open_data_anyway: true,
            ..Behaviour::default()
        };
        let world = World::start(behaviour, &[OK, OTHER]).await;
        world
            .relay
            .set(OK, Rule::AtRcpt("550 5.1.1 no such user".into()));
        world
            .relay
            .set(OTHER, Rule::AtRcpt("553 5.7.1 relaying denied".into()));
        world.pop3.add("m1", &message("m1", ""));
        world.pop3.add("m2", &message("m2", ""));
        let report = world.poll().await.expect("poll");
        assert_eq!(report.rejected, 2);
        assert_eq!(
            world.relay.deliveries(),
            [],
            "nothing, not even an empty message"
        );
        assert_eq!(world.relay.transactions().len(), 0, "no DATA was completed");
        assert_eq!(
            world.relay.abandoned(),
            2,
            "each open DATA abandoned by closing"
        );
        assert_eq!(world.pop3.uids(), ["m1", "m2"], "both stay on the server");
        assert_eq!(world.state("m1").await, Some(MessageState::Rejected));
        let record = world
            .ledger
            .messages("alice")
            .await
            .unwrap()
            .remove("m1")
            .unwrap();
        let why = record.last_error.unwrap();
        assert!(
            why.contains(OK) && why.contains("550") && why.contains("553"),
            "{why}"
        );
    })
    .await;
}

#[tokio::test]
async fn every_recipient_refused_on_a_well_behaved_relay_resets_and_goes_on() {
    within(async {
        for pipelining in [true, false] {
            let behaviour = Behaviour {
                pipelining,
                ..Behaviour::default()
            };
            let world = World::start(behaviour, &[OK]).await;
            world
                .relay
                .set(OK, Rule::AtRcpt("550 5.1.1 no such user".into()));
            world.pop3.add("m1", &message("m1", ""));
            world.pop3.add("m2", &message("m2", ""));
            world.poll().await.expect("poll");
            assert_eq!(world.relay.deliveries(), []);
            assert_eq!(world.relay.abandoned(), 0);
            assert_eq!(
                world.relay.connections(),
                1,
                "RSET kept the connection usable"
            );
            assert_eq!(world.pop3.uids(), ["m1", "m2"]);
        }
    })
    .await;
}

#[tokio::test]
async fn partial_refusals_work_without_pipelining() {
    within(async {
        let behaviour = Behaviour {
            pipelining: false,
            ..Behaviour::default()
        };
        let world = World::start(behaviour, &[OTHER, OK, LATER]).await;
        world
            .relay
            .set(OTHER, Rule::AtRcpt("550 5.1.1 no such user".into()));
        world
            .relay
            .set(LATER, Rule::AtRcpt("451 4.3.0 later".into()));
        world.pop3.add("m1", &message("m1", ""));
        world.poll().await.expect("poll");
        assert_eq!(world.relay.transactions(), [vec![OK.to_owned()]]);
        world.relay.clear(LATER);
        world.relay.clear(OTHER);
        world.poll().await.expect("second poll");
        // OTHER refused for good is not asked again; LATER is.
        assert_eq!(world.relay.received(OTHER), 0);
        assert_eq!(world.relay.received(LATER), 1);
        assert_eq!(world.relay.received(OK), 1);
        assert!(world.pop3.uids().is_empty());
    })
    .await;
}

#[tokio::test]
async fn lmtp_answers_each_recipient_after_the_data() {
    within(async {
        rcpt_relay::world::lmtp_replies_per_recipient(Behaviour::default()).await;
    })
    .await;
}

#[tokio::test]
async fn lmtp_over_a_unix_socket_delivers() {
    within(async {
        let behaviour = Behaviour {
            lmtp: true,
            ..Behaviour::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("lmtp");
        let relay = RcptRelay::start_unix(behaviour, &socket).await;
        let address = format!("socket = {:?}", socket.display().to_string());
        let world = World::with(relay, &address, behaviour, &[OK], "").await;
        world.pop3.add("m1", &message("m1", ""));
        world.poll().await.expect("poll");
        assert_eq!(world.relay.received(OK), 1);
        assert!(world.pop3.uids().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_relay_closing_with_421_fails_the_poll_and_records_nothing() {
    within(async {
        let world = World::start(Behaviour::default(), &[OK]).await;
        world
            .relay
            .set(OK, Rule::AtRcpt("421 4.3.2 shutting down".into()));
        for uid in ["m1", "m2", "m3"] {
            world.pop3.add(uid, &message(uid, ""));
        }
        let err = world
            .poll()
            .await
            .expect_err("a closing relay fails the poll");
        assert!(matches!(err, PollError::Relay { .. }), "{err:?}");
        assert!(err.to_string().contains("421"), "{err}");
        assert_eq!(
            world.relay.connections(),
            1,
            "not one connection per message"
        );
        assert_eq!(world.pop3.uids(), ["m1", "m2", "m3"]);
        assert_eq!(
            world.ledger.messages("alice").await.unwrap().len(),
            0,
            "nothing recorded"
        );
        world.relay.clear(OK);
        world.poll().await.expect("the relay is back");
        assert_eq!(world.relay.received(OK), 3);
    })
    .await;
}

#[tokio::test]
async fn an_address_that_needs_smtputf8_is_refused_where_the_relay_lacks_it() {
    within(async {
        let behaviour = Behaviour {
            smtputf8: false,
            ..Behaviour::default()
        };
        let world = World::start(behaviour, &[OK, "jörg@example.org"]).await;
        world.pop3.add("m1", &message("m1", ""));
        world.poll().await.expect("poll");
        assert_eq!(
            world.relay.received(OK),
            1,
            "the plain address still gets it"
        );
        assert_eq!(world.relay.deliveries().len(), 1);
        let refusals = world.refusals().await;
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert_eq!(refusals[0].0, "jörg@example.org");
        assert!(refusals[0].2.contains("SMTPUTF8"), "{}", refusals[0].2);
        assert!(world.pop3.uids().is_empty(), "one taker, one final refusal");
    })
    .await;
}

#[tokio::test]
async fn a_relay_ending_a_connection_with_421_at_mail_gets_a_fresh_one() {
    within(async {
        let behaviour = Behaviour {
            per_connection: Some(2),
            ..Behaviour::default()
        };
        let world = World::start(behaviour, &[OK]).await;
        for uid in ["m1", "m2", "m3", "m4", "m5"] {
            world.pop3.add(uid, &message(uid, ""));
        }
        let report = world
            .poll()
            .await
            .expect("a 421 at MAIL on a reused connection is no failure");
        assert_eq!(report.delivered, 5);
        assert_eq!(world.relay.received(OK), 5);
        assert_eq!(world.relay.connections(), 3);
        assert!(world.pop3.uids().is_empty());
    })
    .await;
}

/// A partial message recorded as rejected as a whole for another reason
/// (here it grew past max_message_size) must still remember who has it.
#[tokio::test]
async fn who_has_a_message_is_remembered_when_it_is_rejected_as_a_whole() {
    within(async {
        let mut world = World::start(Behaviour::default(), &[OK, LATER]).await;
        world
            .relay
            .set(LATER, Rule::AtRcpt("450 4.2.0 mailbox busy".into()));
        world.pop3.add("m1", &message("m1", ""));
        world.poll().await.expect("first poll");
        assert_eq!(world.state("m1").await, Some(MessageState::Partial));
        let limit = world.account.max_message_size;
        world.account.max_message_size = 10;
        world.poll().await.expect("too large now");
        assert_eq!(world.state("m1").await, Some(MessageState::Rejected));
        world.account.max_message_size = limit;
        world.relay.clear(LATER);
        let now = PollOptions {
            retry_rejected: true,
            ..PollOptions::default()
        };
        world.poll_with(&now).await.expect("retried");
        assert_eq!(world.relay.received(OK), 1, "no second copy");
        assert_eq!(world.relay.received(LATER), 1);
        assert!(world.pop3.uids().is_empty());
    })
    .await;
}
