//! Postfix and Exim offer CHUNKING (RFC 3030) and PIPELINING, so popferry
//! hands them each message with one `BDAT <n> LAST`, and each arrives
//! once, byte for byte. Their own logs say how it came: Postfix's smtpd
//! counts a session's commands in its "disconnect from" line (`bdat=10`,
//! and `data=` had DATA been used); Exim marks a message received in
//! chunks with a `K` in its `<=` line.
#![cfg(feature = "real-servers")]

mod support;

use std::fs;
use std::time::Duration;

use support::mail::mixed_messages;
use support::real::{env_var, wait_until};
use support::receivers::{assert_each_once_intact, scenario, settle, tag, Server};
use support::scenario::Scenario;

const MESSAGES: usize = 10;

fn delivered_through(server: Server, name: &str) -> Scenario {
    let s = scenario(
        name,
        server.smtp_table(),
        |tag| vec![server.address("ok1", tag)],
        |tag| mixed_messages(tag, MESSAGES),
    );
    let out = s.config.fetch();
    assert_eq!(out.code, Some(0), "fetch\n{out}");
    let found = settle(&server.maildir("ok1"), &tag(&s), MESSAGES);
    assert_each_once_intact(&s.messages, &found, name);
    s
}

/// The "disconnect from" line of the smtpd session that queued the
/// message whose Message-ID names `tag`.
fn postfix_session_summary(log: &str, tag: &str) -> Option<String> {
    let lines: Vec<&str> = log.lines().collect();
    let cleanup = lines
        .iter()
        .find(|l| l.contains("/cleanup[") && l.contains("message-id=") && l.contains(tag))?;
    let queue_id = cleanup.split("]: ").nth(1)?.split(':').next()?;
    let client = format!("{queue_id}: client=");
    let start = lines
        .iter()
        .position(|l| l.contains("/smtpd[") && l.contains(&client))?;
    let from_process = &lines[start][lines[start].find("/smtpd[")?..];
    let process = from_process.split(']').next()?.to_owned() + "]: disconnect from";
    lines[start..]
        .iter()
        .find(|l| l.contains(&process))
        .map(|l| (*l).to_owned())
}

#[test]
fn postfix_gets_every_message_with_bdat_and_none_with_data() {
    let s = delivered_through(Server::Postfix, "postfix-bdat");
    let log_path = env_var("POPFERRY_TEST_POSTFIX_MTA_LOG", "scripts/services.sh start");
    let mut summary = None;
    wait_until(Duration::from_secs(10), || {
        let log = fs::read_to_string(&log_path).unwrap_or_default();
        summary = postfix_session_summary(&log, &tag(&s));
        summary.is_some()
    });
    let summary = summary.expect("Postfix logged the session's end");
    assert!(
        summary.contains(&format!(" bdat={MESSAGES} ")),
        "every message with BDAT: {summary}"
    );
    assert!(!summary.contains(" data="), "DATA was used: {summary}");
}

#[test]
fn exim_gets_every_message_in_chunks() {
    let s = delivered_through(Server::Exim, "exim-bdat");
    let log_path = env_var("POPFERRY_TEST_EXIM_LOG", "scripts/services.sh start");
    let log = fs::read_to_string(&log_path).expect("read Exim's main log");
    for message in &s.messages {
        let id = message.message_id.trim_matches(['<', '>']);
        let arrival = log
            .lines()
            .find(|l| l.contains(" <= ") && l.contains(&format!(" id={id}")))
            .unwrap_or_else(|| panic!("Exim logged no arrival of {id}"));
        assert!(arrival.contains(" K "), "not received in chunks: {arrival}");
    }
}
