//! A real Postfix with `smtpd_client_connection_count_limit = 2` (the
//! limited listener of scripts/lib/interop_postfix.sh): popferry, allowed
//! 8 connections, is refused the third with `421 4.7.0 ... too many
//! connections`, goes on with the connections Postfix keeps, and the poll
//! succeeds with every message delivered once and deleted.
#![cfg(feature = "real-servers")]

mod support;

use std::fs;

use support::mail::messages_of_size;
use support::real::env_num;
use support::receivers::{assert_each_once_intact, relay_table, scenario, settle, tag, Server};

const MESSAGES: usize = 40;

/// Postfix's log lines of refused connections (its anvil limit).
fn refusals_logged() -> usize {
    let path =
        std::env::var("POPFERRY_TEST_POSTFIX_MTA_LOG").expect("POPFERRY_TEST_POSTFIX_MTA_LOG");
    let log = fs::read_to_string(path).unwrap_or_default();
    log.lines()
        .filter(|line| line.contains("Connection concurrency limit exceeded"))
        .count()
}

#[test]
fn postfix_refusing_a_third_connection_gets_every_message_once_and_the_poll_succeeds() {
    let port: u16 = env_num(
        "POPFERRY_TEST_POSTFIX_MTA_LIMITED_PORT",
        "run scripts/test.sh",
    );
    let mut smtp = relay_table("localhost", port, "starttls");
    smtp += &format!(
        "username = \"{}\"\npassword = \"{}\"\nmax_connections = 8\n",
        std::env::var("POPFERRY_TEST_POSTFIX_MTA_USER").expect("user"),
        std::env::var("POPFERRY_TEST_POSTFIX_MTA_PASSWORD").expect("password"),
    );
    let server = Server::Postfix;
    let s = scenario(
        "postfix-connection-limit",
        smtp,
        move |tag| vec![server.address("ok1", tag)],
        |tag| messages_of_size(tag, MESSAGES, 2_000),
    );
    let before = refusals_logged();
    let out = s.fetch_expecting(&[0], "fetch through a relay that takes 2 connections");
    let found = settle(&server.maildir("ok1"), &tag(&s), MESSAGES);
    assert_each_once_intact(&s.messages, &found, "postfix, 2 connections");
    s.assert_pop3_holds(0, &out);
    assert!(
        refusals_logged() > before,
        "Postfix refused no connection, so this proved nothing:\n{out}"
    );
}
