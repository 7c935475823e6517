//! The real-server test environment: the `POPFERRY_TEST_*` variables of
//! `scripts/services.sh`, Dovecot maildirs and smtp-sink dumps. Writing
//! popferry's configuration and running the binary: [`super::popferry`];
//! bearer tokens for the OAuth Dovecot: [`super::jwt`].

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::mail::{self, TestMessage};

const HINT: &str = "run scripts/test.sh (it starts Dovecot and smtp-sink)";

/// What `scripts/services.sh start` exported.
#[derive(Debug)]
pub struct TestEnv {
    pub pop3_port: u16,
    pub pop3s_port: u16,
    pub password: String,
    pub ca_file: PathBuf,
    pub mail_root: PathBuf,
    pub mail_uid: u32,
    pub mail_gid: u32,
    pub smtp_port: u16,
    pub smtp_dump_dir: PathBuf,
    pub smtp_tempfail_port: u16,
    pub smtp_permfail_port: u16,
    pub oauth: OauthEnv,
    pub clientcert: ClientCertEnv,
}

/// The OAuth servers: the `dovecot-oauth` instance (XOAUTH2, OAUTHBEARER
/// and the password mechanisms) and the Postfix submission server whose
/// SASL it answers. Both present `selfsigned_cert`.
#[derive(Debug)]
pub struct OauthEnv {
    pub pop3_port: u16,
    pub pop3s_port: u16,
    /// Mailboxes of `dovecot-oauth` (and of the client-certificate
    /// server): use with [`Mailbox::create_in`].
    pub mail_root: PathBuf,
    /// Made the way administrators make one (`openssl req -x509`), so its
    /// basicConstraints say CA:TRUE.
    pub selfsigned_cert: PathBuf,
    /// One line: base64 of the HS256 key Dovecot checks tokens with.
    pub jwt_key_file: PathBuf,
    pub jwt_issuer: String,
    pub jwt_azp: String,
    pub jwt_kid: String,
    /// Postfix submission with STARTTLS.
    pub submission_port: u16,
    /// Postfix submissions: implicit TLS.
    pub submissions_port: u16,
    /// Where the sink behind Postfix dumps what it relayed: use with
    /// [`dumps_in`].
    pub submission_dump_dir: PathBuf,
}

/// The POP3S server that requires a client certificate (its own is signed
/// by the test CA, [`TestEnv::ca_file`]).
#[derive(Debug)]
pub struct ClientCertEnv {
    pub pop3s_port: u16,
    /// A certificate the server accepts, and its key (PEM files).
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A variable of `$POPFERRY_TEST_DIR/env`; a missing one panics with
/// `hint`, which says what starts the server it describes.
pub fn env_var(name: &str, hint: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {hint}"))
}

/// A numeric variable (a port, a uid) of `$POPFERRY_TEST_DIR/env`.
pub fn env_num<T: std::str::FromStr>(name: &str, hint: &str) -> T {
    env_var(name, hint)
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number: {hint}"))
}

/// Calls `done` until it says yes or `limit` has passed; whether it did.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn var(name: &str) -> String {
    env_var(name, HINT)
}

fn num<T: std::str::FromStr>(name: &str) -> T {
    env_num(name, HINT)
}

