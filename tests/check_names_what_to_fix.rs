//! `popferry check` without the network: each mistake an account's files
//! or environment can hold is one `FAILED:` line that says what to do, the
//! exit code is 1 then, and only a configuration that holds everywhere
//! gets the `ok` line and exit 0.

mod support;
mod tls_peer;

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use support::popferry::{run_popferry_with, RunOutput};
use tls_peer::{write, Ca, Leaf};

const LEDGER: &str = "state/popferry.db";
const UNSET: &str = "POPFERRY_CHECK_TEST_UNSET";
const RELAY_VAR: &str = "POPFERRY_CHECK_TEST_RELAY";

/// A folder with a one-account configuration whose every item holds:
/// password file 0600, relay password in an environment variable, ledger
/// and quarantine to be created inside the folder.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        secret(dir.path(), "alice.pass", 0o600);
        Setup { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `check` with the ledger at `state`, the account's keys (its
    /// password file unless they set a password) and the relay's.
    fn check(&self, state: &str, account: &str, smtp: &str) -> RunOutput {
        let account = if account.contains("password") {
            account.to_owned()
        } else {
            format!("password_file = \"alice.pass\"\n{account}")
        };
        let text = format!(
            "state = \"{state}\"\n\n[smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n\
             username = \"relay\"\npassword_env = \"{RELAY_VAR}\"\n{smtp}\n\n[[account]]\n\
             name = \"alice\"\nhost = \"pop.example.org\"\nusername = \"alice\"\n\
             deliver_to = [\"alice@example.org\"]\nquarantine_dir = \"held\"\n{account}\n"
        );
        let config = write(self.dir.path(), "popferry.toml", &text);
        fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).expect("chmod");
        let relay_password = self.path("alice.pass");
        run_popferry_with(
            &config,
            &["check"],
            &[(RELAY_VAR, Some(&relay_password)), (UNSET, None)],
        )
    }
}

fn secret(dir: &Path, name: &str, mode: u32) -> PathBuf {
    let path = write(dir, name, "secret\n");
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

/// Exit 1, exactly one failure, on a line that contains `line`.
fn assert_one_failure(out: &RunOutput, line: &str) {
    assert_eq!(out.code, Some(1), "{out}");
    let failed: Vec<&str> = (out.stdout.lines())
        .filter(|l| l.contains("FAILED"))
        .collect();
    assert_eq!(failed.len(), 2, "one item and the verdict:\n{out}");
    assert!(failed[0].contains(line), "{out}");
    assert!(
        failed[1].ends_with("FAILED: 1 problem(s), each on a line above"),
        "{out}"
    );
    assert!(!out.stdout.contains(": ok,"), "{out}");
}

#[test]
fn a_configuration_that_holds_everywhere_is_ok_and_exits_0() {
    let s = Setup::new();
    let leaf = Ca::new("check CA").issue(&["pop.example.org"]);
    let ca_file = write(s.dir.path(), "ca.pem", &leaf.pem);
    let client = Leaf::self_signed(&["client"]);
    write(s.dir.path(), "client.pem", &client.pem);
    write(s.dir.path(), "client.key", &client.key_pem);
    let account = "tls = \"implicit\"\nca_file = \"ca.pem\"\n\
                   client_cert = \"client.pem\"\nclient_key = \"client.key\"";
    let out = s.check(LEDGER, account, "");
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.stdout.contains("FAILED"), "{out}");
    let ledger = s.path("state/popferry.db");
    for line in [
        format!("ledger: {}: not created yet; folder ", ledger.display()),
        format!("trusts ca_file {} (1 certificate)", ca_file.display()),
        "ca_file certificate: subject CN=popferry test server, issuer CN=check CA, valid from "
            .to_owned(),
        format!("SHA-256 {}", leaf.fingerprint()),
        format!("client_key {} matches it", s.path("client.key").display()),
        format!(
            "password_file {}: readable by its owner only (mode 0600)",
            s.path("alice.pass").display()
        ),
        format!("relay password_env {RELAY_VAR}: set (not shown)"),
        format!(
            "quarantine_dir {}: does not exist yet; popferry will create it",
            s.path("held").display()
        ),
        format!(
            "{}: ok, 1 account(s), ledger {}",
            s.path("popferry.toml").display(),
            ledger.display()
        ),
    ] {
        assert!(out.stdout.contains(&line), "{line}\n{out}");
    }
    assert!(!out.text().contains("secret"), "no password shown:\n{out}");
    assert!(!s.path("state").exists(), "check created the ledger folder");
    assert!(
        !s.path("held").exists(),
        "check created the quarantine folder"
    );
}

#[test]
fn a_missing_password_file_is_named_with_the_chmod_to_run() {
    let s = Setup::new();
    let out = s.check(LEDGER, "password_file = \"nowhere.pass\"", "");
    let path = s.path("nowhere.pass").display().to_string();
    assert_one_failure(
        &out,
        &format!("password_file {path}: FAILED: does not exist: write the password into it, then run `chmod 600 {path}`"),
    );
}

