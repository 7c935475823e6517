//! A scripted SMTP or LMTP relay that judges each recipient on its own:
//! the test says which address gets which reply at RCPT or, for LMTP,
//! after the data. It records every message it completed, per recipient,
//! and every transaction the client abandoned in the middle of DATA, so a
//! test can tell "nothing delivered" from "an empty message delivered".
//!
//! Real MTAs do all this too (the interop suite runs them); this one can be
//! told to misbehave in the ways RFC 2920 allows, such as opening DATA
//! with 354 although it accepted no recipient.
#![allow(dead_code)]

pub mod world;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixListener};

/// How the relay behaves as a whole.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    pub lmtp: bool,
    pub pipelining: bool,
    pub smtputf8: bool,
    /// Answer DATA with 354 even when no RCPT was accepted.
    pub open_data_anyway: bool,
    /// Take at most this many messages on one connection, then answer
    /// the next MAIL with 421 and hang up (as Exim's
    /// `smtp_accept_max_per_connection` does).
    pub per_connection: Option<usize>,
    /// Offer CHUNKING (RFC 3030) and take BDAT. While a transaction is
    /// open the replies are held back until BDAT LAST, so a client that
    /// waits for one before sending the rest stalls for [`HOLD`], and is
    /// counted in [`RcptRelay::waits`].
    pub chunking: bool,
}

/// How long held replies wait for a client's next bytes.
pub const HOLD: std::time::Duration = std::time::Duration::from_millis(500);

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            lmtp: false,
            pipelining: true,
            smtputf8: true,
            open_data_anyway: false,
            per_connection: None,
            chunking: false,
        }
    }
}

/// What the relay answers for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// This reply to RCPT (say "550 5.1.1 no such user").
    AtRcpt(String),
    /// 250 at RCPT, then this reply after the data (LMTP only).
    AfterData(String),
}

/// One message the relay completed for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub to: String,
    pub data: Vec<u8>,
}

#[derive(Default)]
struct State {
    rules: HashMap<String, Rule>,
    deliveries: Vec<Delivery>,
    /// Envelopes (the accepted recipients) of every completed transaction.
    transactions: Vec<Vec<String>>,
    /// Connections that closed while DATA was open.
    abandoned: usize,
    connections: usize,
    /// Transactions completed with BDAT LAST.
    chunked: usize,
    /// Times the client waited for a held reply.
    waits: usize,
}

#[derive(Clone)]
pub struct RcptRelay {
    state: Arc<Mutex<State>>,
    behaviour: Behaviour,
    port: u16,
}

