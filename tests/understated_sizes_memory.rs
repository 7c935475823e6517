//! A server whose LIST understates every message cannot make popferry
//! hold more than `FETCH_AHEAD` of mail plus one message.
//!
//! popferry sends RETRs ahead within a budget counted in LIST's sizes.
//! Here the server offers PIPELINING and claims 1,000 bytes for bodies of
//! 2 MiB, so all 40 RETRs go out at once; the relay takes 100 ms a message,
//! so bodies would pile up faster than they leave. The real `popferry
//! fetch` must still deliver every message, and its peak memory must stay
//! near `FETCH_AHEAD` (8 MiB) instead of the 80 MiB the mailbox holds.

mod hostile_peer;
mod smtp_receiver;
mod support;

use std::time::Duration;

use hostile_peer::{greeting, mailbox, Listed, Peer, Reply};
use smtp_receiver::{SmtpReceiver, Verdict};
use support::popferry::{popferry_command, AccountConfig, TestConfig};
use support::watch::peak_until_exit;

const MESSAGES: usize = 40;
const BODY: usize = 2 * 1024 * 1024;
/// An idle popferry resides in about 10 MiB; add `FETCH_AHEAD`, one body
/// being read, one being sent and room for the allocator.
const LIMIT_KIB: u64 = 40 * 1024;

fn message(n: usize) -> Vec<u8> {
    let mut bytes = format!(
        "From: sender@example.net\r\nTo: alice@example.org\r\nSubject: big {n}\r\n\
         X-Test-Uid: big-{n}\r\n\r\n"
    )
    .into_bytes();
    let line = format!("{}\r\n", "z".repeat(78));
    while bytes.len() < BODY {
        bytes.extend_from_slice(line.as_bytes());
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn understated_list_sizes_do_not_let_bodies_pile_up() {
    let listed: Vec<Listed> = (1..=MESSAGES)
        .map(|n| Listed {
            uid: format!("big-{n}"),
            list_size: 1000,
            body: message(n),
        })
        .collect();
    let serve = mailbox(listed);
    let peer = Peer::start(greeting(), move |command| match command {
        "CAPA" => Reply::listing(["USER", "UIDL", "PIPELINING"].map(str::to_owned)),
        _ => serve(command),
    })
    .await;
    let smtp = SmtpReceiver::start().await;
    smtp.set_judge(|_| {
        std::thread::sleep(Duration::from_millis(100));
        Verdict::Accept
    });
    let config = TestConfig {
        dir: tempfile::tempdir().expect("temp dir"),
        smtp_port: smtp.port(),
        smtp_table: None,
        daemon: String::new(),
        accounts: vec![AccountConfig::plain("liar", peer.port(), "u", "p")],
    };

    let path = config.write();
    let (status, peak_kib) = tokio::task::spawn_blocking(move || {
        let child = popferry_command(&path, &["fetch"])
            .spawn()
            .expect("start popferry");
        peak_until_exit(child, Duration::from_secs(120))
    })
    .await
    .expect("watcher");

    eprintln!(
        "{MESSAGES} bodies of {} MiB listed as 1000 bytes: peak RSS {:.1} MiB",
        BODY >> 20,
        peak_kib as f64 / 1024.0
    );
    assert!(status.success(), "popferry fetch: {status}");
    assert!(
        peer.received("RETR").len() == MESSAGES,
        "every message fetched once"
    );
    assert_eq!(smtp.accepted().len(), MESSAGES, "every message delivered");
    assert_eq!(peer.received("DELE").len(), MESSAGES, "and then deleted");
    assert!(
        peak_kib < LIMIT_KIB,
        "peak RSS {peak_kib} KiB is over {LIMIT_KIB} KiB"
    );
}