/// The environment, read once; panics with a hint if a variable is missing.
pub fn env() -> &'static TestEnv {
    static ENV: OnceLock<TestEnv> = OnceLock::new();
    ENV.get_or_init(|| TestEnv {
        pop3_port: num("POPFERRY_TEST_POP3_PORT"),
        pop3s_port: num("POPFERRY_TEST_POP3S_PORT"),
        password: var("POPFERRY_TEST_POP3_PASSWORD"),
        ca_file: var("POPFERRY_TEST_CA_FILE").into(),
        mail_root: var("POPFERRY_TEST_MAIL_ROOT").into(),
        mail_uid: num("POPFERRY_TEST_MAIL_UID"),
        mail_gid: num("POPFERRY_TEST_MAIL_GID"),
        smtp_port: num("POPFERRY_TEST_SMTP_PORT"),
        smtp_dump_dir: var("POPFERRY_TEST_SMTP_DUMP_DIR").into(),
        smtp_tempfail_port: num("POPFERRY_TEST_SMTP_TEMPFAIL_PORT"),
        smtp_permfail_port: num("POPFERRY_TEST_SMTP_PERMFAIL_PORT"),
        oauth: OauthEnv {
            pop3_port: num("POPFERRY_TEST_OAUTH_POP3_PORT"),
            pop3s_port: num("POPFERRY_TEST_OAUTH_POP3S_PORT"),
            mail_root: var("POPFERRY_TEST_OAUTH_MAIL_ROOT").into(),
            selfsigned_cert: var("POPFERRY_TEST_SELFSIGNED_CERT").into(),
            jwt_key_file: var("POPFERRY_TEST_JWT_KEY_FILE").into(),
            jwt_issuer: var("POPFERRY_TEST_JWT_ISSUER"),
            jwt_azp: var("POPFERRY_TEST_JWT_AZP"),
            jwt_kid: var("POPFERRY_TEST_JWT_KID"),
            submission_port: num("POPFERRY_TEST_SUBMISSION_PORT"),
            submissions_port: num("POPFERRY_TEST_SUBMISSIONS_PORT"),
            submission_dump_dir: var("POPFERRY_TEST_SUBMISSION_DUMP_DIR").into(),
        },
        clientcert: ClientCertEnv {
            pop3s_port: num("POPFERRY_TEST_CLIENTCERT_POP3S_PORT"),
            cert: var("POPFERRY_TEST_CLIENT_CERT").into(),
            key: var("POPFERRY_TEST_CLIENT_KEY").into(),
        },
    })
}

/// A name no other test (of this or an earlier run) uses: lower-case
/// letters, digits and '-', valid as a Dovecot username and a local part.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}-{:x}-{n}-{:x}",
        std::process::id(),
        nanos % (1 << 48)
    )
}

/// The Dovecot maildir of one POP3 user.
#[derive(Debug)]
pub struct Mailbox {
    pub user: String,
    pub maildir: PathBuf,
    delivered: AtomicUsize,
}

impl Mailbox {
    /// Creates `$ROOT/USER/Maildir/{new,cur,tmp}` for a fresh user, owned
    /// by the account Dovecot runs as, in the first Dovecot's mail root.
    pub fn create(prefix: &str) -> Self {
        Self::create_in(&env().mail_root, prefix)
    }

    /// The same in another instance's mail root, e.g. `env().oauth.mail_root`.
    pub fn create_in(mail_root: &Path, prefix: &str) -> Self {
        let env = env();
        let user = unique(prefix);
        let home = mail_root.join(&user);
        let maildir = home.join("Maildir");
        for sub in ["new", "cur", "tmp"] {
            fs::create_dir_all(maildir.join(sub)).expect("create maildir");
        }
        for path in [home.clone(), maildir.clone()]
            .into_iter()
            .chain(["new", "cur", "tmp"].map(|sub| maildir.join(sub)))
        {
            chown(&path, Some(env.mail_uid), Some(env.mail_gid))
                .unwrap_or_else(|err| panic!("chown {}: {err}", path.display()));
        }
        Self {
            user,
            maildir,
            delivered: AtomicUsize::new(0),
        }
    }

    /// Drops `message` into `new/` the maildir way: write in `tmp/`, rename.
    pub fn add(&self, message: &TestMessage) {
        let env = env();
        let n = self.delivered.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}.M{n}P{}.popferry-test", unique("m"), std::process::id());
        let tmp = self.maildir.join("tmp").join(&name);
        fs::write(&tmp, &message.bytes).expect("write message");
        chown(&tmp, Some(env.mail_uid), Some(env.mail_gid)).expect("chown message");
        fs::rename(&tmp, self.maildir.join("new").join(&name)).expect("move message to new/");
    }

    pub fn add_all(&self, messages: &[TestMessage]) {
        messages.iter().for_each(|m| self.add(m));
    }

    /// Messages in `new/` plus `cur/`.
    pub fn count(&self) -> usize {
        ["new", "cur"]
            .iter()
            .map(|sub| {
                fs::read_dir(self.maildir.join(sub))
                    .expect("read maildir")
                    .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_file()))
                    .count()
            })
            .sum()
    }

    /// Waits up to `limit` for the count to become `expected` (Dovecot
    /// expunges asynchronously to a client that has gone away); returns the
    /// last count seen.
    pub fn wait_for_count(&self, expected: usize, limit: Duration) -> usize {
        let mut count = self.count();
        wait_until(limit, || {
            count = self.count();
            count == expected
        });
        count
    }
}

