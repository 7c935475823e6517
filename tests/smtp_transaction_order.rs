//! The order of popferry's SMTP commands on one connection.
//!
//! * one connection carries every message;
//! * MAIL, RCPT and DATA go out in one write when the relay offers
//!   PIPELINING (RFC 2920), so a message costs two round trips;
//! * the next MAIL never follows the end-of-data dot before the relay's
//!   final reply: Postfix answers a MAIL pipelined behind the dot only
//!   after a delayed-ACK timer (~40 ms a message). This relay holds each
//!   final reply back and records any byte that arrives meanwhile.

mod harness;
mod pop3_server;
mod smtp_receiver;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use harness::within;
use popferry::config::Config;
use popferry::deliver::Outcome::Delivered;
use popferry::deliver::Relay;

#[derive(Debug, Default)]
struct Seen {
    connections: usize,
    delivered: usize,
    /// Bytes the client sent after a dot and before the reply to it.
    early_bytes: usize,
    /// Reads that carried MAIL, RCPT and DATA together.
    pipelined_envelopes: usize,
}

const HOLD: Duration = Duration::from_millis(150);

/// One connection of the scripted relay.
async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Seen>>) {
    let mut buf = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    stream.write_all(b"220 scripted relay\r\n").await.unwrap();
    loop {
        // Commands: answer each complete line in order.
        let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let got = &chunk[..n];
                    if got.starts_with(b"MAIL") && got.windows(4).any(|w| w == b"DATA") {
                        seen.lock().unwrap().pipelined_envelopes += 1;
                    }
                    buf.extend_from_slice(got);
                }
            }
            continue;
        };
        let line: Vec<u8> = buf.drain(..end + 2).collect();
        let reply: &[u8] = match &line[..4.min(line.len())] {
            b"EHLO" => b"250-scripted\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
            b"QUIT" => b"221 bye\r\n",
            b"DATA" => {
                stream.write_all(b"354 go on\r\n").await.unwrap();
                while !buf.windows(5).any(|w| w == b"\r\n.\r\n") {
                    let n = stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "closed during DATA");
                    buf.extend_from_slice(&chunk[..n]);
                }
                let dot = buf.windows(5).position(|w| w == b"\r\n.\r\n").unwrap();
                let early_in_buffer = buf.len() - (dot + 5);
                buf.drain(..dot + 5);
                // Hold the final reply; a correct client sends nothing now.
                let early = match tokio::time::timeout(HOLD, stream.read(&mut chunk)).await {
                    Ok(Ok(n)) => {
                        buf.extend_from_slice(&chunk[..n]);
                        n
                    }
                    _ => 0,
                };
                let mut seen = seen.lock().unwrap();
                seen.early_bytes += early_in_buffer + early;
                seen.delivered += 1;
                b"250 queued\r\n"
            }
            _ => b"250 ok\r\n",
        };
        stream.write_all(reply).await.unwrap();
    }
}

#[tokio::test]
async fn transactions_are_pipelined_and_never_start_before_the_final_reply() {
    within(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let for_server = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                for_server.lock().unwrap().connections += 1;
                tokio::spawn(serve(stream, Arc::clone(&for_server)));
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let toml = format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\n\
             [[account]]\nname = \"a\"\nhost = \"127.0.0.1\"\ntls = \"none\"\n\
             username = \"a\"\npassword = \"p\"\ndeliver_to = [\"a@example.org\", \"b@example.org\"]\n"
        );
        let config = Config::from_toml(&toml, &dir.path().join("popferry.toml")).unwrap();
        let relay = Relay::new(&config.accounts[0].smtp, "test").unwrap();
        let recipients = config.accounts[0].deliver_to.clone();
        for i in 0..4 {
            let message = harness::message(&format!("t{i}"), "");
            let outcome = relay.deliver(&message, &recipients).await.expect("relay set up");
            assert_eq!(outcome, [Delivered, Delivered], "message {i}");
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.delivered, 4);
        assert_eq!(seen.connections, 1, "one connection reused for every message");
        assert_eq!(
            seen.early_bytes, 0,
            "bytes sent behind the end-of-data dot before its reply"
        );
        assert_eq!(
            seen.pipelined_envelopes, 4,
            "MAIL, RCPT and DATA not sent in one write"
        );
    })
    .await;
}
