//! A raw line-by-line POP3 client for talking to the test server, for
//! tests whose subject is the exact reply lines or commands popferry's
//! client does not send.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::Pop3Server;

/// One POP3 connection, line by line.
#[derive(Debug)]
pub struct Wire {
    input: BufReader<OwnedReadHalf>,
    out: OwnedWriteHalf,
}

impl Wire {
    pub async fn connect(server: &Pop3Server) -> Wire {
        let stream = TcpStream::connect(("127.0.0.1", server.port()))
            .await
            .expect("connect");
        let (read, out) = stream.into_split();
        let mut wire = Wire {
            input: BufReader::new(read),
            out,
        };
        assert!(wire.line().await.starts_with("+OK"), "banner");
        wire
    }

    /// Logs in as the default [`super::Options`] user.
    pub async fn login(server: &Pop3Server) -> Wire {
        let mut wire = Wire::connect(server).await;
        assert_eq!(
            wire.cmd("USER alice").await,
            "+OK Thank you. Send password."
        );
        assert_eq!(wire.cmd("PASS secret").await, "+OK Welcome.");
        wire
    }

    pub async fn write(&mut self, text: &str) {
        self.out.write_all(text.as_bytes()).await.expect("write");
    }

    /// The next line without its CRLF; `None` once the server has closed
    /// (a reset counts: that is how some closes arrive). A silent server
    /// fails the test in 5 s rather than at the test's time limit.
    pub async fn next(&mut self) -> Option<String> {
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(5), self.input.read_line(&mut line))
            .await
            .expect("server did not answer");
        match read {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches("\r\n").to_owned()),
        }
    }

    pub async fn line(&mut self) -> String {
        self.next().await.expect("connection closed")
    }

    pub async fn cmd(&mut self, command: &str) -> String {
        self.write(&format!("{command}\r\n")).await;
        self.line().await
    }

    /// The lines of a multi-line body, still dot-stuffed, without the `.`.
    pub async fn body(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            match self.line().await.as_str() {
                "." => return lines,
                line => lines.push(line.to_owned()),
            }
        }
    }

    pub async fn closed(&mut self) -> bool {
        self.next().await.is_none()
    }
}