impl RcptRelay {
    pub async fn start(behaviour: Behaviour) -> RcptRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let relay = RcptRelay {
            state: Arc::default(),
            behaviour,
            port,
        };
        let serving = relay.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serving.clone().session(stream));
            }
        });
        relay
    }

    /// The same relay on a Unix socket at `path`.
    pub async fn start_unix(behaviour: Behaviour, path: &Path) -> RcptRelay {
        let listener = UnixListener::bind(path).expect("bind the socket");
        let relay = RcptRelay {
            state: Arc::default(),
            behaviour,
            port: 0,
        };
        let serving = relay.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serving.clone().session(stream));
            }
        });
        relay
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn set(&self, address: &str, rule: Rule) {
        self.lock().rules.insert(address.to_owned(), rule);
    }

    pub fn clear(&self, address: &str) {
        self.lock().rules.remove(address);
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// How many times `address` received a message.
    pub fn received(&self, address: &str) -> usize {
        self.lock()
            .deliveries
            .iter()
            .filter(|d| d.to == address)
            .count()
    }

    pub fn transactions(&self) -> Vec<Vec<String>> {
        self.lock().transactions.clone()
    }

    pub fn abandoned(&self) -> usize {
        self.lock().abandoned
    }

    pub fn connections(&self) -> usize {
        self.lock().connections
    }

    pub fn chunked(&self) -> usize {
        self.lock().chunked
    }

    pub fn waits(&self) -> usize {
        self.lock().waits
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn session<S: AsyncRead + AsyncWrite + Unpin>(self, stream: S) {
        self.lock().connections += 1;
        let (read, mut write) = tokio::io::split(stream);
        let mut lines = BufReader::new(read);
        let mut out = Vec::new();
        let _ = self.converse(&mut lines, &mut write, &mut out).await;
    }

    async fn converse<R, W>(
        &self,
        lines: &mut BufReader<R>,
        write: &mut W,
        out: &mut Vec<u8>,
    ) -> std::io::Result<()>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        write.write_all(b"220 rcpt-relay ready\r\n").await?;
        let mut accepted: Vec<String> = Vec::new();
        let mut mail = false;
        let mut taken = 0;
        let mut chunks = Vec::new();
        loop {
            let mut line = Vec::new();
            if self.behaviour.chunking && mail && !out.is_empty() && lines.buffer().is_empty() {
                let read = lines.read_until(b'\n', &mut line);
                if tokio::time::timeout(HOLD, read).await.is_err() {
                    self.lock().waits += 1;
                    write.write_all(out).await?;
                    out.clear();
                }
            }
            if !line.ends_with(b"\n") && lines.read_until(b'\n', &mut line).await? == 0 {
                return Ok(());
            }
            let command = String::from_utf8_lossy(&line).trim_end().to_owned();
            let verb = command
                .split([' ', ':'])
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            let reply = match verb.as_str() {
                "EHLO" if !self.behaviour.lmtp => self.capabilities(),
                "LHLO" if self.behaviour.lmtp => self.capabilities(),
                "MAIL" if self.behaviour.per_connection == Some(taken) => {
                    out.extend_from_slice(b"421 4.7.0 too many messages on one connection\r\n");
                    write.write_all(out).await?;
                    return Ok(());
                }
                "MAIL" => {
                    mail = true;
                    accepted.clear();
                    "250 2.1.0 ok\r\n".to_owned()
                }
                "RCPT" if mail => {
                    let address = between_brackets(&command);
                    match self.lock().rules.get(&address) {
                        Some(Rule::AtRcpt(reply)) => format!("{reply}\r\n"),
                        _ => {
                            accepted.push(address);
                            "250 2.1.5 ok\r\n".to_owned()
                        }
                    }
                }
                "DATA" if accepted.is_empty() && !self.behaviour.open_data_anyway => {
                    "554 5.5.1 no valid recipients\r\n".to_owned()
                }
                "DATA" if mail => {
                    out.extend_from_slice(b"354 go ahead\r\n");
                    write.write_all(out).await?;
                    out.clear();
                    write.flush().await?;
                    let Some(data) = read_data(lines).await? else {
                        self.lock().abandoned += 1;
                        return Ok(());
                    };
                    let reply = self.complete(&accepted, data);
                    taken += 1;
                    mail = false;
                    accepted.clear();
                    reply
                }
                "BDAT" if self.behaviour.chunking => {
                    let mut words = command.split(' ').skip(1);
                    let size: usize = words.next().unwrap_or("").parse().unwrap_or(0);
                    let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
                    let start = chunks.len();
                    chunks.resize(start + size, 0);
                    lines.read_exact(&mut chunks[start..]).await?;
                    match (last, mail && !accepted.is_empty()) {
                        (false, _) => "250 2.0.0 chunk taken\r\n".to_owned(),
                        (true, false) => {
                            chunks.clear();
                            mail = false;
                            "554 5.5.1 no valid recipients\r\n".to_owned()
                        }
                        (true, true) => {
                            let reply = self.complete(&accepted, std::mem::take(&mut chunks));
                            self.lock().chunked += 1;
                            taken += 1;
                            mail = false;
                            accepted.clear();
                            reply
                        }
                    }
                }
                "RSET" => {
                    chunks.clear();
                    mail = false;
                    accepted.clear();
                    "250 2.0.0 ok\r\n".to_owned()
                }
                "NOOP" => "250 2.0.0 ok\r\n".to_owned(),
                "QUIT" => {
                    write.write_all(b"221 2.0.0 bye\r\n").await?;
                    return Ok(());
                }
                _ => "503 5.5.1 bad sequence of commands\r\n".to_owned(),
            };
            out.extend_from_slice(reply.as_bytes());
            // Answers go out when the client waits for them: after DATA's
            // reply or when no more pipelined input is buffered (with
            // CHUNKING, once no transaction is open).
            if lines.buffer().is_empty() && !(self.behaviour.chunking && mail) {
                write.write_all(out).await?;
                write.flush().await?;
                out.clear();
            }
        }
    }

    fn capabilities(&self) -> String {
        let mut caps = vec!["rcpt-relay", "8BITMIME", "ENHANCEDSTATUSCODES"];
        if self.behaviour.pipelining {
            caps.push("PIPELINING");
        }
        if self.behaviour.smtputf8 {
            caps.push("SMTPUTF8");
        }
        if self.behaviour.chunking {
            caps.push("CHUNKING");
        }
        let last = caps.len() - 1;
        caps.iter()
            .enumerate()
            .map(|(i, cap)| format!("250{}{cap}\r\n", if i == last { ' ' } else { '-' }))
            .collect()
    }

    /// The replies after the data: one for SMTP, one per accepted
    /// recipient for LMTP.
    fn complete(&self, accepted: &[String], data: Vec<u8>) -> String {
        let mut state = self.lock();
        let mut replies = String::new();
        let mut took = Vec::new();
        for address in accepted {
            let refusal = match state.rules.get(address) {
                Some(Rule::AfterData(reply)) if self.behaviour.lmtp => Some(reply.clone()),
                _ => None,
            };
            match refusal {
                Some(reply) => replies += &format!("{reply}\r\n"),
                None => {
                    took.push(address.clone());
                    replies += "250 2.0.0 delivered\r\n";
                }
            }
        }
        for to in &took {
            state.deliveries.push(Delivery {
                to: to.clone(),
                data: data.clone(),
            });
        }
        state.transactions.push(accepted.to_vec());
        if self.behaviour.lmtp {
            replies
        } else {
            "250 2.0.0 queued\r\n".to_owned()
        }
    }
}

fn between_brackets(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command[start..]
        .find('>')
        .map_or(command.len(), |i| start + i);
    command[start..end].to_owned()
}

/// The message up to the dot line, unstuffed; `None` if the connection
/// closed first.
async fn read_data<R: AsyncRead + Unpin>(
    lines: &mut BufReader<R>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    loop {
        let mut line = Vec::new();
        if lines.read_until(b'\n', &mut line).await? == 0 {
            return Ok(None);
        }
        if line == b".\r\n" {
            return Ok(Some(data));
        }
        let line = line.strip_prefix(b".").unwrap_or(&line);
        data.extend_from_slice(line);
    }
}
