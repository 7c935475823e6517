//! popferry as a test drives it: configuration files written from
//! [`AccountConfig`] values, and the binary run with a time limit.

use std::fmt;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::real::{env, Mailbox};

/// The longest any single popferry run may take before the test fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

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
    /// `tls_fingerprint`, as written in the file.
    pub tls_fingerprint: Option<String>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub username: String,
    /// Left out of the file when empty (an OAuth2 account has none).
    pub password: String,
    pub deliver_to: Vec<String>,
    pub keep: bool,
    pub timeout: String,
    pub poll_interval: String,
    pub quarantine_dir: Option<String>,
    /// `auth`, when not the default `"auto"`.
    pub auth: Option<String>,
    /// `max_message_size`, e.g. `"16MiB"`; the default when `None`.
    pub max_message_size: Option<String>,
    /// TOML written after the keys above, such as an `[account.oauth2]`
    /// table.
    pub extra: String,
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
            tls_fingerprint: None,
            client_cert: None,
            client_key: None,
            username: mailbox.user.clone(),
            password: env.password.clone(),
            deliver_to: vec![rcpt.to_owned()],
            keep: false,
            timeout: "10s".to_owned(),
            poll_interval: "60s".to_owned(),
            quarantine_dir: None,
            auth: None,
            max_message_size: None,
            extra: String::new(),
        }
    }

    /// Plain POP3 on 127.0.0.1:`port`, for the in-process test servers:
    /// a 2 s timeout so failures come fast, polled every second.
    pub fn plain(name: &str, port: u16, username: &str, password: &str) -> Self {
        Self {
            name: name.to_owned(),
            host: "127.0.0.1".to_owned(),
            port,
            tls: TlsMode::None,
            ca_file: None,
            tls_fingerprint: None,
            client_cert: None,
            client_key: None,
            username: username.to_owned(),
            password: password.to_owned(),
            deliver_to: vec![format!("{name}@example.org")],
            keep: false,
            timeout: "2s".to_owned(),
            poll_interval: "1s".to_owned(),
            quarantine_dir: None,
            auth: None,
            max_message_size: None,
            extra: String::new(),
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
             username = {}\ndeliver_to = [{}]\nkeep = {}\ntimeout = {}\n\
             poll_interval = {}\n",
            quote(&self.name),
            quote(&self.host),
            self.port,
            quote(&self.username),
            self.deliver_to
                .iter()
                .map(|r| quote(r))
                .collect::<Vec<_>>()
                .join(", "),
            self.keep,
            quote(&self.timeout),
            quote(&self.poll_interval),
        );
        if !self.password.is_empty() {
            text += &format!("password = {}\n", quote(&self.password));
        }
        if let Some(ca) = &self.ca_file {
            text += &format!("ca_file = {}\n", quote(&ca.to_string_lossy()));
        }
        if let Some(pin) = &self.tls_fingerprint {
            text += &format!("tls_fingerprint = {}\n", quote(pin));
        }
        for (key, path) in [
            ("client_cert", &self.client_cert),
            ("client_key", &self.client_key),
        ] {
            if let Some(path) = path {
                text += &format!("{key} = {}\n", quote(&path.to_string_lossy()));
            }
        }
        if let Some(dir) = &self.quarantine_dir {
            text += &format!("quarantine_dir = {}\n", quote(dir));
        }
        if let Some(auth) = &self.auth {
            text += &format!("auth = {}\n", quote(auth));
        }
        if let Some(size) = &self.max_message_size {
            text += &format!("max_message_size = {}\n", quote(size));
        }
        text + &self.extra
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
    /// The body of the `[smtp]` table, in place of the one for the sink
    /// at `smtp_port`.
    pub smtp_table: Option<String>,
    /// Lines of a `[daemon]` table; none when empty.
    pub daemon: String,
    pub accounts: Vec<AccountConfig>,
}

impl TestConfig {
    /// One account, relaying to the accepting sink.
    pub fn new(account: AccountConfig) -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            smtp_port: env().smtp_port,
            smtp_table: None,
            daemon: String::new(),
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
        let sink = format!(
            "host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout = \"30s\"",
            self.smtp_port
        );
        let smtp = self.smtp_table.as_ref().unwrap_or(&sink);
        let mut text = format!("state = \"popferry.db\"\n\n[smtp]\n{smtp}\n");
        if !self.daemon.is_empty() {
            text += &format!("\n[daemon]\n{}\n", self.daemon);
        }
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
    run_popferry_with(config, args, &[])
}

/// [`run_popferry`] with these environment variables set for popferry,
/// or, where the value is `None`, removed.
pub fn run_popferry_with(
    config: &Path,
    args: &[&str],
    vars: &[(&str, Option<&Path>)],
) -> RunOutput {
    let mut command = popferry_command(config, args);
    for (name, value) in vars {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let mut child = command
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

impl KillOnDrop {
    /// Sends signal `name` (`TERM`, `HUP`, ...) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.0.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name}");
    }
}

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
