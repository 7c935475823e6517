//! With `tls = "starttls"`, an attacker on the path who strips STLS from
//! the POP3 capabilities or STARTTLS from the EHLO reply, or who slips bytes
//! in behind the server's "go ahead", gets an error and no credentials:
//! the connection is dropped before any USER, PASS, AUTH, MAIL or message
//! byte is sent.
//!
//! The servers here are scripted peers (`tests/hostile_peer`) that record
//! every line the client sends, so the tests can check what crossed the
//! wire in the clear.

mod hostile_peer;

use std::time::Duration;

use hostile_peer::{Peer, Reply};

use popferry::config::{Config, TlsMode};
use popferry::deliver::Relay;
use popferry::session::Session;

fn config(pop3_port: u16, smtp_port: u16) -> Config {
    let text = format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"starttls\"\n\
         username = \"relay-user\"\npassword = \"relay-secret\"\ntimeout = \"5s\"\n\n\
         [[account]]\nname = \"alice\"\nhost = \"127.0.0.1\"\nport = {pop3_port}\n\
         tls = \"starttls\"\nusername = \"alice\"\npassword = \"pop-secret\"\n\
         deliver_to = [\"alice@example.org\"]\ntimeout = \"5s\"\n"
    );
    let config = Config::from_toml(&text, std::path::Path::new("/nonexistent/popferry.toml"))
        .expect("test config");
    assert_eq!(config.accounts[0].pop3.tls, TlsMode::StartTls);
    config
}

/// Lines that would carry or follow a login.
fn sent_credentials(peer: &Peer) -> Vec<String> {
    let risky = ["USER", "PASS", "AUTH", "APOP", "MAIL", "RCPT", "DATA"];
    peer.commands()
        .iter()
        .filter(|l| {
            risky
                .iter()
                .any(|verb| l.to_ascii_uppercase().starts_with(verb))
        })
        .cloned()
        .collect()
}

async fn open_fails(port: u16) -> String {
    let config = config(port, 1);
    let open = tokio::time::timeout(Duration::from_secs(10), Session::open(&config.accounts[0]));
    match open.await.expect("no hang") {
        Ok(_) => panic!("the session must not open"),
        Err(err) => err.to_string(),
    }
}

#[tokio::test]
async fn pop3_server_without_stls_gets_no_credentials() {
    let peer = Peer::start(Reply::text("+OK ready\r\n"), |line| match line {
        "CAPA" => Reply::text("+OK\r\nUSER\r\nUIDL\r\nSASL PLAIN\r\n.\r\n"),
        _ => Reply::text("+OK\r\n"),
    })
    .await;
    let err = open_fails(peer.port()).await;
    assert!(err.contains("STLS"), "{err}");
    assert!(err.contains(&peer.addr()), "{err}");
    assert_eq!(sent_credentials(&peer), Vec::<String>::new());
}

#[tokio::test]
async fn pop3_bytes_injected_behind_the_stls_reply_are_refused() {
    let peer = Peer::start(Reply::text("+OK ready\r\n"), |line| match line {
        "CAPA" => Reply::text("+OK\r\nSTLS\r\nUSER\r\n.\r\n"),
        "STLS" => Reply::text("+OK begin TLS\r\n+OK injected in the clear\r\n"),
        _ => Reply::text("+OK\r\n"),
    })
    .await;
    let err = open_fails(peer.port()).await;
    assert!(err.contains(&peer.addr()), "{err}");
    assert_eq!(sent_credentials(&peer), Vec::<String>::new());
    assert_eq!(peer.commands().last().map(String::as_str), Some("STLS"));
}

#[tokio::test]
async fn relay_without_starttls_gets_no_credentials_and_no_message() {
    let peer = Peer::start(Reply::text("220 relay ready\r\n"), |line| {
        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => Reply::text("250-relay\r\n250-AUTH PLAIN LOGIN\r\n250 PIPELINING\r\n"),
            "QUIT" => Reply::text("221 bye\r\n"),
            _ => Reply::text("250 ok\r\n"),
        }
    })
    .await;
    let config = config(1, peer.port());
    let relay = Relay::new(&config.accounts[0].smtp, "test").expect("relay");
    let message = b"From: a@example.net\r\nSubject: x\r\n\r\nsecret body\r\n";
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        relay.deliver(message, &["alice@example.org".to_owned()]),
    )
    .await
    .expect("no hang");
    let Err(refusal) = outcome else {
        panic!("a relay that cannot be secured is not set up: {outcome:?}");
    };
    let reason = refusal.to_string();
    assert!(reason.contains("STARTTLS"), "{reason}");
    assert_eq!(sent_credentials(&peer), Vec::<String>::new());
    assert!(
        !peer.commands().iter().any(|l| l.contains("secret body")),
        "the message crossed in the clear"
    );
}
