//! The receivers of the interop suite (`scripts/lib/interop_mta.sh`): a
//! full Postfix smtpd and Exim delivering into Maildirs, Dovecot LMTP, and
//! the scripted aiosmtpd that keeps every message it completed. Tests find
//! their own deliveries by a tag (the test's unique POP3 user) that appears
//! in the recipient address (`ok1+TAG@domain`, `rcpt550-TAG@...`), which
//! the servers copy into the headers they add, and in every Message-ID of
//! the test's messages: so even an empty message is found.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use super::mail::{self, TestMessage};
use super::real::{env, env_num, env_var, wait_until};
use super::scenario::Scenario;

const HINT: &str = "run scripts/test.sh (its services.sh starts the interop receivers)";

/// How long a server may take to move an accepted message into a Maildir
/// (Postfix and Exim deliver after their 250).
pub const SETTLE: Duration = Duration::from_secs(15);

fn var(name: &str) -> String {
    env_var(name, HINT)
}

fn port(name: &str) -> u16 {
    env_num(name, HINT)
}

/// One of the Maildir-delivering servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Postfix,
    Exim,
    DovecotLmtp,
}

impl Server {
    fn prefix(self) -> &'static str {
        match self {
            Self::Postfix => "POPFERRY_TEST_POSTFIX_MTA",
            Self::Exim => "POPFERRY_TEST_EXIM",
            Self::DovecotLmtp => "POPFERRY_TEST_DOVECOT_LMTP",
        }
    }

    fn get(self, what: &str) -> String {
        var(&format!("{}_{what}", self.prefix()))
    }

    pub fn port(self) -> u16 {
        port(&format!("{}_PORT", self.prefix()))
    }

    pub fn domain(self) -> String {
        self.get("DOMAIN")
    }

    /// `LOCAL+tag@domain`: lands in LOCAL's Maildir when LOCAL is ok1/ok2.
    pub fn address(self, local: &str, tag: &str) -> String {
        format!("{local}+{tag}@{}", self.domain())
    }

    /// The Maildir (with new/ and cur/) of `user`.
    pub fn maildir(self, user: &str) -> PathBuf {
        let root = PathBuf::from(self.get("MAIL_ROOT"));
        match self {
            Self::Postfix => root.join(user),
            Self::Exim | Self::DovecotLmtp => root.join(user).join("Maildir"),
        }
    }

    /// The `[smtp]` table for this server: STARTTLS with the test CA, and
    /// AUTH where the server offers it.
    pub fn smtp_table(self) -> String {
        let mut table = relay_table("localhost", self.port(), "starttls");
        if self != Self::DovecotLmtp {
            table += &format!(
                "username = \"{}\"\npassword = \"{}\"\n",
                self.get("USER"),
                self.get("PASSWORD")
            );
        }
        if self == Self::DovecotLmtp {
            table += "protocol = \"lmtp\"\n";
        }
        table
    }

    /// What the server still holds in its queue that names `tag` (Postfix:
    /// `postqueue -j` lines, Exim: spool header files). Empty for LMTP.
    pub fn queued(self, tag: &str) -> Vec<String> {
        match self {
            Self::Postfix => {
                let out = Command::new("postqueue")
                    .args(["-c", &self.get("CONFIG_DIR"), "-j"])
                    .output()
                    .expect("run postqueue");
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| l.contains(tag))
                    .map(str::to_owned)
                    .collect()
            }
            Self::Exim => {
                let input = Path::new(&self.get("SPOOL_DIR")).join("input");
                files_in(&input)
                    .into_iter()
                    .filter(|p| fs::read(p).is_ok_and(|b| mail::find(&b, tag.as_bytes()).is_some()))
                    .map(|p| p.display().to_string())
                    .collect()
            }
            Self::DovecotLmtp => Vec::new(),
        }
    }

    /// Postfix's log lines saying cleanup queued a message of this test
    /// (every queued message is logged with its Message-ID, even one later
    /// delivered or bounced). Empty for the others.
    pub fn ever_queued(self, tag: &str) -> Vec<String> {
        if self != Self::Postfix {
            return Vec::new();
        }
        let log = fs::read_to_string(self.get("LOG")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("message-id=") && l.contains(tag))
            .map(str::to_owned)
            .collect()
    }
}

