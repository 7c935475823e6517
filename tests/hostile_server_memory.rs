//! The real `popferry` binary against servers that try to make it hold
//! too much: a 10 MB line without CRLF, listings and bodies that never
//! end, and a legitimate-looking UIDL listing of 1,000,000 messages.
//!
//! Each runs `popferry run` until it logs the failed poll; the daemon
//! then backs off and lives on, so its `VmHWM` read at that moment is the
//! exact peak of everything before (see `tests/support/watch.rs`). The
//! figures are printed with `--nocapture`.
//!
//! Bounds: an idle `popferry run` resides in about 10 MiB. A line or a
//! CAPA listing is capped at 8 KiB / 256 lines, so those cases must stay
//! within 32 MiB. A body is capped at `max_message_size` (16 MiB here);
//! the buffer may double once past its LIST size, so 16 MiB × 3 plus the
//! idle size bounds it. A UIDL listing is capped at
//! [`MAX_MESSAGES`](popferry::pop3::listing::MAX_MESSAGES) = 1,000,000
//! lines. A million messages is a mailbox popferry handles (listing,
//! ledger check, plan, then the first RETR): about 290 bytes a message,
//! so 384 MiB with room for the allocator. A listing that never ends is
//! refused at the cap, holding only the parsed listing: 128 MiB.

mod hostile_peer;
mod smtp_receiver;
mod support;

use std::time::Duration;

use hostile_peer::{greeting, logged_in, Peer, Reply};
use smtp_receiver::SmtpReceiver;
use support::popferry::{spawn_popferry, AccountConfig, TestConfig};
use support::watch::{logged_number, vm_hwm_kib, wait_for_lines};

/// `VmHWM` is in KiB.
const MIB_IN_KIB: u64 = 1024;
/// How long each run may take to log its failed poll (the first poll
/// comes within a second or two of the start).
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// What one run showed.
#[derive(Debug)]
struct Measured {
    /// The `poll failed` log line.
    failure: String,
    /// The poll's own duration, from its log line.
    poll_ms: u64,
    peak_kib: u64,
}

