//! The real `popferry` binary against five POP3 servers: Dovecot, GNU
//! Mailutils, Courier, Cyrus and popa3d (`scripts/services.sh` starts them;
//! `scripts/lib/interop_pop3.sh` says how), relaying to smtp-sink.
//!
//! For each server: mixed messages arrive once and intact; a QUIT whose
//! reply is lost heals on the next fetch; `keep = true` delivers each
//! message once over two fetches. One test per server and check, each with
//! its own mailbox user and recipient, so they all run in parallel.
#![cfg(feature = "real-servers")]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use support::interop_pop3::{Server, ServerMailbox};
use support::link_proxy::{Cut, CutAt, LinkProxy};
use support::mail::{message, TestMessage};
use support::popferry::{RunOutput, TestConfig, TlsMode};
use support::real::{dumps_for, unique};

/// Sizes of the 20 mixed messages: small to 300 KB.
const SIZES: [usize; 20] = [
    200, 300_000, 1_000, 4_096, 513, 64_000, 12_345, 150_000, 8_192, 1_500, 30_000, 250_000, 700,
    100_000, 2_048, 40_000, 999, 200_000, 16_384, 5_000,
];

/// Which fixed user of a server each check takes (see interop_pop3.sh).
const MIXED_USER: usize = 1;
const LOST_QUIT_USER: usize = 2;
const KEEP_USER: usize = 3;

/// One test's mailbox, recipient, messages (already in the mailbox) and
/// configuration.
struct Case {
    mailbox: ServerMailbox,
    rcpt: String,
    messages: Vec<TestMessage>,
    config: TestConfig,
}

impl Case {
    fn new(server: Server, user: usize, check: &str, tls: TlsMode, sizes: &[usize]) -> Self {
        let mailbox = ServerMailbox::new(server, user);
        let tag = unique(&format!("{server:?}-{check}").to_lowercase());
        let rcpt = format!("{tag}@example.org");
        let messages: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(index, &size)| message(&tag, index, size))
            .collect();
        mailbox.put(&messages);
        assert_eq!(
            mailbox.count(),
            messages.len(),
            "{server:?} should list what was put in"
        );
        let config = TestConfig::new(mailbox.account(check, tls, &rcpt));
        Self {
            mailbox,
            rcpt,
            messages,
            config,
        }
    }

    fn fetch(&self, allowed: &[i32], what: &str) -> RunOutput {
        let out = self.config.fetch();
        assert!(
            out.code.is_some_and(|code| allowed.contains(&code)),
            "{:?} {what}: expected exit code in {allowed:?}\n{out}",
            self.mailbox.server
        );
        out
    }

    /// Every message reached the sink exactly once, as the server serves
    /// it, behind popferry's trace header.
    fn assert_each_delivered_once_intact(&self, after: &RunOutput) {
        let originals: HashMap<&str, &TestMessage> = self
            .messages
            .iter()
            .map(|m| (m.message_id.as_str(), m))
            .collect();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for dump in dumps_for(&self.rcpt) {
            let id = dump
                .message_id()
                .unwrap_or_else(|| panic!("{}: no Message-ID", dump.path.display()));
            let original = originals
                .get(id.as_str())
                .unwrap_or_else(|| panic!("{}: unknown Message-ID {id}", dump.path.display()));
            let (trace, rest) = dump.split_trace_header();
            assert!(
                trace.starts_with(b"Received:"),
                "{}: first header should be popferry's Received:",
                dump.path.display()
            );
            let what = format!("{:?}: {} ({id})", self.mailbox.server, dump.path.display());
            self.mailbox.assert_served_intact(original, rest, &what);
            *seen.entry(id).or_default() += 1;
        }
        let wrong: Vec<_> = self
            .messages
            .iter()
            .map(|m| (m.message_id.as_str(), seen.get(&m.message_id).copied()))
            .filter(|(_, n)| *n != Some(1))
            .collect();
        assert!(
            wrong.is_empty(),
            "{:?}: of {} messages, these not delivered exactly once: {wrong:?}\n{after}",
            self.mailbox.server,
            self.messages.len()
        );
    }
}

/// STLS where the server has it: it is the path most servers get wrong.
fn stls_or_plain(server: Server) -> TlsMode {
    if server == Server::Popa3d {
        TlsMode::None
    } else {
        TlsMode::StartTls
    }
}

