//! One hostile server does not hold up the other accounts of `popferry
//! run`. With a single poll slot (`max_concurrent_polls = 1`) the
//! healthy account can only be polled when the slowloris account's poll
//! has given up, so its mail arriving, exactly once, while the hostile
//! account keeps failing proves each hostile poll ends within its
//! timeout and frees the slot.

mod hostile_peer;
mod pop3_server;
mod smtp_receiver;
mod support;

use std::time::Duration;

use hostile_peer::{Peer, Reply};
use pop3_server::{Options, Pop3Server};
use smtp_receiver::SmtpReceiver;
use support::popferry::{spawn_popferry, AccountConfig, TestConfig};
use support::watch::wait_for_lines;

const UIDS: [&str; 3] = ["h1", "h2", "h3"];
const LIMIT: Duration = Duration::from_secs(60);

fn message(uid: &str) -> Vec<u8> {
    format!("From: a@example.net\r\nSubject: {uid}\r\nX-Test-Uid: {uid}\r\n\r\nbody {uid}\r\n")
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_account_delivers_exactly_once_while_a_slowloris_account_fails() {
    let slowloris = Peer::start(
        Reply::Trickle {
            bytes: vec![b'+'; 100_000],
            every: Duration::from_secs(1),
        },
        |_| Reply::Silence,
    )
    .await;
    let options = Options::default();
    let (user, password) = (options.user.clone(), options.password.clone());
    let healthy = Pop3Server::start(options).await;
    for uid in UIDS {
        healthy.add(uid, &message(uid));
    }
    let smtp = SmtpReceiver::start().await;
    let config = TestConfig {
        dir: tempfile::tempdir().expect("temp dir"),
        smtp_port: smtp.port(),
        smtp_table: None,
        daemon: "max_concurrent_polls = 1".into(),
        accounts: vec![
            AccountConfig::plain("slowloris", slowloris.port(), "u", "p"),
            AccountConfig::plain("healthy", healthy.port(), &user, &password),
        ],
    };
    let log = config.dir.path().join("popferry.log");
    let child = spawn_popferry(&config.write(), &["run"], &log);

    let watched = log.clone();
    let failures = tokio::task::spawn_blocking(move || {
        wait_for_lines(&watched, "too slowly", 3, LIMIT);
        wait_for_lines(&watched, "poll finished", 1, LIMIT)
    })
    .await
    .expect("watcher");
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !healthy.maildrop().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "healthy mailbox not emptied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(child);

    let text = std::fs::read_to_string(&log).expect("log");
    assert!(!text.contains("panicked"), "{text}");
    let slow_failures: Vec<&str> = text.lines().filter(|l| l.contains("too slowly")).collect();
    assert!(
        slow_failures
            .iter()
            .all(|l| l.contains("slowloris") && l.contains(&slowloris.addr())),
        "{slow_failures:?}"
    );
    assert!(
        failures.iter().all(|l| l.contains("account=healthy")),
        "{failures:?}"
    );
    for uid in UIDS {
        let deliveries = smtp
            .accepted()
            .iter()
            .filter(|offer| {
                String::from_utf8_lossy(&offer.data).contains(&format!("X-Test-Uid: {uid}\r\n"))
            })
            .count();
        assert_eq!(deliveries, 1, "deliveries of {uid}:\n{text}");
    }
    assert!(
        slowloris.commands().is_empty(),
        "never got past the greeting"
    );
}
