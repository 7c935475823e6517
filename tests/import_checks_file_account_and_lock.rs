//! `popferry import` without any server: a malformed state file, a file no
//! account matches and a ledger held by a polling process are usage errors
//! (exit 2) that change nothing; a good file is recorded once.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use support::popferry::{run_popferry, RunOutput};

/// A config with account `work` (alice on pop.example.com, kept mail) in a
/// fresh folder, its ledger `popferry.db` beside it (not created yet).
struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = "state = \"popferry.db\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = 2525\n\
                      tls = \"none\"\n\n[[account]]\nname = \"work\"\nhost = \"pop.example.com\"\n\
                      username = \"alice\"\npassword = \"pw\"\n\
                      deliver_to = [\"alice@example.org\"]\nkeep = true\n";
        let path = dir.path().join("popferry.toml");
        fs::write(&path, config).expect("write config");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        Self { dir }
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, bytes).expect("write state file");
        path
    }

    fn ledger(&self) -> PathBuf {
        self.dir.path().join("popferry.db")
    }

    fn import(&self, args: &[&str]) -> RunOutput {
        let config = self.dir.path().join("popferry.toml");
        let mut all = vec!["import"];
        all.extend_from_slice(args);
        run_popferry(&config, &all)
    }
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

#[test]
fn a_good_fetchids_file_is_recorded_once() {
    let w = World::new();
    let file = w.file(
        ".fetchids",
        b"alice@pop.example.com 000000016b0f572e\nalice@pop.example.com 000000026b0f572e\n",
    );
    let out = w.import(&["fetchmail", arg(&file)]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout
            .contains("imported 2 unique-ids for account work from"),
        "{out}"
    );
    let out = w.import(&["fetchmail", arg(&file), "--account", "work"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains("imported 0 unique-ids") && out.stdout.contains("2 already known"),
        "{out}"
    );
}

#[test]
fn a_malformed_file_names_its_line_and_changes_nothing() {
    let w = World::new();
    let file = w.file(
        "alice_at_pop.example.com",
        b"# mpop\n 2 pop.example.com alice\nu1\n",
    );
    let out = w.import(&["mpop", arg(&file)]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("line 3"), "names the line\n{out}");
    assert!(
        out.stderr.contains("fewer unique-ids than counted"),
        "{out}"
    );
    assert!(!w.ledger().exists(), "the ledger was not even opened");
}

#[test]
fn a_file_no_account_matches_asks_for_one() {
    let w = World::new();
    let file = w.file("oldmail-pop.example.com-995-bob", b"u1\x001796167498\n");
    let out = w.import(&["getmail", arg(&file)]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("--account NAME"), "{out}");
    assert!(!w.ledger().exists());

    let out = w.import(&["getmail", arg(&file), "--account", "nobody"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("no account named \"nobody\""), "{out}");

    let out = w.import(&["getmail", arg(&file), "--account", "work"]);
    assert_eq!(out.code, Some(0), "the user says whose it is\n{out}");
    assert!(
        out.stdout
            .contains("imported 1 unique-ids for account work"),
        "{out}"
    );
}

#[test]
fn a_ledger_in_use_by_a_poller_is_refused() {
    let w = World::new();
    let file = w.file(".fetchids", b"alice@pop.example.com u1\n");
    let held = popferry::ledger::Ledger::open(&w.ledger()).expect("hold the ledger lock");
    let out = w.import(&["fetchmail", arg(&file)]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains("in use by another popferry process"),
        "{out}"
    );
    drop(held);
    let out = w.import(&["fetchmail", arg(&file)]);
    assert_eq!(out.code, Some(0), "{out}");
}