fn implicit_or_plain(server: Server) -> TlsMode {
    if server.pop3s_port().is_some() {
        TlsMode::Implicit
    } else {
        TlsMode::None
    }
}

fn mixed_messages_arrive_once_and_intact(server: Server) {
    let case = Case::new(server, MIXED_USER, "mixed", stls_or_plain(server), &SIZES);
    let out = case.fetch(&[0], &format!("fetch from {}", server.version()));
    case.assert_each_delivered_once_intact(&out);
    assert_eq!(case.mailbox.count(), 0, "mailbox should be empty\n{out}");
}

fn lost_quit_reply_heals_without_redelivery(server: Server) {
    let mut case = Case::new(
        server,
        LOST_QUIT_USER,
        "lostquit",
        TlsMode::None,
        &SIZES[..6],
    );
    let proxy = LinkProxy::start(
        server.plain_port(),
        Some(CutAt::new("QUIT", 1, Cut::BeforeReply)),
    );
    case.config.account().port = proxy.port();
    let first = case.fetch(&[0, 1], "fetch whose QUIT reply is lost");
    assert!(proxy.has_cut(), "popferry never sent QUIT:\n{first}");
    case.assert_each_delivered_once_intact(&first);
    // The server may still be committing the QUIT it got.
    case.mailbox.wait_for_count(0, Duration::from_secs(5));

    case.config.account().port = server.plain_port();
    let second = case.fetch(&[0], "second fetch, direct");
    case.assert_each_delivered_once_intact(&second);
    assert_eq!(
        case.mailbox.count(),
        0,
        "every delivered message should be gone\n{second}"
    );
}

fn keep_mode_delivers_each_message_once(server: Server) {
    let mut case = Case::new(
        server,
        KEEP_USER,
        "keep",
        implicit_or_plain(server),
        &SIZES[..8],
    );
    case.config.account().keep = true;
    let first = case.fetch(&[0], "first fetch, keep = true");
    case.assert_each_delivered_once_intact(&first);
    let second = case.fetch(&[0], "second fetch, keep = true");
    case.assert_each_delivered_once_intact(&second);
    assert_eq!(
        case.mailbox.count(),
        case.messages.len(),
        "keep = true must delete nothing\n{second}"
    );
}

/// One module per server, one test per check.
macro_rules! server_tests {
    ($($module:ident => $server:expr),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[test]
            fn mixed_messages_arrive_once_and_intact() {
                super::mixed_messages_arrive_once_and_intact($server);
            }

            #[test]
            fn lost_quit_reply_heals_without_redelivery() {
                super::lost_quit_reply_heals_without_redelivery($server);
            }

            #[test]
            fn keep_mode_delivers_each_message_once() {
                super::keep_mode_delivers_each_message_once($server);
            }
        }
    )*};
}

server_tests! {
    dovecot => Server::Dovecot,
    mailutils => Server::Mailutils,
    courier => Server::Courier,
    cyrus => Server::Cyrus,
    popa3d => Server::Popa3d,
}

/// popa3d derives each unique-id from the message's content, so two
/// identical messages share one (RFC 1939 allows it). popferry delivers
/// such copies once and deletes them all, and the rest of the mailbox
/// moves as usual.
#[test]
fn popa3d_identical_copies_sharing_a_unique_id_are_delivered_once_and_all_deleted() {
    const COPIES_USER: usize = 4;
    let server = Server::Popa3d;
    let mailbox = ServerMailbox::new(server, COPIES_USER);
    let tag = unique("popa3d-copies");
    let rcpt = format!("{tag}@example.org");
    let twin = message(&tag, 0, 2_000);
    let other = message(&tag, 1, 3_000);
    mailbox.put(&[twin.clone(), other.clone(), twin.clone()]);
    assert_eq!(mailbox.count(), 3, "popa3d should list all three");
    let config = TestConfig::new(mailbox.account("copies", TlsMode::None, &rcpt));
    let out = config.fetch();
    assert_eq!(out.code, Some(0), "{out}");
    let mut ids: Vec<String> = dumps_for(&rcpt)
        .iter()
        .map(|dump| dump.message_id().expect("Message-ID"))
        .collect();
    ids.sort();
    let mut expected = vec![twin.message_id.clone(), other.message_id.clone()];
    expected.sort();
    assert_eq!(
        ids, expected,
        "each message once, the twin not twice\n{out}"
    );
    assert_eq!(mailbox.count(), 0, "both copies deleted\n{out}");
}
