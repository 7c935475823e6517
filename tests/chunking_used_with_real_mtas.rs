//! Postfix and Exim offer CHUNKING (RFC 3030) and PIPELINING, so popferry
//! hands them each message with one `BDAT <n> LAST`, and each arrives
//! once, byte for byte. Their own logs say how it came: Postfix's smtpd
//! counts a session's commands in its "disconnect from" line (`bdat=10`,
//! and `data=` had DATA been used); Exim marks a message received in
//! chunks with a `K` in its `<=` line.
#![cfg(feature = "real-servers")]

mod support;

use std::collections::BTreeSet;
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

/// The "disconnect from" lines of the smtpd sessions that queued the
/// messages whose Message-IDs name `tag` (several: popferry delivers over
/// parallel connections), once every one of the `MESSAGES` is logged.
fn postfix_session_summaries(log: &str, tag: &str) -> Option<BTreeSet<String>> {
    let lines: Vec<&str> = log.lines().collect();
    let queued: Vec<&&str> = (lines.iter())
        .filter(|l| l.contains("/cleanup[") && l.contains("message-id=") && l.contains(tag))
        .collect();
    if queued.len() < MESSAGES {
        return None;
    }
    let mut sessions = BTreeSet::new();
    for cleanup in queued {
        let queue_id = cleanup.split("]: ").nth(1)?.split(':').next()?;
        let client = format!("{queue_id}: client=");
        let start = (lines.iter()).position(|l| l.contains("/smtpd[") && l.contains(&client))?;
        let from_process = &lines[start][lines[start].find("/smtpd[")?..];
        let process = from_process.split(']').next()?.to_owned() + "]: disconnect from";
        let end = lines[start..].iter().find(|l| l.contains(&process))?;
        sessions.insert((*end).to_owned());
    }
    Some(sessions)
}

/// The count after `key=` in a Postfix session summary, 0 if absent.
fn summary_count(summary: &str, key: &str) -> usize {
    (summary.split(' '))
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn postfix_gets_every_message_with_bdat_and_none_with_data() {
    let s = delivered_through(Server::Postfix, "postfix-bdat");
    let log_path = env_var("POPFERRY_TEST_POSTFIX_MTA_LOG", "scripts/services.sh start");
    let mut summaries = None;
    wait_until(Duration::from_secs(10), || {
        let log = fs::read_to_string(&log_path).unwrap_or_default();
        summaries = postfix_session_summaries(&log, &tag(&s));
        summaries.is_some()
    });
    let summaries = summaries.expect("Postfix logged the end of every session");
    let bdat: usize = summaries.iter().map(|l| summary_count(l, "bdat")).sum();
    assert_eq!(bdat, MESSAGES, "every message with BDAT: {summaries:#?}");
    assert!(
        summaries.iter().all(|l| summary_count(l, "data") == 0),
        "DATA was used: {summaries:#?}"
    );
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
