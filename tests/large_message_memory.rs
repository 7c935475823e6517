//! Moving one 100 MiB message keeps `popferry fetch` under 150 MiB of
//! resident memory: the message is held once, as fetched, and stuffed for
//! SMTP a chunk at a time, never copied whole.
//!
//! The process's own high-water mark (`VmHWM` in /proc) is read while it
//! runs; it only ever grows, so the last reading before exit is the peak.

mod pop3_server;
mod smtp_receiver;
mod support;

use std::process::Stdio;
use std::time::Duration;

use pop3_server::{Options, Pop3Server};
use smtp_receiver::{SmtpReceiver, Verdict};
use support::popferry::{popferry_command, AccountConfig, TestConfig};
use support::watch::peak_until_exit;

const MESSAGE: usize = 100 * 1024 * 1024;
const LIMIT_KIB: u64 = 150 * 1024;
const RUN_LIMIT: Duration = Duration::from_secs(180);

fn big_message() -> Vec<u8> {
    let mut bytes = b"Return-Path: <sender@example.net>\r\nFrom: sender@example.net\r\n\
        To: alice@example.org\r\nSubject: one hundred MiB\r\n\r\n"
        .to_vec();
    let mut n = 0u64;
    while bytes.len() < MESSAGE {
        // Every line starts with a dot now and then, so stuffing is
        // exercised all the way through.
        let line = if n.is_multiple_of(7) {
            format!(".line {n:>12} {}\r\n", "y".repeat(60))
        } else {
            format!("line {n:>12} {}\r\n", "x".repeat(60))
        };
        bytes.extend_from_slice(line.as_bytes());
        n += 1;
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hundred_mib_message_moves_within_150_mib_of_memory() {
    let options = Options::default();
    let (user, password) = (options.user.clone(), options.password.clone());
    let pop3 = Pop3Server::start(options).await;
    let smtp = SmtpReceiver::start().await;
    smtp.set_judge(|_| Verdict::Accept);
    let message = big_message();
    pop3.add("big", &message);

    let account = AccountConfig {
        max_message_size: Some("200MiB".into()),
        timeout: "60s".into(),
        ..AccountConfig::plain("big", pop3.port(), &user, &password)
    };
    let config = TestConfig {
        dir: tempfile::tempdir().expect("temp dir"),
        smtp_port: smtp.port(),
        smtp_table: None,
        daemon: String::new(),
        accounts: vec![account],
    };
    let child = popferry_command(&config.write(), &["fetch"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start popferry");
    let (status, peak_kib) = tokio::task::spawn_blocking(move || peak_until_exit(child, RUN_LIMIT))
        .await
        .expect("monitor");

    eprintln!(
        "peak RSS moving {} MiB: {:.1} MiB",
        MESSAGE >> 20,
        peak_kib as f64 / 1024.0
    );
    assert!(status.success(), "popferry fetch failed: {status}");
    let accepted = smtp.accepted();
    assert_eq!(accepted.len(), 1, "one delivery");
    assert!(
        accepted[0].data.ends_with(&message),
        "the relay got the message intact"
    );
    assert!(pop3.maildrop().is_empty(), "deleted after delivery");
    assert!(
        peak_kib < LIMIT_KIB,
        "peak RSS {peak_kib} KiB is over the {LIMIT_KIB} KiB budget"
    );
}
