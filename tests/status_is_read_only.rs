//! `popferry status` only reads: a missing ledger is "nothing fetched yet"
//! and nothing is created, a ledger nobody may write is read (as root and
//! as its unprivileged owner), it reads beside a `popferry run` that holds
//! the ledger's lock, and a ledger it cannot read exits 2 in plain words.

mod harness;
mod pop3_server;
mod smtp_receiver;
mod status_cli;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use harness::within;
use status_cli::{alice, exists, until, Mailbox};

/// The unprivileged user the read-only test runs `status` as, when the
/// suite runs as root (as CI does).
const NOBODY: u32 = 65534;

#[tokio::test]
async fn status_on_a_missing_ledger_creates_nothing_and_exits_0() {
    within(async {
        let mailbox = Mailbox::start("").await;
        let state = mailbox.dir.path().join("var/lib/popferry/ledger.db");
        mailbox.write_config(&state.to_string_lossy(), "");

        let stdout = mailbox.popferry(&["status"]).await.ok();
        assert_eq!(
            stdout,
            format!("nothing fetched yet (no ledger at {})\n", state.display())
        );
        let document = mailbox.status_json(&[]).await;
        assert_eq!(document["ledger_state"], "missing");
        assert_eq!(alice(&document)["totals"]["delivered"], 0);
        let detail = mailbox.status_json(&["alice"]).await;
        assert_eq!(alice(&detail)["waiting"], serde_json::json!([]));

        let var = mailbox.dir.path().join("var");
        assert!(!exists(&var), "status created {}", var.display());
    })
    .await;
}

/// Makes `path` and everything under it belong to `uid`.
fn chown_all(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).expect("chown");
    if path.is_dir() {
        for entry in fs::read_dir(path).expect("read_dir") {
            chown_all(&entry.expect("entry").path(), uid);
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn status_reads_a_ledger_nobody_may_write() {
    within(async {
        let mailbox = Mailbox::start("").await;
        mailbox.add(&["m1", "m2", "m3"], "");
        mailbox.fetch().await;
        let dir = mailbox.dir.path();
        let root = fs::metadata("/proc/self").expect("/proc/self").uid() == 0;
        if root {
            chown_all(dir, NOBODY);
        }
        fs::set_permissions(mailbox.ledger(), fs::Permissions::from_mode(0o400)).expect("chmod");
        // Not even SQLite's -wal and -shm files could be made beside it.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o500)).expect("chmod");
        let before = names(dir);

        let as_owner = mailbox
            .popferry_as(root.then_some(NOBODY), &["status"])
            .await;
        let as_root = mailbox.popferry(&["status", "--json"]).await;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).expect("chmod");

        let stdout = as_owner.ok();
        assert!(
            stdout.contains("totals:     delivered 3, deleted 3"),
            "{stdout}"
        );
        let document: serde_json::Value = serde_json::from_str(&as_root.ok()).expect("json");
        assert_eq!(alice(&document)["totals"]["delivered"], 3);
        assert_eq!(names(dir), before, "status created files");
        let mode = fs::metadata(mailbox.ledger()).expect("ledger").mode() & 0o777;
        assert_eq!(mode, 0o400);
    })
    .await;
}

#[tokio::test]
async fn status_reads_beside_a_running_daemon_that_holds_the_lock() {
    within(async {
        let mailbox = Mailbox::start("").await;
        mailbox.add(&["m1", "m2"], "");
        let _daemon = mailbox.daemon();
        until("the daemon to empty the mailbox", || {
            mailbox.pop3.uids().is_empty()
        })
        .await;

        let refused = mailbox.popferry(&["fetch"]).await;
        assert!(
            refused
                .stderr
                .contains("in use by another popferry process"),
            "the daemon holds the lock: {refused:?}"
        );
        mailbox.add(&["m3"], "");
        until("the daemon to take m3", || mailbox.pop3.uids().is_empty()).await;
        let document = mailbox.status_json(&["alice"]).await;
        let account = alice(&document);
        assert_eq!(account["totals"]["delivered"], 3, "{document}");
        assert!(
            !account["recent_polls"]
                .as_array()
                .expect("polls")
                .is_empty(),
            "{document}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_ledger_that_cannot_be_read_exits_2_with_a_plain_error() {
    within(async {
        let mailbox = Mailbox::start("").await;
        let ledger = mailbox.ledger();
        fs::write(&ledger, b"not a database, just text\n").expect("write");
        let garbage = mailbox.popferry(&["status"]).await;
        assert_eq!(garbage.code, Some(2), "{garbage:?}");
        let expected = format!(
            "popferry: {} is not a popferry ledger (not an SQLite database)\n",
            ledger.display()
        );
        assert_eq!(garbage.stderr, expected);

        mailbox.add(&["m1"], "");
        fs::remove_file(&ledger).expect("rm");
        mailbox.fetch().await;
        fs::set_permissions(&ledger, fs::Permissions::from_mode(0o000)).expect("chmod");
        let root = fs::metadata("/proc/self").expect("/proc/self").uid() == 0;
        if root {
            chown_all(mailbox.dir.path(), NOBODY);
        }
        let denied = mailbox
            .popferry_as(root.then_some(NOBODY), &["status"])
            .await;
        assert_eq!(denied.code, Some(2), "{denied:?}");
        assert_eq!(
            denied.stderr,
            format!(
                "popferry: cannot read the ledger {}: Permission denied (os error 13)\n",
                ledger.display()
            )
        );
        assert!(denied.stdout.is_empty(), "{denied:?}");
    })
    .await;
}
