//! The POP3 servers of the interop suite: Dovecot (the one every other
//! test uses) and the GNU Mailutils, Courier, Cyrus and popa3d instances of
//! `scripts/lib/interop_pop3.sh`. For each: where popferry connects, how a
//! test puts mail into one user's mailbox, and what the server does to a
//! message on the way (some add headers, popa3d keeps mbox quoting), so a
//! test can tell those from damage done by popferry.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use super::mail::{self, TestMessage};
use super::popferry::{AccountConfig, TlsMode};
use super::raw::{connect, Wire};
use super::real::{env, env_num, env_var, unique, wait_until, Mailbox};

const HINT: &str = "run scripts/test.sh (its services.sh starts the POP3 interop servers)";

/// The group that owns mbox files, as on Debian.
const MAIL_GID: u32 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Dovecot,
    Mailutils,
    Courier,
    Cyrus,
    Popa3d,
}

fn var(name: &str) -> String {
    env_var(name, HINT)
}

fn port(name: &str) -> u16 {
    env_num(name, HINT)
}

impl Server {
    fn var_prefix(self) -> &'static str {
        match self {
            Self::Dovecot => "DOVECOT",
            Self::Mailutils => "MAILUTILS",
            Self::Courier => "COURIER",
            Self::Cyrus => "CYRUS",
            Self::Popa3d => "POPA3D",
        }
    }

    /// Plain POP3; every server but popa3d offers STLS there.
    pub fn plain_port(self) -> u16 {
        match self {
            Self::Dovecot => env().pop3_port,
            _ => port(&format!("POPFERRY_TEST_{}_POP3_PORT", self.var_prefix())),
        }
    }

    /// POP3 over implicit TLS; popa3d has no TLS at all.
    pub fn pop3s_port(self) -> Option<u16> {
        match self {
            Self::Dovecot => Some(env().pop3s_port),
            Self::Popa3d => None,
            _ => Some(port(&format!(
                "POPFERRY_TEST_{}_POP3S_PORT",
                self.var_prefix()
            ))),
        }
    }

    /// The Debian package version services.sh recorded.
    pub fn version(self) -> String {
        var(&format!("POPFERRY_TEST_{}_VERSION", self.var_prefix()))
    }

    /// Login number `n` (1-based) of the server's fixed users. Dovecot
    /// takes any name, so there every call makes a new one.
    fn login(self, n: usize) -> String {
        if self == Self::Dovecot {
            return unique("interop");
        }
        let users = var(&format!("POPFERRY_TEST_{}_USERS", self.var_prefix()));
        users
            .split_whitespace()
            .nth(n - 1)
            .unwrap_or_else(|| panic!("{self:?} has fewer than {n} users: {users}"))
            .to_owned()
    }
}

/// Where one user's mail goes in.
#[derive(Debug)]
enum Store {
    Dovecot(Mailbox),
    /// A Maildir folder (with cur/new/tmp) and the owner for its files.
    Maildir(PathBuf, u32, u32),
    /// Cyrus's LMTP unix socket and the recipient.
    Lmtp(PathBuf, String),
    /// An mbox file.
    Mbox(PathBuf),
}

/// One user's mailbox on one server.
#[derive(Debug)]
pub struct ServerMailbox {
    pub server: Server,
    /// What popferry logs in with.
    pub login: String,
    store: Store,
}

impl ServerMailbox {
    /// The `n`-th fixed user of `server` (a new user on Dovecot), emptied
    /// of whatever an earlier run left there.
    pub fn new(server: Server, n: usize) -> Self {
        let login = server.login(n);
        let env = env();
        let local = login.split('@').next().expect("login").to_owned();
        let root = |what: &str| -> PathBuf {
            var(&format!("POPFERRY_TEST_{}_{what}", server.var_prefix())).into()
        };
        let store = match server {
            Server::Dovecot => Store::Dovecot(Mailbox::create_in(&env.mail_root, &login)),
            Server::Mailutils => Store::Maildir(
                root("MAIL_ROOT").join(&local).join("INBOX"),
                env.mail_uid,
                env.mail_gid,
            ),
            Server::Courier => Store::Maildir(
                root("MAIL_ROOT").join(&local).join("Maildir"),
                env.mail_uid,
                env.mail_gid,
            ),
            Server::Cyrus => Store::Lmtp(root("LMTP_SOCKET"), local),
            Server::Popa3d => Store::Mbox(root("MAIL_ROOT").join(&local)),
        };
        let login = match &store {
            Store::Dovecot(mailbox) => mailbox.user.clone(),
            _ => login,
        };
        let mailbox = Self {
            server,
            login,
            store,
        };
        mailbox.empty();
        mailbox
    }

