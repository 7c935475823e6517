//! A domain mailbox distributed to its recipients (multidrop): each
//! message goes to the local addresses in the topmost envelope header,
//! a message naming none goes to `deliver_to`, and a message that already
//! went out through this account is not relayed again (the loop guard).

mod harness;
mod pop3_server;
mod rcpt_relay;
mod smtp_receiver;

use harness::within;
use popferry::deliver::trace_header;
use popferry::ledger::MessageState;
use rcpt_relay::world::World;
use rcpt_relay::{Behaviour, RcptRelay, Rule};

const FALLBACK: &str = "postmaster@example.org";
const MULTIDROP: &str = "recipients_from = \"X-Original-To\"\n\
                         local_domains = [\"example.org\", \"Example.NET\"]";

async fn domain_mailbox(extra: &str) -> World {
    let relay = RcptRelay::start(Behaviour::default()).await;
    let smtp = format!("host = \"127.0.0.1\"\nport = {}", relay.port());
    let extra = format!("{MULTIDROP}\n{extra}");
    World::with(relay, &smtp, Behaviour::default(), &[FALLBACK], &extra).await
}

fn message(uid: &str, envelope: &[&str]) -> Vec<u8> {
    let headers: String = envelope
        .iter()
        .map(|to| format!("X-Original-To: {to}\r\n"))
        .collect();
    format!(
        "{headers}Return-Path: <sender@example.com>\r\nFrom: sender@example.com\r\n\
         To: list@example.com\r\nSubject: {uid}\r\nX-Test-Uid: {uid}\r\n\r\nbody of {uid}\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn each_message_goes_to_the_local_recipients_its_envelope_header_names() {
    within(async {
        let world = domain_mailbox("").await;
        world.pop3.add("bob", &message("bob", &["bob@example.org"]));
        world
            .pop3
            .add("carol", &message("carol", &["Carol <carol@EXAMPLE.net>"]));
        world.pop3.add(
            "outside",
            &message("outside", &["someone@elsewhere.example"]),
        );
        world.pop3.add("none", &message("none", &[]));
        world.poll().await.expect("poll");
        let mut got: Vec<(String, String)> = (world.relay.deliveries().iter())
            .map(|d| {
                let text = String::from_utf8_lossy(&d.data).into_owned();
                let uid = harness::uid_of(text.as_bytes()).unwrap();
                (uid, d.to.clone())
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("bob".into(), "bob@example.org".into()),
                ("carol".into(), "carol@EXAMPLE.net".into()),
                ("none".into(), FALLBACK.into()),
                ("outside".into(), FALLBACK.into()),
            ]
        );
        assert!(world.pop3.uids().is_empty());
    })
    .await;
}

#[tokio::test]
async fn only_the_topmost_header_counts_so_a_sender_cannot_add_recipients() {
    within(async {
        let world = domain_mailbox("").await;
        // The provider's header is on top; the sender wrote the lower one.
        let forged = message("m1", &["bob@example.org", "boss@example.org"]);
        world.pop3.add("m1", &forged);
        world.poll().await.expect("poll");
        assert_eq!(world.relay.received("bob@example.org"), 1);
        assert_eq!(world.relay.received("boss@example.org"), 0);
        assert_eq!(world.relay.deliveries().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn several_local_recipients_share_one_transaction_and_keep_their_own_outcomes() {
    within(async {
        let world = domain_mailbox("").await;
        world.relay.set(
            "gone@example.org",
            Rule::AtRcpt("550 5.1.1 no such user".into()),
        );
        let header = "bob@example.org, gone@example.org, carol@example.net";
        world.pop3.add("m1", &message("m1", &[header]));
        world.poll().await.expect("poll");
        assert_eq!(
            world.relay.transactions(),
            [vec![
                "bob@example.org".to_owned(),
                "carol@example.net".to_owned()
            ]]
        );
        assert_eq!(world.relay.received("gone@example.org"), 0);
        assert_eq!(
            world.relay.received(FALLBACK),
            0,
            "the fallback is not a recipient"
        );
        assert!(world.pop3.uids().is_empty());
        let refusals = world.refusals().await;
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert_eq!(refusals[0].0, "gone@example.org");
    })
    .await;
}

#[tokio::test]
async fn a_message_that_came_back_through_this_account_is_not_relayed_again() {
    within(async {
        let world = domain_mailbox("").await;
        let mut looped = trace_header("127.0.0.1", "alice", "OLD1", true);
        looped.extend_from_slice(&message("m1", &["bob@example.org"]));
        world.pop3.add("m1", &looped);
        // The same header for another account, or for an account of the
        // same name on another server, is no loop of this one.
        let mut passed_on = trace_header("127.0.0.1", "alice-other", "OLD2", true);
        passed_on.extend_from_slice(&message("m2", &["bob@example.org"]));
        world.pop3.add("m2", &passed_on);
        let mut elsewhere = trace_header("pop.example.net", "alice", "OLD3", true);
        elsewhere.extend_from_slice(&message("m3", &["bob@example.org"]));
        world.pop3.add("m3", &elsewhere);
        world.poll().await.expect("poll");
        assert_eq!(world.relay.deliveries().len(), 2);
        assert_eq!(world.pop3.uids(), ["m1"], "the looping message stays");
        assert_eq!(world.state("m1").await, Some(MessageState::Rejected));
        let record = world
            .ledger
            .messages("alice")
            .await
            .unwrap()
            .remove("m1")
            .unwrap();
        assert!(record.last_error.unwrap().contains("mail loop"));
    })
    .await;
}

#[tokio::test]
async fn a_looping_message_goes_to_the_quarantine_when_there_is_one() {
    within(async {
        let world = domain_mailbox("quarantine_dir = \"quarantine\"").await;
        let mut looped = trace_header("127.0.0.1", "alice", "OLD1", true);
        looped.extend_from_slice(&message("m1", &["bob@example.org"]));
        world.pop3.add("m1", &looped);
        world.poll().await.expect("poll");
        assert_eq!(world.relay.deliveries(), []);
        assert!(world.pop3.uids().is_empty(), "quarantined, then deleted");
        assert_eq!(world.state("m1").await, Some(MessageState::Deleted));
    })
    .await;
}
