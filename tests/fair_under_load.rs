//! One server that stalls cannot starve the accounts on the others: with
//! more accounts due than `[daemon] max_concurrent_polls` lets poll at
//! once, a server's accounts hold at most `max_connections_per_server` of
//! those slots, so the accounts of a healthy server keep their interval
//! while every poll of the stalled one waits out its timeout.

mod pop3_server;
mod smtp_receiver;
mod support;

use std::time::Duration;

use pop3_server::{Options, Pop3Server};
use serde_json::Value;
use smtp_receiver::SmtpReceiver;
use support::popferry::{spawn_popferry, AccountConfig, TestConfig};
use tokio::net::TcpListener;

/// Accepts connections and never says a word: every poll of it waits for
/// its timeout.
async fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_server_leaves_the_other_servers_their_polls() {
    const HEALTHY: usize = 6;
    const STALLED: usize = 20;
    let options = Options {
        aliases: (0..HEALTHY).map(|i| format!("user{i}")).collect(),
        ..Options::default()
    };
    let pop3 = Pop3Server::start(options.clone()).await;
    let silent = silent_server().await;
    let smtp = SmtpReceiver::start().await;
    let mut accounts: Vec<AccountConfig> = (0..HEALTHY)
        .map(|i| {
            let user = format!("user{i}");
            AccountConfig::plain(
                &format!("healthy{i}"),
                pop3.port(),
                &user,
                &options.password,
            )
        })
        .collect();
    accounts.extend((0..STALLED).map(|i| AccountConfig {
        timeout: "5s".to_owned(),
        ..AccountConfig::plain(&format!("stalled{i}"), silent, "nobody", "x")
    }));
    let config = TestConfig {
        dir: tempfile::tempdir().expect("temp dir"),
        smtp_port: smtp.port(),
        smtp_table: None,
        daemon: "max_concurrent_polls = 4\nmax_connections_per_server = 2".to_owned(),
        accounts,
    };
    let log = config.dir.path().join("popferry.log");
    let mut daemon = spawn_popferry(&config.write(), &["run"], &log);
    tokio::time::sleep(Duration::from_secs(8)).await;
    daemon.signal("TERM");
    assert!(daemon.0.wait().expect("wait").success());

    // Six accounts polled every second for 8 s, two at a time.
    let logins = pop3.logins();
    assert!(
        logins >= 5 * HEALTHY,
        "the healthy server's accounts were starved: {logins} logins in 8 s"
    );
    let out = config.run(&["status", "--json"]);
    let doc: Value = serde_json::from_str(&out.stdout).expect("status JSON");
    for entry in doc["accounts"].as_array().expect("accounts") {
        let name = entry["name"].as_str().expect("name");
        if name.starts_with("healthy") {
            assert_eq!(entry["last_poll"]["outcome"], "ok", "{entry}");
        }
    }
}