    /// An account for this mailbox: `tls` on the matching port, the test
    /// CA, delivering to `rcpt`.
    pub fn account(&self, name: &str, tls: TlsMode, rcpt: &str) -> AccountConfig {
        let port = match tls {
            TlsMode::Implicit => self
                .server
                .pop3s_port()
                .unwrap_or_else(|| panic!("{:?} has no POP3S", self.server)),
            TlsMode::StartTls | TlsMode::None => self.server.plain_port(),
        };
        let mut account = AccountConfig::plain(name, port, &self.login, &env().password);
        account.tls = tls;
        account.host = "localhost".to_owned();
        if tls != TlsMode::None {
            account.ca_file = Some(env().ca_file.clone());
        }
        account.deliver_to = vec![rcpt.to_owned()];
        account.timeout = "20s".to_owned();
        account
    }

    /// Puts `messages` into the mailbox, in order.
    pub fn put(&self, messages: &[TestMessage]) {
        match &self.store {
            Store::Dovecot(mailbox) => mailbox.add_all(messages),
            Store::Maildir(dir, uid, gid) => {
                for (n, message) in messages.iter().enumerate() {
                    let name = format!("{}.M{n}.popferry-test", unique("m"));
                    let tmp = dir.join("tmp").join(&name);
                    fs::write(&tmp, &message.bytes).expect("write message");
                    chown(&tmp, Some(*uid), Some(*gid)).expect("chown message");
                    fs::rename(&tmp, dir.join("new").join(&name)).expect("move to new/");
                }
            }
            Store::Lmtp(socket, rcpt) => lmtp_deliver(socket, rcpt, messages),
            Store::Mbox(path) => {
                let mut mbox = Vec::new();
                for message in messages {
                    mbox.extend_from_slice(b"From sender@example.org Mon Nov 23 11:33:29 2026\n");
                    mbox.extend_from_slice(&mbox_quoted(&message.bytes));
                    mbox.push(b'\n');
                }
                fs::write(path, mbox).expect("write mbox");
                chown(path, Some(env().mail_uid), Some(MAIL_GID)).expect("chown mbox");
                fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod");
            }
        }
    }

    /// A logged-in POP3 session over the plain port; `None` while the
    /// server refuses the login (a session still holding the mailbox).
    fn session(&self) -> Option<Wire<std::net::TcpStream>> {
        let mut wire = Wire::new(connect(self.server.plain_port()));
        let greeting = wire.line();
        assert!(greeting.starts_with("+OK"), "{:?}: {greeting}", self.server);
        for command in [
            format!("USER {}", self.login),
            format!("PASS {}", env().password),
        ] {
            wire.send(&command);
            if !wire.line().starts_with("+OK") {
                return None;
            }
        }
        Some(wire)
    }

