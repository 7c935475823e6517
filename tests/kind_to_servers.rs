//! Many accounts on one server never arrive as a burst: `popferry run`
//! spreads the first polls of a server's accounts over their interval, and
//! both `run` and `fetch` keep to `[daemon] max_logins_per_second` for
//! that server however many accounts are due at once; `run` warns when
//! the accounts' intervals need more logins than the cap lets through.

mod pop3_server;
mod smtp_receiver;
mod support;

use std::time::{Duration, Instant};

use pop3_server::{Options, Pop3Server};
use serde_json::Value;
use smtp_receiver::SmtpReceiver;
use support::popferry::{spawn_popferry, AccountConfig, TestConfig};

/// One server that `count` user names log in to, and a config with one
/// account for each, polled every `interval`.
async fn setup(
    count: usize,
    interval: &str,
    daemon: &str,
) -> (Pop3Server, SmtpReceiver, TestConfig) {
    let options = Options {
        aliases: (0..count).map(|i| format!("user{i}")).collect(),
        ..Options::default()
    };
    let pop3 = Pop3Server::start(options.clone()).await;
    let smtp = SmtpReceiver::start().await;
    let accounts = (0..count)
        .map(|i| AccountConfig {
            poll_interval: interval.to_owned(),
            ..AccountConfig::plain(
                &format!("acct{i}"),
                pop3.port(),
                &format!("user{i}"),
                &options.password,
            )
        })
        .collect();
    let config = TestConfig {
        dir: tempfile::tempdir().expect("temp dir"),
        smtp_port: smtp.port(),
        smtp_table: None,
        daemon: daemon.to_owned(),
        accounts,
    };
    (pop3, smtp, config)
}

/// The server's login count, read every 10 ms for `span`: when each login
/// was seen, from the start of the watch.
async fn watch_logins(pop3: &Pop3Server, span: Duration) -> Vec<Duration> {
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < span {
        let now = pop3.logins();
        while seen.len() < now {
            seen.push(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    seen
}

/// The most logins in any window of one second.
fn most_in_one_second(logins: &[Duration]) -> usize {
    (0..logins.len())
        .map(|i| {
            let end = logins[i] + Duration::from_secs(1);
            logins[i..].iter().take_while(|at| **at < end).count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_polls_of_one_server_spread_over_the_interval() {
    let (pop3, _smtp, config) = setup(20, "20s", "max_logins_per_second = 100").await;
    let log = config.dir.path().join("popferry.log");
    let _daemon = spawn_popferry(&config.write(), &["run"], &log);
    let logins = watch_logins(&pop3, Duration::from_millis(3500)).await;
    // The k-th of 20 accounts first polls after k/20 of 20 s: one a
    // second, not all 20 in the first seconds.
    assert!(
        (3..=5).contains(&logins.len()),
        "about 3.5 s of first polls at one a second: {logins:?}"
    );
    assert!(
        most_in_one_second(&logins) <= 2,
        "first polls arrived in a burst: {logins:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_keeps_to_the_login_cap_and_warns_when_intervals_need_more() {
    let (pop3, _smtp, config) = setup(20, "1s", "max_logins_per_second = 5").await;
    let log = config.dir.path().join("popferry.log");
    let mut daemon = spawn_popferry(&config.write(), &["run"], &log);
    let logins = watch_logins(&pop3, Duration::from_secs(6)).await;
    daemon.signal("TERM");
    assert!(daemon.0.wait().expect("wait").success());
    // 20 accounts due every second would be 20 logins a second.
    assert!(
        most_in_one_second(&logins) <= 6,
        "more than 5 logins in one second: {logins:?}"
    );
    assert!(
        logins.len() >= 24,
        "the cap's 5 a second kept up: {logins:?}"
    );
    let out = config.run(&["status", "--json"]);
    let doc: Value = serde_json::from_str(&out.stdout).expect("status JSON");
    let accounts = doc["accounts"].as_array().expect("accounts");
    assert_eq!(accounts.len(), 20);
    for entry in accounts {
        assert!(
            entry["last_poll"].is_object(),
            "every account had its turn: {entry}"
        );
    }
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("need 20.0 logins a second") && text.contains("max_logins_per_second (5)"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_keeps_to_the_login_cap_too() {
    let (pop3, _smtp, config) = setup(12, "1s", "max_logins_per_second = 4").await;
    let path = config.write();
    let started = Instant::now();
    let fetch = tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_popferry"))
            .args(["--config", path.to_str().expect("path"), "fetch"])
            .output()
            .expect("run popferry fetch");
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    });
    let logins = watch_logins(&pop3, Duration::from_millis(3400)).await;
    let (status, stdout) = fetch.await.expect("fetch");
    assert!(status.success(), "{stdout}");
    assert_eq!(stdout.matches(": ok in ").count(), 12, "{stdout}");
    assert!(
        started.elapsed() >= Duration::from_millis(2700),
        "12 logins at 4 a second take 2.75 s at least"
    );
    assert!(
        most_in_one_second(&logins) <= 5,
        "more than 4 logins in one second: {logins:?}"
    );
}
