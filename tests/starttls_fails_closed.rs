//! With `tls = "starttls"`, an attacker on the path who strips STLS from
//! the POP3 capabilities or STARTTLS from the EHLO reply, or who slips bytes
//! in behind the server's "go ahead", gets an error and no credentials:
//! the connection is dropped before any USER, PASS, AUTH, MAIL or message
//! byte is sent.
//!
//! The servers here are scripted peers that record every line the client
//! sends, so the tests can check what crossed the wire in the clear.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use popferry::config::{Config, TlsMode};
use popferry::deliver::{Outcome, Relay};
use popferry::session::Session;

type Lines = Arc<Mutex<Vec<String>>>;

/// A one-connection server on 127.0.0.1 that sends `greeting`, then
/// answers each line with what `reply` returns (nothing for `None`) and
/// records every line. Returns the port and the record.
async fn scripted(greeting: &'static str, reply: fn(&str) -> Option<&'static str>) -> (u16, Lines) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let lines: Lines = Arc::default();
    let record = lines.clone();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.expect("accept");
        let (read, mut write) = socket.into_split();
        write.write_all(greeting.as_bytes()).await.expect("greet");
        let mut read = BufReader::new(read).lines();
        while let Ok(Some(line)) = read.next_line().await {
            let answer = reply(&line);
            record.lock().unwrap().push(line);
            if let Some(answer) = answer {
                if write.write_all(answer.as_bytes()).await.is_err() {
                    break;
                }
            }
        }
    });
    (port, lines)
}

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
fn sent_credentials(lines: &Lines) -> Vec<String> {
    let lines = lines.lock().unwrap();
    let risky = ["USER", "PASS", "AUTH", "APOP", "MAIL", "RCPT", "DATA"];
    lines
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
    let (port, lines) = scripted("+OK ready\r\n", |line| match line {
        "CAPA" => Some("+OK\r\nUSER\r\nUIDL\r\nSASL PLAIN\r\n.\r\n"),
        _ => Some("+OK\r\n"),
    })
    .await;
    let err = open_fails(port).await;
    assert!(err.contains("STLS"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert_eq!(sent_credentials(&lines), Vec::<String>::new());
}

#[tokio::test]
async fn pop3_bytes_injected_behind_the_stls_reply_are_refused() {
    let (port, lines) = scripted("+OK ready\r\n", |line| match line {
        "CAPA" => Some("+OK\r\nSTLS\r\nUSER\r\n.\r\n"),
        "STLS" => Some("+OK begin TLS\r\n+OK injected in the clear\r\n"),
        _ => Some("+OK\r\n"),
    })
    .await;
    let err = open_fails(port).await;
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert_eq!(sent_credentials(&lines), Vec::<String>::new());
    assert_eq!(
        lines.lock().unwrap().last().map(String::as_str),
        Some("STLS")
    );
}

#[tokio::test]
async fn relay_without_starttls_gets_no_credentials_and_no_message() {
    let (port, lines) = scripted("220 relay ready\r\n", |line| {
        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => Some("250-relay\r\n250-AUTH PLAIN LOGIN\r\n250 PIPELINING\r\n"),
            "QUIT" => Some("221 bye\r\n"),
            _ => Some("250 ok\r\n"),
        }
    })
    .await;
    let config = config(1, port);
    let relay = Relay::new(&config.accounts[0].smtp).expect("relay");
    let message = b"From: a@example.net\r\nSubject: x\r\n\r\nsecret body\r\n";
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        relay.deliver(message, &["alice@example.org".to_owned()]),
    )
    .await
    .expect("no hang");
    let Outcome::Deferred(reason) = outcome else {
        panic!("a relay that cannot be secured defers: {outcome:?}");
    };
    assert!(reason.contains("STARTTLS"), "{reason}");
    assert_eq!(sent_credentials(&lines), Vec::<String>::new());
    assert!(
        !lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("secret body")),
        "the message crossed in the clear"
    );
}