/// The body of an `[smtp]` table for `host:port` with `tls`, trusting the
/// test CA.
pub fn relay_table(host: &str, port: u16, tls: &str) -> String {
    format!(
        "host = \"{host}\"\nport = {port}\ntls = \"{tls}\"\nca_file = \"{}\"\ntimeout = \"30s\"\n",
        env().ca_file.display()
    )
}

/// The `[smtp]` table for a Unix socket, `protocol` "smtp" or "lmtp".
pub fn socket_table(socket: &str, protocol: &str) -> String {
    format!("socket = \"{socket}\"\nprotocol = \"{protocol}\"\ntls = \"none\"\ntimeout = \"30s\"\n")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
}

/// One message file a server delivered.
#[derive(Debug)]
pub struct Delivered {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

impl Delivered {
    /// The header section, the server's own trace headers included.
    pub fn headers(&self) -> String {
        let text = mail::without_cr(&self.bytes);
        let end = mail::find(&text, b"\n\n").unwrap_or(text.len());
        String::from_utf8_lossy(&text[..end]).into_owned()
    }
}

/// The messages in `maildir` (new/ and cur/) whose headers name `tag`.
pub fn delivered(maildir: &Path, tag: &str) -> Vec<Delivered> {
    ["new", "cur"]
        .iter()
        .flat_map(|sub| files_in(&maildir.join(sub)))
        .filter_map(|path| {
            let bytes = fs::read(&path).ok()?;
            let found = Delivered { path, bytes };
            found.headers().contains(tag).then_some(found)
        })
        .collect()
}

/// Waits until `maildir` holds `count` messages of `tag`, then a little
/// longer so a late extra copy would show; returns what is there.
pub fn settle(maildir: &Path, tag: &str, count: usize) -> Vec<Delivered> {
    wait_until(SETTLE, || delivered(maildir, tag).len() >= count);
    thread::sleep(Duration::from_millis(500));
    delivered(maildir, tag)
}

/// Each of `messages` is in `found` exactly once, intact: the file ends
/// with the original (CRs aside: Maildirs hold LF), right after popferry's
/// `Received:` header. Nothing else of the test is there (no empty
/// message).
pub fn assert_each_once_intact(messages: &[TestMessage], found: &[Delivered], what: &str) {
    let mut seen: HashMap<&str, usize> = messages
        .iter()
        .map(|m| (m.message_id.as_str(), 0))
        .collect();
    for file in found {
        let id = mail::message_id(&mail::without_cr(&file.bytes));
        let original = id
            .as_deref()
            .and_then(|id| messages.iter().find(|m| m.message_id == id))
            .unwrap_or_else(|| {
                panic!(
                    "{what}: {} is none of the test's messages (an empty message?):\n{}",
                    file.path.display(),
                    file.headers()
                )
            });
        *seen.get_mut(original.message_id.as_str()).expect("known") += 1;
        let got = mail::without_cr(&file.bytes);
        let want = mail::without_cr(&original.bytes);
        let start = got.len().checked_sub(want.len()).unwrap_or_else(|| {
            panic!(
                "{what}: {} is shorter than the original",
                file.path.display()
            )
        });
        mail::assert_same_bytes(
            &want,
            &got[start..],
            &format!("{what}: {}", file.path.display()),
        );
        let trace = String::from_utf8_lossy(&got[..start]);
        assert!(
            trace.contains("by popferry"),
            "{what}: {} lacks popferry's Received: header before the message:\n{trace}",
            file.path.display()
        );
    }
    let wrong: Vec<_> = seen.into_iter().filter(|(_, n)| *n != 1).collect();
    assert!(
        wrong.is_empty(),
        "{what}: not delivered exactly once (Message-ID, times): {wrong:?}"
    );
}

/// The aiosmtpd listeners and their dumps.
#[derive(Debug)]
pub struct Aiosmtpd {
    /// STARTTLS, then AUTH; PIPELINING, 8BITMIME, SMTPUTF8.
    pub port: u16,
    /// No STARTTLS, AUTH, PIPELINING, 8BITMIME or SMTPUTF8.
    pub plain_port: u16,
    /// Answers DATA with 354 even when every RCPT was refused.
    pub broken_port: u16,
    pub lmtp_port: u16,
    /// SMTP over a Unix socket.
    pub socket: String,
    pub dump_dir: PathBuf,
    pub user: String,
    pub password: String,
}

pub fn aiosmtpd() -> &'static Aiosmtpd {
    static AIO: OnceLock<Aiosmtpd> = OnceLock::new();
    AIO.get_or_init(|| Aiosmtpd {
        port: port("POPFERRY_TEST_AIOSMTPD_PORT"),
        plain_port: port("POPFERRY_TEST_AIOSMTPD_PLAIN_PORT"),
        broken_port: port("POPFERRY_TEST_AIOSMTPD_BROKEN_PORT"),
        lmtp_port: port("POPFERRY_TEST_AIOSMTPD_LMTP_PORT"),
        socket: var("POPFERRY_TEST_AIOSMTPD_SOCKET"),
        dump_dir: var("POPFERRY_TEST_AIOSMTPD_DUMP_DIR").into(),
        user: var("POPFERRY_TEST_AIOSMTPD_USER"),
        password: var("POPFERRY_TEST_AIOSMTPD_PASSWORD"),
    })
}

