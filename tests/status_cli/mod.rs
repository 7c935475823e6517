//! The rig of the `status_*.rs` tests: the scripted POP3 server and SMTP
//! receiver, a configuration file with the ledger beside it, and the real
//! `popferry` binary run against them (`fetch`, `run`, `status`).
//!
//! Each test crate uses a part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::message;
use crate::pop3_server::{Options, Pop3Server};
use crate::smtp_receiver::SmtpReceiver;

/// A mailbox, a relay and a configuration for the account "alice".
pub struct Mailbox {
    pub pop3: Pop3Server,
    pub smtp: SmtpReceiver,
    pub dir: tempfile::TempDir,
}

/// What one run of the binary said.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    fn from(output: Output) -> Ran {
        Ran {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The stdout of a run that must have exited 0.
    pub fn ok(self) -> String {
        assert_eq!(self.code, Some(0), "{self:?}");
        self.stdout
    }
}

impl Mailbox {
    /// `extra` goes into the `[[account]]` table, e.g. `keep = true`.
    pub async fn start(extra: &str) -> Mailbox {
        let pop3 = Pop3Server::start(Options::default()).await;
        let smtp = SmtpReceiver::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let mailbox = Mailbox { pop3, smtp, dir };
        mailbox.write_config("ledger.db", extra);
        mailbox
    }

    /// Rewrites the configuration with another `state`, relative to its
    /// folder or absolute.
    pub fn write_config(&self, state: &str, extra: &str) {
        let toml = format!(
            r#"state = "{state}"

[smtp]
host = "127.0.0.1"
port = {smtp}
tls = "none"
timeout = "5s"

[daemon]
shutdown_timeout = "5s"

[[account]]
name = "alice"
host = "127.0.0.1"
port = {pop3}
tls = "none"
username = "alice"
password = "secret"
deliver_to = ["alice@example.org"]
timeout = "2s"
poll_interval = "1s"
{extra}
"#,
            smtp = self.smtp.port(),
            pop3 = self.pop3.port(),
        );
        fs::write(self.config(), toml).expect("write the config");
        fs::set_permissions(self.config(), fs::Permissions::from_mode(0o600)).expect("chmod");
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("popferry.toml")
    }

    pub fn ledger(&self) -> PathBuf {
        self.dir.path().join("ledger.db")
    }

    /// Adds messages carrying `headers` (see [`message`]).
    pub fn add(&self, uids: &[&str], headers: &str) {
        for uid in uids {
            self.pop3.add(uid, &message(uid, headers));
        }
    }

    /// Runs `popferry -c CONFIG ARGS…` to its end, off the runtime thread
    /// so the servers keep answering.
    pub async fn popferry(&self, args: &[&str]) -> Ran {
        self.popferry_as(None, args).await
    }

    /// Like [`Mailbox::popferry`], as the user and group id `uid` if given.
    pub async fn popferry_as(&self, uid: Option<u32>, args: &[&str]) -> Ran {
        let mut command = self.command(args);
        if let Some(uid) = uid {
            command.uid(uid).gid(uid);
        }
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("join")
            .expect("run popferry");
        Ran::from(output)
    }

    /// `popferry fetch`, which must deliver.
    pub async fn fetch(&self) {
        self.popferry(&["fetch"]).await.ok();
    }

    /// `popferry status --json ARGS…`, parsed.
    pub async fn status_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["status", "--json"];
        all.extend_from_slice(args);
        let stdout = self.popferry(&all).await.ok();
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }

    /// Starts `popferry run` in the background.
    pub fn daemon(&self) -> Daemon {
        let mut command = self.command(&["run"]);
        command.stdout(Stdio::null()).stderr(Stdio::null());
        Daemon(command.spawn().expect("start popferry run"))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_popferry"));
        command
            .arg("-c")
            .arg(self.config())
            .args(args)
            .env_remove("RUST_LOG");
        command
    }
}

/// A `popferry run` child, stopped (SIGKILL) when dropped.
pub struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `done` holds, polling every 50 ms, failing after 20 s.
pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The account "alice" of a status document.
pub fn alice(document: &Value) -> &Value {
    let accounts = document["accounts"].as_array().expect("accounts");
    (accounts.iter())
        .find(|a| a["name"] == "alice")
        .unwrap_or_else(|| panic!("no alice in {document}"))
}

/// Whether `path` exists; a test asserting that nothing was created uses
/// this on the folder that must not be there.
pub fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}
