//! Per-recipient refusals against real relays (issue 12, part 1): a full
//! Postfix smtpd, Exim (both PIPELINING, so they answer a pipelined DATA
//! with 354 as soon as one recipient was accepted) and aiosmtpd in its
//! broken "354 even with no recipient" mode. What each relay received is
//! checked in its Maildirs, queue and dumps: the accepted recipient gets
//! each message once and never an empty one, a 4xx recipient is retried
//! alone, and when every recipient is refused nothing is queued at all.
#![cfg(feature = "real-servers")]

mod support;

use std::thread;
use std::time::Duration;

use support::mail::messages_of_size;
use support::real::wait_until;
use support::receivers::{
    aio_address, aio_delivered_to, aio_dumps, aiosmtpd, assert_each_once_intact,
    assert_status_mentions_refusal, delivered, relay_table, scenario, settle, tag, Delivered,
    Server,
};
use support::scenario::Scenario;

const MESSAGES: usize = 3;

fn mta_scenario(server: Server, name: &str, locals: &'static [&'static str]) -> Scenario {
    scenario(
        name,
        server.smtp_table(),
        move |tag| locals.iter().map(|l| server.address(l, tag)).collect(),
        |tag| messages_of_size(tag, MESSAGES, 2_000),
    )
}

/// Everything of the test in any Maildir the server has.
fn anywhere(server: Server, tag: &str) -> Vec<Delivered> {
    ["ok1", "ok2", "nobody", "unknown", "tempfail"]
        .iter()
        .flat_map(|user| delivered(&server.maildir(user), tag))
        .collect()
}

fn accepted_and_550(server: Server, name: &str) {
    let s = mta_scenario(server, name, &["ok1", "nobody"]);
    let out = s.fetch_expecting(&[0, 1], "fetch");
    let found = settle(&server.maildir("ok1"), &tag(&s), MESSAGES);
    assert_each_once_intact(&s.messages, &found, name);
    s.assert_pop3_holds(0, &out);
    assert_status_mentions_refusal(&s);
}

fn accepted_and_450(server: Server, name: &str) {
    let s = mta_scenario(server, name, &["ok1", "tempfail"]);
    let out = s.fetch_expecting(&[0, 1], "first fetch");
    let maildir = server.maildir("ok1");
    assert_each_once_intact(&s.messages, &settle(&maildir, &tag(&s), MESSAGES), name);
    s.assert_pop3_holds(MESSAGES, &out);
    let again = s.fetch_expecting(&[0, 1], "second fetch");
    // Time for a second copy, if one was sent, to reach the Maildir.
    thread::sleep(Duration::from_secs(2));
    assert_each_once_intact(
        &s.messages,
        &settle(&maildir, &tag(&s), MESSAGES),
        &format!("{name}, after the second fetch"),
    );
    s.assert_pop3_holds(MESSAGES, &again);
}

fn every_recipient_refused(server: Server, name: &str) {
    let s = mta_scenario(server, name, &["nobody", "unknown"]);
    let out = s.fetch_expecting(&[0, 1], "fetch");
    assert!(
        !wait_until(Duration::from_secs(3), || !anywhere(server, &tag(&s))
            .is_empty()),
        "{name} delivered something with every recipient refused: {:?}\n{out}",
        anywhere(server, &tag(&s))
            .iter()
            .map(|d| d.headers())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        server.queued(&tag(&s)),
        Vec::<String>::new(),
        "queued\n{out}"
    );
    assert_eq!(
        server.ever_queued(&tag(&s)),
        Vec::<String>::new(),
        "ever queued\n{out}"
    );
    s.assert_pop3_holds(MESSAGES, &out);
}

#[test]
fn postfix_accepted_recipient_gets_each_message_once_when_the_other_gets_550() {
    accepted_and_550(Server::Postfix, "postfix-ok-550");
}

#[test]
fn exim_accepted_recipient_gets_each_message_once_when_the_other_gets_550() {
    accepted_and_550(Server::Exim, "exim-ok-550");
}

