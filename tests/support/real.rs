//! The real-server test environment: the `POPFERRY_TEST_*` variables of
//! `scripts/services.sh`, Dovecot maildirs, smtp-sink dumps, popferry
//! configuration files, and running the `popferry` binary with a time limit.

use std::fmt;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::mail::{self, TestMessage};

const HINT: &str = "run scripts/test.sh (it starts Dovecot and smtp-sink)";

/// The longest any single popferry run may take before the test fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

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
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {HINT}"))
}

fn num<T: std::str::FromStr>(name: &str) -> T {
    var(name)
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number: {HINT}"))
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
    /// by the account Dovecot runs as.
    pub fn create(prefix: &str) -> Self {
        let env = env();
        let user = unique(prefix);
        let home = env.mail_root.join(&user);
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
        let deadline = Instant::now() + limit;
        loop {
            let count = self.count();
            if count == expected || Instant::now() > deadline {
                return count;
            }
            thread::sleep(Duration::from_millis(50));
        }
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

/// Dump files whose head names `rcpt`; reads only the first few KiB of
/// each file, so it is cheap enough to poll.
pub fn dump_paths_for(rcpt: &str) -> Vec<PathBuf> {
    let dir = &env().smtp_dump_dir;
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

/// Every complete dump addressed to `rcpt`. Call it once the client that
/// sent them has finished: a dump is complete when the sink sent its 250.
pub fn dumps_for(rcpt: &str) -> Vec<Dump> {
    dump_paths_for(rcpt)
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

/// TLS setting of a POP3 account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Implicit,
    StartTls,
    None,
}

/// One `[[account]]` table.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    pub username: String,
    pub password: String,
    pub deliver_to: Vec<String>,
    pub keep: bool,
    pub timeout: String,
    pub quarantine_dir: Option<String>,
}

impl AccountConfig {
    /// POP3S on 127.0.0.1 with the test CA, the right password, keep = false.
    pub fn new(name: &str, mailbox: &Mailbox, rcpt: &str) -> Self {
        let env = env();
        Self {
            name: name.to_owned(),
            host: "127.0.0.1".to_owned(),
            port: env.pop3s_port,
            tls: TlsMode::Implicit,
            ca_file: Some(env.ca_file.clone()),
            username: mailbox.user.clone(),
            password: env.password.clone(),
            deliver_to: vec![rcpt.to_owned()],
            keep: false,
            timeout: "10s".to_owned(),
            quarantine_dir: None,
        }
    }

    fn toml(&self) -> String {
        let tls = match self.tls {
            TlsMode::Implicit => "implicit",
            TlsMode::StartTls => "starttls",
            TlsMode::None => "none",
        };
        let mut text = format!(
            "\n[[account]]\nname = {}\nhost = {}\nport = {}\ntls = \"{tls}\"\n\
             username = {}\npassword = {}\ndeliver_to = [{}]\nkeep = {}\ntimeout = {}\n",
            quote(&self.name),
            quote(&self.host),
            self.port,
            quote(&self.username),
            quote(&self.password),
            self.deliver_to
                .iter()
                .map(|r| quote(r))
                .collect::<Vec<_>>()
                .join(", "),
            self.keep,
            quote(&self.timeout),
        );
        if let Some(ca) = &self.ca_file {
            text += &format!("ca_file = {}\n", quote(&ca.to_string_lossy()));
        }
        if let Some(dir) = &self.quarantine_dir {
            text += &format!("quarantine_dir = {}\n", quote(dir));
        }
        text
    }
}

/// A TOML basic string; the tests only need plain text.
fn quote(text: &str) -> String {
    assert!(
        !text.chars().any(char::is_control),
        "control character in {text:?}"
    );
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A configuration file in its own temporary folder, with the ledger
/// (`popferry.db`) beside it. Edit the fields, then run: every run
/// rewrites the file first, and the ledger stays.
#[derive(Debug)]
pub struct TestConfig {
    pub dir: tempfile::TempDir,
    pub smtp_port: u16,
    pub accounts: Vec<AccountConfig>,
}

impl TestConfig {
    /// One account, relaying to the accepting sink.
    pub fn new(account: AccountConfig) -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            smtp_port: env().smtp_port,
            accounts: vec![account],
        }
    }

    pub fn account(&mut self) -> &mut AccountConfig {
        &mut self.accounts[0]
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("popferry.toml")
    }

    pub fn text(&self) -> String {
        let mut text = format!(
            "state = \"popferry.db\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\n\
             tls = \"none\"\ntimeout = \"30s\"\n",
            self.smtp_port
        );
        self.accounts.iter().for_each(|a| text += &a.toml());
        text
    }

    /// Writes the file (mode 0600: it holds inline passwords).
    pub fn write(&self) -> PathBuf {
        let path = self.path();
        fs::write(&path, self.text()).expect("write config");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod config");
        path
    }

    /// `popferry -c FILE ARGS...` after writing the file.
    pub fn run(&self, args: &[&str]) -> RunOutput {
        run_popferry(&self.write(), args)
    }

    pub fn fetch(&self) -> RunOutput {
        self.run(&["fetch"])
    }

    pub fn status(&self) -> RunOutput {
        self.run(&["status"])
    }
}

/// How a popferry run ended.
#[derive(Debug)]
pub struct RunOutput {
    /// `None` if a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    /// stdout and stderr together, for searching.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl fmt::Display for RunOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit code {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn popferry_command(config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_popferry"));
    command
        .arg("-c")
        .arg(config)
        .args(args)
        .env_remove("POPFERRY_CONFIG")
        .stdin(Stdio::null());
    command
}

/// Runs popferry to completion; kills it and panics after [`RUN_TIMEOUT`].
pub fn run_popferry(config: &Path, args: &[&str]) -> RunOutput {
    let mut child = popferry_command(config, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn popferry");
    let readers = [
        read_all(child.stdout.take().expect("stdout")),
        read_all(child.stderr.take().expect("stderr")),
    ];
    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for popferry") {
            break status;
        }
        if Instant::now() > deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait for killed popferry");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let [stdout, stderr] = readers.map(|r| r.join().expect("reader thread"));
    let output = RunOutput {
        code: status.code(),
        stdout,
        stderr,
    };
    assert!(
        !timed_out,
        "popferry {args:?} ran longer than {RUN_TIMEOUT:?}:\n{output}"
    );
    output
}

fn read_all(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A child process that is killed (SIGKILL) when dropped, so a failing
/// test never leaves it running.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts popferry in the background, output to `log` (stdout and stderr).
pub fn spawn_popferry(config: &Path, args: &[&str], log: &Path) -> KillOnDrop {
    let out = File::create(log).expect("create log");
    let err = out.try_clone().expect("clone log");
    let child = popferry_command(config, args)
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn popferry");
    KillOnDrop(child)
}

/// Numbers standing right before or after `word` (case-insensitive) in
/// `text`, e.g. 2 for "rejected 2", "rejected: 2", "rejected=2" or
/// "2 rejected".
pub fn counts_next_to(text: &str, word: &str) -> Vec<u64> {
    let tokens: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || ":=,;()[]|/".contains(c))
        .filter(|t| !t.is_empty())
        .collect();
    let mut counts = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        if token.eq_ignore_ascii_case(word) {
            let neighbours = [i.checked_sub(1), Some(i + 1)];
            counts.extend(
                neighbours
                    .into_iter()
                    .flatten()
                    .filter_map(|j| tokens.get(j)?.parse::<u64>().ok()),
            );
        }
    }
    counts
}
