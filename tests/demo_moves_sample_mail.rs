//! `popferry demo` is the README's first command: on a machine with nothing
//! installed it must move every sample message through the real fetch path
//! (TLS verified against the demo's own CA), byte for byte, exactly once.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

fn demo(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popferry"))
        .args(["demo", "--dir"])
        .arg(dir)
        .env_remove("POPFERRY_CONFIG")
        .output()
        .expect("run popferry demo")
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn demo_delivers_every_sample_once_and_empties_the_mailbox() {
    let root = tempfile::tempdir().expect("temp dir");
    let dir = root.path().join("demo");
    let out = demo(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("5 listed, 5 delivered, 5 deleted"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 listed, 2 delivered, 2 deleted"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("left on the POP3 server: 0").count(), 2);
    assert!(
        stdout.contains("totals:     delivered 7, deleted 7"),
        "the status totals add up to both fetches: {stdout}"
    );
    assert_eq!(
        stdout.matches("from <>:").count(),
        1,
        "the null sender is explained, once: {stdout}"
    );
    assert!(
        out.stderr.is_empty(),
        "no log lines in the middle of the report: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut files: Vec<_> = fs::read_dir(dir.join("delivered"))
        .expect("delivered folder")
        .map(|entry| entry.expect("entry").path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 7, "one file per sample message: {files:?}");
    for file in &files {
        let data = fs::read(file).expect("read delivered message");
        assert!(
            data.starts_with(b"Received: from 127.0.0.1"),
            "{} lacks the trace header naming the POP3 server",
            file.display()
        );
    }
    // Messages go to the relay over parallel connections, so the files'
    // order is the order of arrival, not the mailbox's: find each by what
    // it holds.
    let messages: Vec<Vec<u8>> = (files.iter())
        .map(|file| fs::read(file).expect("read delivered message"))
        .collect();
    let holds = |needle: &[u8]| messages.iter().any(|m| find(m, needle));
    assert!(
        holds(b"escaped on the wire. These survive:\r\n.\r\n..\r\n.hidden\r\n"),
        "dot lines must arrive unstuffed and intact"
    );
    assert!(holds("Grüße aus Köln".as_bytes()));
    assert!(
        messages.iter().any(|m| m.len() > 256 * 1024),
        "the large sample"
    );
    assert!(
        stdout.contains("from bounces@demo.example"),
        "Return-Path becomes the envelope sender: {stdout}"
    );

    let config = fs::metadata(dir.join("popferry.toml")).expect("config");
    assert_eq!(config.permissions().mode() & 0o777, 0o600);
    assert!(dir.join("popferry.db").is_file(), "the ledger is kept");
}

#[test]
fn demo_refuses_a_folder_that_is_not_empty() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("precious.txt"), "keep me").expect("write");
    let out = demo(dir.path());
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not empty") && stderr.contains("--dir"),
        "{stderr}"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("precious.txt")).expect("read"),
        "keep me"
    );
}