/// One message the accepting smtp-sink stored.
#[derive(Debug)]
pub struct Dump {
    pub path: PathBuf,
    /// The `X-Rcpt-Args` values, in order.
    pub rcpt_args: Vec<String>,
    /// The `X-Mail-Args` value.
    pub mail_args: String,
    /// What followed the sink's own `Received:` header, without the final
    /// extra LF: the message as the client sent it, minus every CR.
    pub message: Vec<u8>,
}

impl Dump {
    /// `message` split into the first header (popferry's trace header) and
    /// the rest, which should equal the original message.
    pub fn split_trace_header(&self) -> (&[u8], &[u8]) {
        mail::split_first_header(&self.message)
    }

    pub fn message_id(&self) -> Option<String> {
        mail::message_id(&self.message)
    }
}

/// The sink's header lines at the top of a dump: (rcpt args, mail args,
/// offset just past the sink's 3-line `Received:` header). `None` if the
/// data ends before that (a dump still being written).
fn parse_dump_head(data: &[u8]) -> Option<(Vec<String>, String, usize)> {
    let (mut rcpts, mut mail_args, mut pos) = (Vec::new(), String::new(), 0);
    loop {
        let end = pos + data[pos..].iter().position(|&b| b == b'\n')?;
        let line = String::from_utf8_lossy(&data[pos..end]).into_owned();
        pos = end + 1;
        if let Some(value) = line.strip_prefix("X-Rcpt-Args: ") {
            rcpts.push(value.to_owned());
        } else if let Some(value) = line.strip_prefix("X-Mail-Args: ") {
            mail_args = value.to_owned();
        } else if line.starts_with("Received:") {
            for _ in 0..2 {
                if data.get(pos) != Some(&b'\t') {
                    return None;
                }
                pos += 1 + data[pos..].iter().position(|&b| b == b'\n')?;
            }
            return Some((rcpts, mail_args, pos));
        } else if !line.starts_with("X-") {
            return None;
        }
    }
}

fn names_rcpt(rcpt_args: &[String], rcpt: &str) -> bool {
    let wanted = format!("<{rcpt}>");
    rcpt_args
        .iter()
        .any(|arg| arg.split_whitespace().next() == Some(wanted.as_str()))
}

/// Dump files of the accepting sink whose head names `rcpt`; reads only
/// the first few KiB of each file, so it is cheap enough to poll.
pub fn dump_paths_for(rcpt: &str) -> Vec<PathBuf> {
    dump_paths_in(&env().smtp_dump_dir, rcpt)
}

/// The same for the sink that dumps into `dir`.
pub fn dump_paths_in(dir: &Path, rcpt: &str) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display())) {
        let Ok(entry) = entry else { continue };
        let Ok(file) = File::open(entry.path()) else {
            continue; // unlinked meanwhile (an aborted transaction)
        };
        let mut head = Vec::new();
        if file.take(4096).read_to_end(&mut head).is_err() {
            continue;
        }
        if parse_dump_head(&head).is_some_and(|(rcpts, _, _)| names_rcpt(&rcpts, rcpt)) {
            paths.push(entry.path());
        }
    }
    paths.sort();
    paths
}

/// Every complete dump of the accepting sink addressed to `rcpt`. Call it
/// once the client that sent them has finished: a dump is complete when the
/// sink sent its 250.
pub fn dumps_for(rcpt: &str) -> Vec<Dump> {
    dumps_in(&env().smtp_dump_dir, rcpt)
}

/// The same for the sink that dumps into `dir`. Postfix relays to the
/// submission sink after its own 250, so poll until the dump is there.
pub fn dumps_in(dir: &Path, rcpt: &str) -> Vec<Dump> {
    dump_paths_in(dir, rcpt)
        .into_iter()
        .filter_map(|path| {
            let data = fs::read(&path).ok()?;
            let (rcpt_args, mail_args, start) = parse_dump_head(&data)?;
            let body = &data[start..];
            let message = body
                .strip_suffix(b"\n")
                .unwrap_or_else(|| panic!("{}: dump lacks the sink's final LF", path.display()));
            Some(Dump {
                message: message.to_vec(),
                path,
                rcpt_args,
                mail_args,
            })
        })
        .collect()
}
