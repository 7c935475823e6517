//! popferry fetching from the real Dovecot and delivering through each
//! receiver of the interop suite (`scripts/lib/interop_mta.sh`): a full
//! Postfix smtpd and Exim (both with STARTTLS and AUTH, into Maildirs) and
//! the scripted aiosmtpd (with STARTTLS and AUTH; with no extensions at
//! all; over a Unix socket). Ten mixed messages (dot lines, 8-bit bytes,
//! up to 2 MiB) must arrive once each, byte for byte.
#![cfg(feature = "real-servers")]

mod support;

use std::time::Duration;

use support::mail::mixed_messages;
use support::popferry::RunOutput;
use support::receivers::{
    aio_address, aio_delivered_to, aio_dumps, aiosmtpd, assert_each_once_intact, relay_table,
    scenario, settle, socket_table, tag, Server,
};
use support::scenario::Scenario;

const MESSAGES: usize = 10;

fn assert_success(out: &RunOutput, what: &str) {
    assert_eq!(out.code, Some(0), "{what}\n{out}");
}

fn assert_mailbox_emptied(s: &Scenario, out: &RunOutput) {
    assert_eq!(
        s.mailbox.wait_for_count(0, Duration::from_secs(5)),
        0,
        "every message should be gone from POP3\n{out}"
    );
}

fn through_mta(server: Server, name: &str) {
    let s = scenario(
        name,
        server.smtp_table(),
        |tag| vec![server.address("ok1", tag)],
        |tag| mixed_messages(tag, MESSAGES),
    );
    let out = s.config.fetch();
    assert_success(&out, "fetch");
    let found = settle(&server.maildir("ok1"), &tag(&s), MESSAGES);
    assert_each_once_intact(&s.messages, &found, name);
    assert_mailbox_emptied(&s, &out);
    assert!(
        server.queued(&tag(&s)).is_empty(),
        "nothing may stay queued"
    );
}

#[test]
fn postfix_with_starttls_and_auth_gets_each_message_once_intact() {
    through_mta(Server::Postfix, "postfix-mixed");
}

#[test]
fn exim_with_starttls_and_auth_gets_each_message_once_intact() {
    through_mta(Server::Exim, "exim-mixed");
}

/// Delivers the scenario's messages to one aiosmtpd recipient and checks
/// what the receiver kept; returns the dumps' MAIL parameters.
fn through_aiosmtpd(s: &Scenario, name: &str) -> Vec<Vec<String>> {
    let rcpt = aio_address("ok", &tag(s));
    let out = s.config.fetch();
    assert_success(&out, "fetch");
    assert_each_once_intact(&s.messages, &aio_delivered_to(&tag(s), &rcpt), name);
    assert_mailbox_emptied(s, &out);
    aio_dumps(&tag(s))
        .iter()
        .map(|d| d.mail_options())
        .collect()
}

#[test]
fn aiosmtpd_with_starttls_and_auth_gets_each_message_once_intact() {
    let aio = aiosmtpd();
    let table = relay_table("localhost", aio.port, "starttls")
        + &format!(
            "username = \"{}\"\npassword = \"{}\"\n",
            aio.user, aio.password
        );
    let s = scenario(
        "aio-mixed",
        table,
        |tag| vec![aio_address("ok", tag)],
        |tag| mixed_messages(tag, MESSAGES),
    );
    through_aiosmtpd(&s, "aiosmtpd STARTTLS+AUTH");
    for dump in aio_dumps(&tag(&s)) {
        assert_eq!(
            dump.meta["tls"],
            true,
            "{}: not over TLS",
            dump.stem.display()
        );
        assert_eq!(
            dump.meta["auth"],
            aio.user,
            "{}: not authenticated",
            dump.stem.display()
        );
    }
}

#[test]
fn aiosmtpd_offering_no_extensions_gets_each_message_once_intact_without_mail_parameters_it_did_not_offer(
) {
    let s = scenario(
        "aio-plain",
        relay_table("127.0.0.1", aiosmtpd().plain_port, "none"),
        |tag| vec![aio_address("ok", tag)],
        |tag| mixed_messages(tag, MESSAGES),
    );
    for options in through_aiosmtpd(&s, "aiosmtpd without extensions") {
        assert!(
            !options
                .iter()
                .any(|o| o.starts_with("BODY=") || o == "SMTPUTF8"),
            "MAIL FROM used parameters the relay did not offer: {options:?}"
        );
    }
}

#[test]
fn aiosmtpd_over_a_unix_socket_gets_each_message_once_intact() {
    let s = scenario(
        "aio-socket",
        socket_table(&aiosmtpd().socket, "smtp"),
        |tag| vec![aio_address("ok", tag)],
        |tag| mixed_messages(tag, MESSAGES),
    );
    through_aiosmtpd(&s, "aiosmtpd over a Unix socket");
}
