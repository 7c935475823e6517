//! No password popferry knows ever leaves it except on the wire to the
//! server it belongs to: not in logs at the most verbose level, not in
//! `check` or `status` output, not in errors, not in the ledger or the
//! quarantine.
//!
//! Every command is run at trace level against the project's POP3 test
//! server and test relay, each password source and login method is used,
//! a wrong password and an impossible SMTP login are provoked, and then
//! everything popferry printed or wrote is searched for the passwords and
//! for the base64 forms that SASL PLAIN puts on the wire.

mod harness;
mod pop3_server;
mod smtp_receiver;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use pop3_server::{Options, Pop3Server};
use smtp_receiver::SmtpReceiver;

const USER: &str = "alice";
const SECRET: &str = "Pw-7f3c9e1a-never-print-me";
const WRONG: &str = "Wrong-41d2b7-never-print-me";
const SMTP_SECRET: &str = "Relay-9a0e55-never-print-me";

/// What must never show up: each password, and the SASL PLAIN tokens
/// built from them.
fn needles() -> Vec<String> {
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let mut needles = Vec::new();
    for secret in [SECRET, WRONG, SMTP_SECRET] {
        needles.push(secret.to_owned());
        needles.push(b64(secret));
        needles.push(b64(&format!("\0{USER}\0{secret}")));
    }
    needles
}

/// Writes a 0600 config with one account; `account` and `smtp` are extra
/// lines for the account and the `[smtp]` table.
fn write_config(
    dir: &Path,
    pop3: &Pop3Server,
    relay: &SmtpReceiver,
    account: &str,
    smtp: &str,
) -> PathBuf {
    let path = dir.join("popferry.toml");
    let quarantine = dir.join("quarantine");
    std::fs::write(
        &path,
        format!(
            "state = \"ledger.db\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             {smtp}\n\n[[account]]\nname = \"leaky\"\nhost = \"127.0.0.1\"\nport = {}\n\
             tls = \"none\"\nusername = \"{USER}\"\ndeliver_to = [\"alice@example.org\"]\n\
             quarantine_dir = \"{}\"\n{account}\n",
            relay.port(),
            pop3.port(),
            quarantine.display(),
        ),
    )
    .expect("write config");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// Runs `popferry -vv -c CONFIG ARGS` with `RUST_LOG=trace` (every crate,
/// every level); returns stdout and stderr together.
async fn popferry(config: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_popferry"));
    command
        .arg("-vv")
        .arg("-c")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "trace")
        .envs(env.iter().copied());
    let output = tokio::task::spawn_blocking(move || command.output().expect("run popferry"))
        .await
        .expect("join");
    printed(&output)
}

/// Everything a run printed: stdout, then stderr.
fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `popferry run` at trace level until `done` says so (at most 20 s),
/// then SIGTERM.
async fn run_daemon(config: &Path, done: impl Fn() -> bool) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_popferry"))
        .arg("-vv")
        .arg("-c")
        .arg(config)
        .arg("run")
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn popferry run");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.expect("kill").success());
    let output = tokio::task::spawn_blocking(move || {
        child.stdin.take();
        child.wait_with_output().expect("daemon output")
    })
    .await
    .expect("join");
    printed(&output)
}

/// Every file under `dir` except the config (which holds the secret by
/// design), as bytes with its path.
fn written_files(dir: &Path, config: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path != config {
                files.push((path.clone(), std::fs::read(&path).expect("read file")));
            }
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_in_any_output_or_file_at_trace_level() {
    let pop3 = Pop3Server::start(Options {
        user: USER.into(),
        password: SECRET.into(),
        capabilities: vec!["USER".into(), "UIDL".into(), "SASL PLAIN".into()],
        ..Options::default()
    })
    .await;
    let relay = SmtpReceiver::start().await;
    pop3.add("m1", &harness::message("m1", ""));
    pop3.add("m2", &harness::message("m2", "X-Test-Reject: 554\r\n"));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut transcript = String::new();
    let inline = format!("password = \"{SECRET}\"");

    let config = write_config(
        dir.path(),
        &pop3,
        &relay,
        &format!("{inline}\nauth = \"plain\""),
        "",
    );
    transcript += &popferry(&config, &["check", "--connect"], &[]).await;
    transcript += &popferry(&config, &["fetch"], &[]).await;
    assert_eq!(
        relay.accepted().len(),
        1,
        "the PLAIN login worked:\n{transcript}"
    );
    assert!(
        written_files(dir.path(), &config)
            .iter()
            .any(|(p, _)| p.extension().is_some_and(|e| e == "eml")),
        "the refused message was quarantined:\n{transcript}"
    );
    transcript += &popferry(&config, &["status"], &[]).await;

    pop3.add("m3", &harness::message("m3", ""));
    let from_env = "password_env = \"LEAK_TEST_PASSWORD\"\nauth = \"user\"";
    let config = write_config(dir.path(), &pop3, &relay, from_env, "");
    transcript += &popferry(&config, &["fetch"], &[("LEAK_TEST_PASSWORD", SECRET)]).await;
    assert_eq!(
        relay.accepted().len(),
        2,
        "the USER/PASS login worked:\n{transcript}"
    );

    let from_command = format!("password_command = \"printf %s {SECRET}\"");
    let config = write_config(dir.path(), &pop3, &relay, &from_command, "");
    pop3.add("m4", &harness::message("m4", ""));
    transcript += &run_daemon(&config, || relay.accepted().len() == 3).await;
    assert_eq!(
        relay.accepted().len(),
        3,
        "the daemon delivered:\n{transcript}"
    );

    let wrong = format!("password = \"{WRONG}\"");
    let config = write_config(dir.path(), &pop3, &relay, &wrong, "");
    pop3.add("m5", &harness::message("m5", ""));
    let refused = popferry(&config, &["fetch"], &[]).await;
    assert!(
        refused.contains("FAILED"),
        "a wrong password fails:\n{refused}"
    );
    transcript += &refused;

    let smtp_login = format!("username = \"relay-user\"\npassword = \"{SMTP_SECRET}\"");
    let config = write_config(dir.path(), &pop3, &relay, &inline, &smtp_login);
    let no_auth = popferry(&config, &["fetch"], &[]).await;
    assert!(
        no_auth.contains("AUTH"),
        "the relay offers no AUTH:\n{no_auth}"
    );
    transcript += &no_auth;

    for needle in needles() {
        assert!(
            !transcript.contains(&needle),
            "output shows {needle:?}:\n{transcript}"
        );
        for (path, bytes) in written_files(dir.path(), &config) {
            let found = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
            assert!(!found, "{} holds {needle:?}", path.display());
        }
    }
}
