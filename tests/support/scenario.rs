//! One test's world: a fresh mailbox filled with messages, a recipient no
//! other test uses, and a configuration with one account for them, plus
//! the assertions most real-server tests make about what was delivered.

use std::collections::HashMap;
use std::time::Duration;

use super::mail::{self, TestMessage};
use super::popferry::{AccountConfig, RunOutput, TestConfig};
use super::real::{dumps_for, Dump, Mailbox};

#[derive(Debug)]
pub struct Scenario {
    pub mailbox: Mailbox,
    /// The only address the account delivers to; finds this test's dumps.
    pub rcpt: String,
    pub messages: Vec<TestMessage>,
    pub config: TestConfig,
}

impl Scenario {
    /// A mailbox for a unique user starting with `name`, holding the
    /// messages `make` returns (it gets a unique tag for their Message-IDs),
    /// and an account called `name` (POP3S, test CA) delivering to
    /// `<user>@example.org` through the accepting sink.
    pub fn new(name: &str, make: impl FnOnce(&str) -> Vec<TestMessage>) -> Self {
        let mailbox = Mailbox::create(name);
        let rcpt = format!("{}@example.org", mailbox.user);
        let messages = make(&mailbox.user);
        mailbox.add_all(&messages);
        let config = TestConfig::new(AccountConfig::new(name, &mailbox, &rcpt));
        Self {
            mailbox,
            rcpt,
            messages,
            config,
        }
    }

    /// Runs `popferry fetch`, which must exit with one of `allowed`.
    pub fn fetch_expecting(&self, allowed: &[i32], what: &str) -> RunOutput {
        let out = self.config.fetch();
        assert!(
            out.code.is_some_and(|code| allowed.contains(&code)),
            "{what}: expected an exit code in {allowed:?}\n{out}"
        );
        out
    }

    /// Asserts the mailbox comes to hold `count` messages within a few
    /// seconds (a server may still be committing the QUIT it got).
    pub fn assert_pop3_holds(&self, count: usize, after: &RunOutput) {
        assert_eq!(
            self.mailbox.wait_for_count(count, Duration::from_secs(5)),
            count,
            "POP3 should hold {count} messages\n{after}"
        );
    }

    pub fn account(&mut self) -> &mut AccountConfig {
        self.config.account()
    }

    pub fn dumps(&self) -> Vec<Dump> {
        dumps_for(&self.rcpt)
    }

    /// How often each Message-ID reached the sink for this test's recipient.
    /// Panics on a dump of a message that is not one of this test's.
    pub fn deliveries(&self) -> HashMap<String, usize> {
        let mut counts: HashMap<String, usize> = self
            .messages
            .iter()
            .map(|m| (m.message_id.clone(), 0))
            .collect();
        for dump in self.dumps() {
            let id = dump
                .message_id()
                .unwrap_or_else(|| panic!("{}: no Message-ID", dump.path.display()));
            *counts
                .get_mut(&id)
                .unwrap_or_else(|| panic!("{}: unknown Message-ID {id}", dump.path.display())) += 1;
        }
        counts
    }

    /// Every message reached the sink exactly once.
    pub fn assert_each_delivered_once(&self) {
        let wrong: Vec<_> = self
            .deliveries()
            .into_iter()
            .filter(|(_, n)| *n != 1)
            .collect();
        assert!(
            wrong.is_empty(),
            "{} messages, these not delivered exactly once (Message-ID, times): {wrong:?}",
            self.messages.len()
        );
        assert_eq!(
            self.dumps().len(),
            self.messages.len(),
            "dumps for {}",
            self.rcpt
        );
    }

    /// Every dump is popferry's `Received:` trace header followed by the
    /// original message, byte for byte (CRs aside, which the sink drops).
    pub fn assert_byte_identical(&self) {
        let originals: HashMap<&str, &TestMessage> = self
            .messages
            .iter()
            .map(|m| (m.message_id.as_str(), m))
            .collect();
        for dump in self.dumps() {
            let id = dump.message_id().expect("Message-ID");
            let original = originals.get(id.as_str()).expect("known Message-ID");
            let (trace, rest) = dump.split_trace_header();
            assert!(
                trace.starts_with(b"Received:"),
                "{}: first header should be popferry's Received:, is {:?}",
                dump.path.display(),
                String::from_utf8_lossy(trace)
            );
            mail::assert_same_bytes(
                &mail::without_cr(&original.bytes),
                rest,
                &format!(
                    "{} ({id}, {} bytes)",
                    dump.path.display(),
                    original.bytes.len()
                ),
            );
        }
    }
}
