//! LMTP (RFC 2033, issue 12 part 3): `[smtp] protocol = "lmtp"` over TCP
//! and over a Unix socket (`[smtp] socket`), against Dovecot LMTP and the
//! scripted aiosmtpd, whose one reply per recipient after the data feeds
//! the per-recipient outcomes: a recipient refused after the data is
//! recorded rejected (5xx) or retried alone (4xx), never redelivered to the
//! recipients that have the message.
#![cfg(feature = "real-servers")]

mod support;

use std::path::Path;

use support::mail::{messages_of_size, mixed_messages};
use support::receivers::{
    aio_address, aio_delivered_to, aio_dumps, aiosmtpd, assert_each_once_intact, delivered,
    relay_table, scenario, settle, socket_table, tag, Server,
};
use support::scenario::Scenario;

fn dovecot_socket_table() -> String {
    let socket = std::env::var("POPFERRY_TEST_DOVECOT_LMTP_SOCKET")
        .expect("POPFERRY_TEST_DOVECOT_LMTP_SOCKET: run scripts/test.sh");
    socket_table(&socket, "lmtp")
}

fn dovecot_mixed(table: String, name: &str) {
    let lmtp = Server::DovecotLmtp;
    let s = scenario(
        name,
        table,
        |tag| vec![lmtp.address("ok1", tag)],
        |tag| mixed_messages(tag, 10),
    );
    let out = s.fetch_expecting(&[0], "fetch");
    let found = settle(&lmtp.maildir("ok1"), &tag(&s), 10);
    assert_each_once_intact(&s.messages, &found, name);
    s.assert_pop3_holds(0, &out);
}

#[test]
fn dovecot_lmtp_over_tcp_with_starttls_gets_each_message_once_intact() {
    dovecot_mixed(Server::DovecotLmtp.smtp_table(), "lmtp-tcp");
}

#[test]
fn dovecot_lmtp_over_its_unix_socket_gets_each_message_once_intact() {
    dovecot_mixed(dovecot_socket_table(), "lmtp-socket");
}

#[test]
fn dovecot_lmtp_over_quota_after_the_data_and_unknown_at_rcpt_are_rejected_and_the_message_deleted()
{
    let lmtp = Server::DovecotLmtp;
    let s = scenario(
        "lmtp-quota",
        dovecot_socket_table(),
        |tag| {
            ["ok1", "full", "nobody"]
                .map(|l| lmtp.address(l, tag))
                .to_vec()
        },
        // Bigger than the over-quota user's whole quota.
        |tag| messages_of_size(tag, 2, 4_000),
    );
    let out = s.fetch_expecting(&[0, 1], "fetch");
    let found = settle(&lmtp.maildir("ok1"), &tag(&s), 2);
    assert_each_once_intact(&s.messages, &found, "ok1");
    let full = std::env::var("POPFERRY_TEST_DOVECOT_LMTP_FULL_MAILDIR")
        .expect("POPFERRY_TEST_DOVECOT_LMTP_FULL_MAILDIR: run scripts/test.sh");
    assert!(
        delivered(Path::new(&full), &tag(&s)).is_empty(),
        "the over-quota user got a message\n{out}"
    );
    s.assert_pop3_holds(0, &out);
}

fn aio_lmtp(name: &str, rules: &'static [&'static str]) -> Scenario {
    let table = relay_table("127.0.0.1", aiosmtpd().lmtp_port, "none") + "protocol = \"lmtp\"\n";
    scenario(
        name,
        table,
        move |tag| rules.iter().map(|r| aio_address(r, tag)).collect(),
        |tag| messages_of_size(tag, 3, 2_000),
    )
}

#[test]
fn aiosmtpd_lmtp_550_after_the_data_is_rejected_and_the_message_deleted() {
    let s = aio_lmtp("aio-lmtp-550", &["ok", "data550"]);
    let out = s.fetch_expecting(&[0, 1], "fetch");
    let ok = aio_address("ok", &tag(&s));
    assert_each_once_intact(&s.messages, &aio_delivered_to(&tag(&s), &ok), "ok");
    s.assert_pop3_holds(0, &out);
}

#[test]
fn aiosmtpd_lmtp_450_after_the_data_keeps_the_message_and_never_redelivers_to_the_accepted_one() {
    let s = aio_lmtp("aio-lmtp-450", &["ok", "data450"]);
    let ok = aio_address("ok", &tag(&s));
    let out = s.fetch_expecting(&[0, 1], "fetch");
    assert_each_once_intact(&s.messages, &aio_delivered_to(&tag(&s), &ok), "first fetch");
    s.assert_pop3_holds(3, &out);
    let again = s.fetch_expecting(&[0, 1], "fetch");
    assert_each_once_intact(
        &s.messages,
        &aio_delivered_to(&tag(&s), &ok),
        "second fetch",
    );
    s.assert_pop3_holds(3, &again);
}

#[test]
fn aiosmtpd_lmtp_refusing_every_recipient_after_the_data_keeps_the_message_on_pop3() {
    let s = aio_lmtp("aio-lmtp-all", &["data550", "data550-again"]);
    let out = s.fetch_expecting(&[0, 1], "fetch");
    assert!(aio_dumps(&tag(&s)).is_empty(), "nothing may be kept\n{out}");
    s.assert_pop3_holds(3, &out);
}
