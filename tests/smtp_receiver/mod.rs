//! A small in-process SMTP receiver (RFC 5321 without TLS or AUTH) that
//! records every message offered to it and answers the end of DATA as the
//! test scripts it.
//!
//! popferry treats 250, 4xx and 5xx at the end of DATA in three different
//! ways, and a real relay cannot be told to refuse one particular message;
//! here a [`Judge`] looks at each message's bytes and picks the reply.
//!
//! Several test crates include this module and each uses a subset of it,
//! hence the `dead_code` allowance.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The reply to the end of DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 250: the receiver owns the message.
    Accept,
    /// 451: try again later.
    Defer,
    /// 554: never.
    Reject,
}

/// One message offered with DATA, whatever the verdict.
#[derive(Debug, Clone)]
pub struct Offer {
    /// The MAIL FROM address, empty for the null sender.
    pub from: String,
    pub to: Vec<String>,
    /// The message after dot-unstuffing, without the terminating `.` line.
    pub data: Vec<u8>,
    pub verdict: Verdict,
}

/// Picks the verdict for a message from its bytes.
pub type Judge = Arc<dyn Fn(&[u8]) -> Verdict + Send + Sync>;

/// The default judge: `X-Test-Reject: 451` defers, `X-Test-Reject: 554`
/// rejects, anything else is accepted.
pub fn by_marker(data: &[u8]) -> Verdict {
    if contains(data, b"X-Test-Reject: 451") {
        Verdict::Defer
    } else if contains(data, b"X-Test-Reject: 554") {
        Verdict::Reject
    } else {
        Verdict::Accept
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

struct Shared {
    judge: Judge,
    offers: Vec<Offer>,
}

type SharedRef = Arc<Mutex<Shared>>;

fn lock(shared: &SharedRef) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running receiver; stops accepting when dropped.
pub struct SmtpReceiver {
    addr: SocketAddr,
    shared: SharedRef,
    acceptor: JoinHandle<()>,
}

impl std::fmt::Debug for SmtpReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SmtpReceiver({})", self.addr)
    }
}

impl SmtpReceiver {
    /// Listen on 127.0.0.1 with an ephemeral port, judging [`by_marker`].
    pub async fn start() -> SmtpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind SMTP");
        let addr = listener.local_addr().expect("SMTP address");
        let shared = Arc::new(Mutex::new(Shared {
            judge: Arc::new(by_marker),
            offers: Vec::new(),
        }));
        let for_acceptor = Arc::clone(&shared);
        let acceptor = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&for_acceptor)));
            }
        });
        SmtpReceiver {
            addr,
            shared,
            acceptor,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn set_judge(&self, judge: impl Fn(&[u8]) -> Verdict + Send + Sync + 'static) {
        lock(&self.shared).judge = Arc::new(judge);
    }

    /// Every message offered, in order, whatever the verdict.
    pub fn offers(&self) -> Vec<Offer> {
        lock(&self.shared).offers.clone()
    }

    /// The messages answered with 250.
    pub fn accepted(&self) -> Vec<Offer> {
        self.offers()
            .into_iter()
            .filter(|offer| offer.verdict == Verdict::Accept)
            .collect()
    }
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

/// The address inside `<...>` of a MAIL or RCPT argument.
fn address(argument: &str) -> Option<String> {
    let start = argument.find('<')?;
    let end = argument[start..].find('>')? + start;
    Some(argument[start + 1..end].to_owned())
}

async fn serve(stream: TcpStream, shared: SharedRef) {
    // Any I/O error just ends the session: the client sees a dropped link.
    let _ = session(stream, shared).await;
}

async fn session(stream: TcpStream, shared: SharedRef) -> std::io::Result<()> {
    let (read, mut out) = stream.into_split();
    let mut input = BufReader::new(read);
    out.write_all(b"220 receiver ESMTP test\r\n").await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        let upper = text.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-receiver\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("HELO") {
            b"250 receiver\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&text[10..]);
            to.clear();
            if from.is_some() {
                b"250 2.1.0 ok\r\n"
            } else {
                b"501 5.5.4 bad address\r\n"
            }
        } else if upper.starts_with("RCPT TO:") {
            match (&from, address(&text[8..])) {
                (Some(_), Some(rcpt)) => {
                    to.push(rcpt);
                    b"250 2.1.5 ok\r\n"
                }
                (None, _) => b"503 5.5.1 MAIL first\r\n",
                (_, None) => b"501 5.5.4 bad address\r\n",
            }
        } else if upper == "DATA" {
            match from.take() {
                Some(sender) if !to.is_empty() => {
                    out.write_all(b"354 go ahead\r\n").await?;
                    let data = read_data(&mut input).await?;
                    let judge = lock(&shared).judge.clone();
                    let verdict = judge(&data);
                    lock(&shared).offers.push(Offer {
                        from: sender,
                        to: std::mem::take(&mut to),
                        data,
                        verdict,
                    });
                    match verdict {
                        Verdict::Accept => b"250 2.0.0 queued\r\n",
                        Verdict::Defer => b"451 4.3.0 try again later\r\n",
                        Verdict::Reject => b"554 5.7.1 message refused\r\n",
                    }
                }
                _ => b"503 5.5.1 MAIL and RCPT first\r\n",
            }
        } else if upper == "RSET" {
            from = None;
            to.clear();
            b"250 2.0.0 ok\r\n"
        } else if upper.starts_with("NOOP") {
            b"250 2.0.0 ok\r\n"
        } else if upper == "QUIT" {
            out.write_all(b"221 2.0.0 bye\r\n").await?;
            return Ok(());
        } else {
            b"500 5.5.2 unknown command\r\n"
        };
        out.write_all(reply).await?;
    }
}

/// The DATA lines up to the lone `.`, with dot-stuffing undone.
async fn read_data(
    input: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(data);
        }
        let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
        data.extend_from_slice(unstuffed);
    }
}
