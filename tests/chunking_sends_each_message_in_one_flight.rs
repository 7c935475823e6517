//! Where the relay offers CHUNKING (RFC 3030) and PIPELINING, MAIL, every
//! RCPT, `BDAT <n> LAST` and the message go out before popferry waits for
//! any reply: one round trip per message. The scripted relay holds every
//! reply of an open transaction until BDAT LAST, so a client that waited
//! for one would stall and be counted. Per-recipient outcomes stay as with
//! DATA: RCPT refusals per recipient, nothing delivered when nobody was
//! accepted, one LMTP reply per accepted recipient after BDAT LAST.

mod harness;
mod pop3_server;
mod rcpt_relay;
mod smtp_receiver;

use harness::{message, within, Rig};
use popferry::ledger::{MessageState, RecipientState};
use rcpt_relay::world::World;
use rcpt_relay::{Behaviour, Rule};

const OK: &str = "ok@example.org";
const OTHER: &str = "other@example.org";
const LATER: &str = "later@example.org";

fn chunking() -> Behaviour {
    Behaviour {
        chunking: true,
        ..Behaviour::default()
    }
}

#[tokio::test]
async fn mail_rcpt_bdat_and_the_message_go_before_any_reply_is_awaited() {
    within(async {
        let world = World::start(chunking(), &[OK, OTHER]).await;
        world
            .relay
            .set(OTHER, Rule::AtRcpt("550 5.1.1 no such user".into()));
        let bodies: Vec<Vec<u8>> = (0..3)
            .map(|i| message(&format!("m{i}"), ".a leading dot\r\n..two\r\n"))
            .collect();
        for (i, body) in bodies.iter().enumerate() {
            world.pop3.add(&format!("m{i}"), body);
        }
        let report = world.poll().await.expect("poll");
        assert_eq!(report.delivered, 3);
        assert_eq!(world.relay.chunked(), 3, "every message sent with BDAT");
        assert_eq!(
            world.relay.waits(),
            0,
            "popferry waited for a reply mid-flight"
        );
        assert_eq!(world.relay.connections(), 1);
        assert_eq!(world.relay.received(OK), 3);
        assert_eq!(world.relay.received(OTHER), 0);
        for (delivery, body) in world.relay.deliveries().iter().zip(&bodies) {
            assert!(
                delivery.data.ends_with(body),
                "not the message byte for byte (no dot-stuffing under BDAT)"
            );
        }
        let refusals = world.refusals().await;
        assert_eq!(refusals.len(), 3, "{refusals:?}");
        assert!(refusals
            .iter()
            .all(|(a, s, r)| a == OTHER && *s == RecipientState::Rejected && r.contains("550")));
        assert!(world.pop3.uids().is_empty(), "deleted from the server");
    })
    .await;
}

#[tokio::test]
async fn nothing_is_delivered_when_every_recipient_is_refused_and_the_connection_carries_on() {
    within(async {
        let world = World::start(chunking(), &[OK, LATER]).await;
        world
            .relay
            .set(OK, Rule::AtRcpt("450 4.2.0 mailbox busy".into()));
        world
            .relay
            .set(LATER, Rule::AtRcpt("451 4.3.0 try later".into()));
        world.pop3.add("m1", &message("m1", ""));
        world.poll().await.expect("first poll");
        assert!(world.relay.deliveries().is_empty());
        assert_eq!(world.relay.chunked(), 0, "the relay refused the BDAT");
        assert_eq!(world.pop3.uids(), ["m1"], "kept for the next poll");
        world.relay.clear(OK);
        world.relay.clear(LATER);
        world.poll().await.expect("second poll");
        assert_eq!(world.relay.received(OK), 1);
        assert_eq!(world.relay.received(LATER), 1);
        assert_eq!(world.relay.chunked(), 1);
        assert_eq!(world.relay.waits(), 0);
        assert_eq!(world.state("m1").await, Some(MessageState::Deleted));
    })
    .await;
}

#[tokio::test]
async fn lmtp_answers_each_accepted_recipient_after_bdat_last() {
    within(async {
        let world = rcpt_relay::world::lmtp_replies_per_recipient(chunking()).await;
        assert_eq!(world.relay.chunked(), 2);
        assert_eq!(world.relay.waits(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_421_to_mail_behind_which_the_message_already_went_is_retried_on_a_fresh_connection() {
    within(async {
        let behaviour = Behaviour {
            per_connection: Some(1),
            ..chunking()
        };
        let world = World::start(behaviour, &[OK]).await;
        for i in 0..3 {
            world
                .pop3
                .add(&format!("m{i}"), &message(&format!("m{i}"), ""));
        }
        let report = world.poll().await.expect("poll");
        assert_eq!(report.delivered, 3);
        assert_eq!(world.relay.received(OK), 3, "each once");
        assert_eq!(world.relay.connections(), 3);
        assert!(world.pop3.uids().is_empty());
    })
    .await;
}

#[tokio::test]
async fn without_pipelining_chunking_is_not_used() {
    within(async {
        let behaviour = Behaviour {
            pipelining: false,
            ..chunking()
        };
        let world = World::start(behaviour, &[OK]).await;
        world.pop3.add("m1", &message("m1", ".dot\r\n"));
        world.poll().await.expect("poll");
        assert_eq!(world.relay.received(OK), 1);
        assert_eq!(world.relay.chunked(), 0, "DATA, one command at a time");
        assert!(world.relay.deliveries()[0]
            .data
            .ends_with(&message("m1", ".dot\r\n")));
    })
    .await;
}

#[tokio::test]
async fn a_refused_bdat_is_the_outcome_of_its_own_message_only() {
    within(async {
        let rig = Rig::start("").await;
        rig.add("m1", "");
        rig.add("m2", "X-Test-Reject: 451");
        rig.add("m3", "X-Test-Reject: 554");
        rig.add("m4", "");
        let report = rig.poll().await.expect("poll");
        assert_eq!(
            (report.delivered, report.deferred, report.rejected),
            (2, 1, 1),
            "{report:?}"
        );
        rig.assert_delivered_once(&["m1", "m4"]);
        assert_eq!(rig.pop3.uids(), ["m2", "m3"], "refused messages stay");
        let offers = rig.smtp.offers();
        assert_eq!(offers.len(), 4);
        assert!(offers.iter().all(|o| o.chunked), "every message with BDAT");
        let rejected = rig.record("m3").await.expect("m3 recorded");
        assert_eq!(rejected.state, MessageState::Rejected);
        let error = rejected.last_error.unwrap_or_default();
        assert!(error.contains("BDAT") && error.contains("554"), "{error}");
    })
    .await;
}