/// An address at aiosmtpd whose local part picks its reply: "ok" (250),
/// "rcpt550", "rcpt450", "rcpt450once", "data550", "data450".
pub fn aio_address(rule: &str, tag: &str) -> String {
    format!("{rule}-{tag}@aiosmtpd.popferry.test")
}

/// One transaction aiosmtpd completed.
#[derive(Debug)]
pub struct AioDump {
    pub stem: PathBuf,
    pub meta: serde_json::Value,
    /// As received: dot-unstuffed, CRLF.
    pub bytes: Vec<u8>,
}

impl AioDump {
    pub fn rcpt_tos(&self) -> Vec<String> {
        strings(&self.meta["rcpt_tos"])
    }

    pub fn mail_options(&self) -> Vec<String> {
        strings(&self.meta["mail_options"])
    }
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Every kept transaction whose recipients (given or refused) name `tag`.
pub fn aio_dumps(tag: &str) -> Vec<AioDump> {
    let dir = &aiosmtpd().dump_dir;
    files_in(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|json| {
            let text = fs::read_to_string(&json).ok()?;
            let meta: serde_json::Value = serde_json::from_str(&text).ok()?;
            let names_tag = strings(&meta["rcpt_tos"]).iter().any(|r| r.contains(tag))
                || meta["refused"].to_string().contains(tag);
            let stem = json.with_extension("");
            let bytes = fs::read(stem.with_extension("eml")).ok()?;
            names_tag.then_some(AioDump { stem, meta, bytes })
        })
        .collect()
}

/// aiosmtpd's dumps as [`Delivered`] files for `rcpt`, for
/// [`assert_each_once_intact`].
pub fn aio_delivered_to(tag: &str, rcpt: &str) -> Vec<Delivered> {
    aio_dumps(tag)
        .into_iter()
        .filter(|d| d.rcpt_tos().iter().any(|r| r == rcpt))
        .map(|d| Delivered {
            path: d.stem,
            bytes: d.bytes,
        })
        .collect()
}

/// A scenario whose account delivers to `deliver_to` through the relay
/// described by the `[smtp]` table body `smtp`.
pub fn scenario(
    name: &str,
    smtp: String,
    deliver_to: impl Fn(&str) -> Vec<String>,
    make: impl FnOnce(&str) -> Vec<TestMessage>,
) -> Scenario {
    let mut s = Scenario::new(name, make);
    let tag = s.mailbox.user.clone();
    s.account().deliver_to = deliver_to(&tag);
    s.config.smtp_table = Some(smtp);
    s
}

/// The scenario's tag: its unique POP3 user.
pub fn tag(s: &Scenario) -> String {
    s.mailbox.user.clone()
}

/// `status` names a rejection of some kind for the account (checked
/// loosely: the output is still changing).
pub fn assert_status_mentions_refusal(s: &Scenario) {
    let status = s.config.status();
    let text = status.text().to_lowercase();
    assert!(
        text.contains("reject") || text.contains("refus"),
        "status should mention the refusal:\n{status}"
    );
}