    /// The message count STAT gives, retried for up to 10 s while the
    /// login is refused.
    pub fn count(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(mut wire) = self.session() {
                wire.send("STAT");
                let stat = wire.line();
                wire.send("QUIT");
                let _ = wire.try_line();
                return stat
                    .split_whitespace()
                    .nth(1)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{:?}: STAT said {stat}", self.server));
            }
            assert!(
                Instant::now() < deadline,
                "{:?}: {} cannot log in",
                self.server,
                self.login
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits up to `limit` for [`Self::count`] to become `expected` (a
    /// server may commit a QUIT after the client has gone); returns the
    /// last count seen.
    pub fn wait_for_count(&self, expected: usize, limit: Duration) -> usize {
        let mut count = self.count();
        wait_until(limit, || {
            count = self.count();
            count == expected
        });
        count
    }

    /// Deletes every message over POP3, the one way that works for every
    /// store (Cyrus's is closed).
    fn empty(&self) {
        let count = self.count();
        if count == 0 {
            return;
        }
        let mut wire = self.session().expect("login to empty the mailbox");
        for n in 1..=count {
            wire.send(&format!("DELE {n}"));
            let reply = wire.line();
            assert!(reply.starts_with("+OK"), "DELE {n}: {reply}");
        }
        wire.send("QUIT");
        let reply = wire.line();
        assert!(reply.starts_with("+OK"), "QUIT: {reply}");
        assert_eq!(self.wait_for_count(0, Duration::from_secs(5)), 0);
    }

    /// Checks that `delivered` (a dump's message after popferry's trace
    /// header, CRs removed) is `original` as this server serves it: the
    /// same bytes, but for what the server itself is known to change.
    pub fn assert_served_intact(&self, original: &TestMessage, delivered: &[u8], what: &str) {
        let original = mail::without_cr(&original.bytes);
        match self.server {
            Server::Dovecot | Server::Courier => {
                mail::assert_same_bytes(&original, delivered, what);
            }
            // Mailutils writes its UIDL into the message as the last header.
            Server::Mailutils => {
                let blank = mail::find(delivered, b"\n\n").expect("end of header") + 1;
                let header = &delivered[..blank];
                let start = mail::find(header, b"\nX-UIDL: ").map(|at| at + 1);
                let start = start.unwrap_or_else(|| panic!("{what}: no X-UIDL header"));
                let end = start + mail::find(&header[start..], b"\n").expect("line end") + 1;
                assert_eq!(end, blank, "{what}: X-UIDL is not the last header");
                let without = [&delivered[..start], &delivered[end..]].concat();
                mail::assert_same_bytes(&original, &without, what);
            }
            // Cyrus's LMTP delivery puts its trace headers on top.
            Server::Cyrus => {
                let added = delivered.len().saturating_sub(original.len());
                let (top, rest) = delivered.split_at(added);
                assert!(
                    top.starts_with(b"Return-Path: ") && mail::find(top, b"\n\n").is_none(),
                    "{what}: Cyrus should add only headers on top, added {:?}",
                    String::from_utf8_lossy(top)
                );
                mail::assert_same_bytes(&original, rest, what);
            }
            // popa3d serves the mbox as stored, ">From " quoting included.
            Server::Popa3d => mail::assert_same_bytes(&mbox_quoted(&original), delivered, what),
        }
    }
}

/// `message` as an mbox stores it: a line starting with "From " (a body
/// line; no header starts so) becomes ">From ".
fn mbox_quoted(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 16);
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line);
    }
    out
}

/// Delivers `messages` to `rcpt` over LMTP on a unix socket, one
/// transaction each; panics unless each gets its 250.
fn lmtp_deliver(socket: &PathBuf, rcpt: &str, messages: &[TestMessage]) {
    let stream = UnixStream::connect(socket)
        .unwrap_or_else(|err| panic!("LMTP socket {}: {err}", socket.display()));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut writer = stream.try_clone().expect("clone socket");
    let mut reader = BufReader::new(stream);
    let mut reply = |expect: &str, after: &str| {
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).expect("LMTP reply");
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
        assert!(line.starts_with(expect), "LMTP {after}: {line}");
    };
    let mut send = |bytes: &[u8]| writer.write_all(bytes).expect("LMTP write");
    reply("220", "greeting");
    send(b"LHLO popferry-test\r\n");
    reply("250", "LHLO");
    for message in messages {
        send(b"MAIL FROM:<sender@example.org>\r\n");
        reply("250", "MAIL");
        send(format!("RCPT TO:<{rcpt}>\r\n").as_bytes());
        reply("250", "RCPT");
        send(b"DATA\r\n");
        reply("354", "DATA");
        let mut data = Vec::with_capacity(message.bytes.len() * 2);
        for line in message.bytes.split_inclusive(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            if line.starts_with(b".") {
                data.push(b'.');
            }
            data.extend_from_slice(line);
            data.extend_from_slice(b"\r\n");
        }
        data.extend_from_slice(b".\r\n");
        send(&data);
        reply("250", &format!("end of data of {}", message.message_id));
    }
    send(b"QUIT\r\n");
}