/// Runs `popferry run` with one account on `peer` until the poll fails,
/// reads the peak memory, and stops it.
async fn run_against(peer: &Peer, max_message_size: Option<&str>) -> Measured {
    let smtp = SmtpReceiver::start().await;
    let account = AccountConfig {
        max_message_size: max_message_size.map(str::to_owned),
        ..AccountConfig::plain("hostile", peer.port(), "u", "p")
    };
    let config = TestConfig {
        dir: tempfile::tempdir().expect("temp dir"),
        smtp_port: smtp.port(),
        smtp_table: None,
        daemon: String::new(),
        accounts: vec![account],
    };
    let measured = tokio::task::spawn_blocking(move || {
        let log = config.dir.path().join("popferry.log");
        let child = spawn_popferry(&config.write(), &["run"], &log);
        let failure = wait_for_lines(&log, "poll failed", 1, RUN_LIMIT).remove(0);
        let peak_kib = vm_hwm_kib(child.0.id()).expect("VmHWM of the running daemon");
        let text = std::fs::read_to_string(&log).expect("log");
        assert!(!text.contains("panicked"), "{text}");
        let poll_ms = logged_number(&failure, "ms").expect("ms= in the log line");
        Measured {
            failure,
            poll_ms,
            peak_kib,
        }
    })
    .await
    .expect("watcher");
    assert!(smtp.offers().is_empty(), "nothing may be relayed");
    assert!(peer.received("DELE").is_empty(), "nothing may be deleted");
    assert!(
        measured.failure.contains(&peer.addr()),
        "names the server: {}",
        measured.failure
    );
    eprintln!(
        "{}: failed after {} ms, peak RSS {:.1} MiB",
        measured.failure,
        measured.poll_ms,
        measured.peak_kib as f64 / 1024.0
    );
    measured
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_mb_line_without_crlf_is_refused_in_32_mib() {
    let peer = Peer::start(
        Reply::Endless {
            head: b"+OK ".to_vec(),
            unit: b"x".to_vec(),
            total: Some(10_000_000),
        },
        |_| Reply::Close,
    )
    .await;
    let run = run_against(&peer, None).await;
    assert!(
        run.failure.contains("line longer than 8192 bytes"),
        "{run:?}"
    );
    assert!(run.poll_ms < 2000, "{run:?}");
    assert!(run.peak_kib < 32 * MIB_IN_KIB, "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capa_that_never_ends_is_refused_in_32_mib() {
    let peer = Peer::start(greeting(), |_| Reply::Endless {
        head: b"+OK\r\n".to_vec(),
        unit: format!("X-{}\r\n", "N".repeat(8000)).into_bytes(),
        total: None,
    })
    .await;
    let run = run_against(&peer, None).await;
    assert!(
        run.failure.contains("CAPA listing of more than 256"),
        "{run:?}"
    );
    assert!(run.poll_ms < 2000, "{run:?}");
    assert!(run.peak_kib < 32 * MIB_IN_KIB, "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uidl_that_never_ends_stops_at_the_message_cap() {
    let peer = Peer::start(
        greeting(),
        logged_in(|_| Reply::Endless {
            head: b"+OK\r\n".to_vec(),
            unit: b"1 the-same-uid-again-and-again-and-again\r\n".to_vec(),
            total: None,
        }),
    )
    .await;
    let run = run_against(&peer, None).await;
    assert!(run.failure.contains("UIDL listing of more than"), "{run:?}");
    assert!(run.poll_ms < 30_000, "{run:?}");
    assert!(run.peak_kib < 128 * MIB_IN_KIB, "{run:?}");
}

/// A million messages, the cap, is a mailbox popferry takes on: it lists them,
/// checks them against the ledger and plans, then meets the server's
/// refusal of the first RETR (so the test need not deliver a million).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn million_message_uidl_is_handled_within_memory_and_time() {
    const COUNT: u32 = 1_000_000;
    let listing = |line: fn(u32) -> String| Reply::listing((1..=COUNT).map(line));
    let uidl = listing(|n| format!("{n} 0000{n:08x}-uid"));
    let list = listing(|n| format!("{n} {}", 2000 + n % 5000));
    let peer = Peer::start(
        greeting(),
        logged_in(move |command| match command {
            "UIDL" => uidl.clone(),
            "LIST" => list.clone(),
            _ => Reply::text("-ERR [SYS/TEMP] not today\r\n"),
        }),
    )
    .await;
    let run = run_against(&peer, None).await;
    assert!(run.failure.contains("refused RETR"), "{run:?}");
    assert_eq!(
        peer.received("RETR").len(),
        1,
        "got as far as the first RETR"
    );
    assert!(run.poll_ms < 30_000, "{run:?}");
    assert!(run.peak_kib < 384 * MIB_IN_KIB, "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_beyond_max_message_size_is_cut_off_within_three_times_the_limit() {
    let peer = Peer::start(
        greeting(),
        logged_in(|command| match command {
            "UIDL" => Reply::listing(["1 endless".to_owned()]),
            "LIST" => Reply::listing(["1 1000".to_owned()]),
            _ => Reply::Endless {
                head: b"+OK\r\n".to_vec(),
                unit: format!("{}\r\n", "b".repeat(998)).into_bytes(),
                total: None,
            },
        }),
    )
    .await;
    let run = run_against(&peer, Some("16MiB")).await;
    assert!(
        run.failure
            .contains("larger than the limit of 16777216 bytes"),
        "{run:?}"
    );
    assert!(run.poll_ms < 10_000, "{run:?}");
    assert!(
        run.peak_kib < 3 * 16 * MIB_IN_KIB + 10 * MIB_IN_KIB,
        "{run:?}"
    );
}