#[test]
fn a_group_readable_password_file_fails_with_the_chmod_to_run() {
    let s = Setup::new();
    let path = secret(s.dir.path(), "open.pass", 0o644);
    let out = s.check(LEDGER, "password_file = \"open.pass\"", "");
    assert_one_failure(
        &out,
        &format!(
            "FAILED: readable by group/others (mode 0644): run `chmod 600 {}`",
            path.display()
        ),
    );
}

#[test]
fn an_unset_password_variable_fails() {
    let s = Setup::new();
    let out = s.check(LEDGER, &format!("password_env = \"{UNSET}\""), "");
    assert_one_failure(
        &out,
        &format!("password_env {UNSET}: FAILED: {UNSET} is not set"),
    );
}

#[test]
fn a_password_command_not_on_path_fails_without_being_run() {
    let s = Setup::new();
    let out = s.check(
        LEDGER,
        "password_command = \"popferry-no-such-helper show alice\"",
        "",
    );
    assert_one_failure(
        &out,
        "password_command: FAILED: `popferry-no-such-helper` is not found on PATH",
    );
    let marker = s.path("ran");
    let command = format!("password_command = \"touch {}\"", marker.display());
    let out = s.check(LEDGER, &command, "");
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("`touch` is /"), "{out}");
    assert!(!marker.exists(), "check ran the password command");
}

#[test]
fn a_ledger_under_a_regular_file_cannot_be_created() {
    let s = Setup::new();
    let blocker = write(s.dir.path(), "blocker", "not a folder");
    let out = s.check("blocker/sub/popferry.db", "", "");
    assert_one_failure(
        &out,
        &format!("{} is a file, not a folder", blocker.display()),
    );
}

#[test]
fn a_ledger_held_by_a_running_popferry_is_information_not_failure() {
    let s = Setup::new();
    fs::create_dir(s.path("state")).expect("mkdir");
    let ledger = File::create(s.path("state/popferry.db")).expect("ledger");
    ledger
        .try_lock()
        .expect("hold the polling lock as popferry does");
    let out = s.check(LEDGER, "", "");
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("in use by a running popferry"), "{out}");
}

#[test]
fn a_ca_file_that_is_not_pem_fails() {
    let s = Setup::new();
    write(s.dir.path(), "ca.pem", "not a certificate\n");
    let out = s.check(LEDGER, "tls = \"implicit\"\nca_file = \"ca.pem\"", "");
    assert_one_failure(&out, "POP3 pop.example.org:995: FAILED: ca_file ");
}

#[test]
fn an_expired_certificate_fails_with_its_dates() {
    let s = Setup::new();
    let expired = |params: &mut rcgen::CertificateParams| {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    };
    let old = Leaf::self_signed_with(&["pop.example.org"], expired);
    write(s.dir.path(), "ca.pem", &old.pem);
    let out = s.check(LEDGER, "tls = \"implicit\"\nca_file = \"ca.pem\"", "");
    assert_one_failure(
        &out,
        "expired at 2021-01-01 00:00:00 UTC (valid from 2020-01-01",
    );
    let client = Leaf::self_signed_with(&["client"], expired);
    write(s.dir.path(), "client.pem", &client.pem);
    write(s.dir.path(), "client.key", &client.key_pem);
    let keys = "tls = \"implicit\"\nclient_cert = \"client.pem\"\nclient_key = \"client.key\"";
    let out = s.check(LEDGER, keys, "");
    assert_one_failure(
        &out,
        &format!(
            "client_cert {}: FAILED: CN=popferry test server expired at 2021-01-01",
            s.path("client.pem").display()
        ),
    );
}

#[test]
fn a_key_that_does_not_match_its_certificate_stops_the_configuration() {
    let s = Setup::new();
    write(
        s.dir.path(),
        "client.pem",
        &Leaf::self_signed(&["client"]).pem,
    );
    write(
        s.dir.path(),
        "client.key",
        &Leaf::self_signed(&["other"]).key_pem,
    );
    let keys = "tls = \"implicit\"\nclient_cert = \"client.pem\"\nclient_key = \"client.key\"";
    let out = s.check(LEDGER, keys, "");
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains("does not belong to client_cert"),
        "{out}"
    );
}

#[test]
fn the_example_configuration_fails_naming_its_missing_files() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let out = run_popferry_with(&example, &["check"], &[("SUPPORT_RELAY_PASSWORD", None)]);
    assert_eq!(out.code, Some(1), "{out}");
    for missing in ["/etc/popferry/alice.pass", "/etc/popferry/relay.pass"] {
        let line = format!("password_file {missing}: FAILED: does not exist");
        assert!(out.stdout.contains(&line), "{line}\n{out}");
    }
    assert!(
        out.stdout
            .contains("password_env SUPPORT_RELAY_PASSWORD: FAILED"),
        "{out}"
    );
    assert!(!out.stdout.contains(": ok,"), "{out}");
}
