//! What `popferry fetch` writes when a program, not a person, reads it:
//! with `--log-format json` every stderr line is one JSON object that
//! names its account and poll, and with stderr on a pipe no progress
//! display is drawn, whatever the flags. The summary on stdout is the
//! same plain line in both cases. For contrast, on a terminal (a pty from
//! util-linux's `script`) the bars are drawn, and `-q` removes them.

mod harness;
mod pop3_server;
mod smtp_receiver;

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Output;

use harness::{within, Rig};

/// A config file for the binary, pointed at the rig's servers, with a
/// ledger of its own (the rig holds the lock on its own one).
fn config(rig: &Rig) -> PathBuf {
    let path = rig.dir.path().join("popferry.toml");
    let text = format!(
        "state = \"{state}\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {smtp}\ntls = \"none\"\n\n\
         [[account]]\nname = \"alice\"\nhost = \"127.0.0.1\"\nport = {pop3}\ntls = \"none\"\n\
         username = \"alice\"\npassword = \"secret\"\ndeliver_to = [\"alice@example.org\"]\n",
        state = rig.dir.path().join("cli.db").display(),
        smtp = rig.smtp.port(),
        pop3 = rig.pop3.port(),
    );
    std::fs::write(&path, text).expect("write config");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// Runs `popferry [flags] fetch` off the runtime, which drives the rig's
/// servers meanwhile.
async fn fetch(config: PathBuf, flags: &[&str]) -> Output {
    let flags: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_popferry"))
            .arg("-c")
            .arg(config)
            .args(flags)
            .arg("fetch")
            .env_remove("POPFERRY_CONFIG")
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run popferry")
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    output
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line_naming_the_account_and_poll() {
    within(async {
        let rig = Rig::start("").await;
        for uid in ["J1", "J2"] {
            rig.add(uid, "");
        }
        let output = fetch(config(&rig), &["--log-format", "json", "-v"]).await;
        let stderr = String::from_utf8(output.stderr).expect("UTF-8");
        let lines: Vec<&str> = stderr.lines().collect();
        assert!(!lines.is_empty(), "no log at all");
        let mut in_a_poll = 0;
        for line in &lines {
            let object: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert!(object["fields"]["message"].is_string(), "{line}");
            let Some(spans) = object["spans"].as_array() else {
                continue;
            };
            if !spans.iter().any(|s| s["name"] == "poll") {
                continue;
            }
            let account = spans.iter().find_map(|s| s["account"].as_str());
            assert_eq!(account, Some("alice"), "{line}");
            // The poll's row in the ledger, once the poll is on record.
            if let Some(poll) = spans.iter().find_map(|s| s["id"].as_str()) {
                assert!(poll.parse::<u64>().is_ok(), "poll id {poll:?} in {line}");
            }
            in_a_poll += 1;
        }
        let finished = lines.iter().find(|l| l.contains("poll finished"));
        let finished = finished.unwrap_or_else(|| panic!("no 'poll finished' in {stderr}"));
        assert!(finished.contains(r#""account":"alice""#), "{finished}");
        assert!(finished.contains(r#""id":"1""#), "{finished}");
        assert!(
            in_a_poll >= 2,
            "{in_a_poll} lines inside the poll: {stderr}"
        );
        let stdout = String::from_utf8(output.stdout).expect("UTF-8");
        assert!(stdout.starts_with("alice: ok in "), "{stdout}");
        assert!(stdout.contains("2 delivered"), "{stdout}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_progress_display_when_stderr_is_not_a_terminal() {
    within(async {
        let rig = Rig::start("").await;
        for uid in ["P1", "P2", "P3"] {
            rig.add(uid, "");
        }
        let output = fetch(config(&rig), &[]).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        for drawn in ["messages", "[=", "KiB", "\r", "\x1b["] {
            assert!(!stderr.contains(drawn), "{drawn:?} on stderr: {stderr}");
        }
        assert!(
            stderr.contains("poll finished"),
            "the log is still there: {stderr}"
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("3 delivered"), "{stdout}");
        rig.assert_delivered_once(&["P1", "P2", "P3"]);
    })
    .await;
}

/// `popferry [flags] fetch` with a pty for its stdin, stdout and stderr;
/// what the terminal showed.
async fn fetch_on_a_terminal(config: PathBuf, flags: &str) -> String {
    let command = format!(
        "{} -c '{}' {flags} fetch",
        env!("CARGO_BIN_EXE_popferry"),
        config.display()
    );
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("script")
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .env_remove("POPFERRY_CONFIG")
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run script(1) from util-linux")
    })
    .await
    .expect("join");
    let shown = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{shown}");
    shown
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_the_bars_are_drawn_unless_quiet() {
    within(async {
        let rig = Rig::start("").await;
        rig.add("T1", "");
        rig.add("T2", "");
        let shown = fetch_on_a_terminal(config(&rig), "").await;
        assert!(shown.contains("2/2 messages"), "{shown:?}");
        assert!(shown.contains("alice: ok in "), "{shown:?}");
        rig.add("T3", "");
        let quiet = fetch_on_a_terminal(config(&rig), "-q").await;
        assert!(!quiet.contains("messages"), "{quiet:?}");
        assert!(quiet.contains("1 delivered"), "{quiet:?}");
    })
    .await;
}