#[test]
fn postfix_450_recipient_keeps_the_message_and_a_second_fetch_sends_no_second_copy() {
    accepted_and_450(Server::Postfix, "postfix-ok-450");
}

#[test]
fn exim_450_recipient_keeps_the_message_and_a_second_fetch_sends_no_second_copy() {
    accepted_and_450(Server::Exim, "exim-ok-450");
}

#[test]
fn postfix_queues_nothing_when_every_recipient_gets_550() {
    every_recipient_refused(Server::Postfix, "postfix-550-550");
}

#[test]
fn exim_queues_nothing_when_every_recipient_gets_550() {
    every_recipient_refused(Server::Exim, "exim-550-550");
}

/// One connection at a time: `rcpt450once-` defers throughout the first
/// connection that names it, so every message of the first fetch meets it.
fn aio_scenario(name: &str, rules: &'static [&'static str]) -> Scenario {
    scenario(
        name,
        relay_table("127.0.0.1", aiosmtpd().broken_port, "none") + "max_connections = 1\n",
        move |tag| rules.iter().map(|r| aio_address(r, tag)).collect(),
        |tag| messages_of_size(tag, MESSAGES, 2_000),
    )
}

#[test]
fn aiosmtpd_accepted_recipient_gets_each_message_once_when_the_other_gets_550() {
    let s = aio_scenario("aio-ok-550", &["ok", "rcpt550"]);
    let out = s.fetch_expecting(&[0, 1], "fetch");
    let ok = aio_address("ok", &tag(&s));
    assert_each_once_intact(&s.messages, &aio_delivered_to(&tag(&s), &ok), "aiosmtpd");
    assert_eq!(
        aio_dumps(&tag(&s)).len(),
        MESSAGES,
        "one transaction per message\n{out}"
    );
    s.assert_pop3_holds(0, &out);
    assert_status_mentions_refusal(&s);
}

#[test]
fn aiosmtpd_450_recipient_is_retried_alone_at_the_next_fetch() {
    let s = aio_scenario("aio-ok-450once", &["ok", "rcpt450once"]);
    let (ok, later) = (
        aio_address("ok", &tag(&s)),
        aio_address("rcpt450once", &tag(&s)),
    );
    let out = s.fetch_expecting(&[0, 1], "first fetch");
    assert_each_once_intact(
        &s.messages,
        &aio_delivered_to(&tag(&s), &ok),
        "first fetch, ok",
    );
    s.assert_pop3_holds(MESSAGES, &out);

    let again = s.fetch_expecting(&[0, 1], "second fetch");
    assert_each_once_intact(
        &s.messages,
        &aio_delivered_to(&tag(&s), &ok),
        "second fetch, ok",
    );
    assert_each_once_intact(
        &s.messages,
        &aio_delivered_to(&tag(&s), &later),
        "second fetch, the recipient deferred once",
    );
    for dump in aio_dumps(&tag(&s)) {
        let rcpts = dump.rcpt_tos();
        assert!(
            rcpts == [ok.clone()] || rcpts == [later.clone()],
            "{}: each recipient in its own transaction, got {rcpts:?}",
            dump.stem.display()
        );
    }
    s.assert_pop3_holds(0, &again);
}

#[test]
fn aiosmtpd_answering_354_anyway_keeps_no_message_when_every_recipient_gets_550() {
    let s = aio_scenario("aio-550-550", &["rcpt550", "rcpt550-again"]);
    let out = s.fetch_expecting(&[0, 1], "fetch");
    let kept = aio_dumps(&tag(&s));
    assert!(
        kept.is_empty(),
        "the broken relay kept {} transactions (empty: {:?})\n{out}",
        kept.len(),
        kept.iter().map(|d| d.bytes.is_empty()).collect::<Vec<_>>()
    );
    s.assert_pop3_holds(MESSAGES, &out);
}
