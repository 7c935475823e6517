//! A small SMTP receiver (RFC 5321 without TLS or AUTH, with PIPELINING
//! and CHUNKING) for loopback use: the demo's relay, and the relay of the
//! hermetic tests. It offers what Postfix offers, so those tests take the
//! path popferry takes with Postfix: a message in one BDAT LAST.
//!
//! What happens to an accepted message is up to a [`Mailbox`]: the demo
//! writes it to a folder, the tests record it and pick a reply, because a
//! real relay cannot be told to refuse one particular message.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
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
    /// Another refusal with this code (say 452 or 552), for tests of how
    /// the client reads each one. 421 also closes the connection, as
    /// RFC 5321 §3.8 has a relay that is shutting down do.
    Refuse(u16),
    /// Close the connection without answering: the client cannot know
    /// whether the message was taken.
    HangUp,
}

/// The addresses of one SMTP transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The MAIL FROM address, empty for the null sender.
    pub from: String,
    pub to: Vec<String>,
    /// Whether the message came with BDAT rather than DATA.
    pub chunked: bool,
}

/// Where the receiver hands each message it reads.
pub trait Mailbox: Send + Sync + 'static {
    /// Takes the message (from DATA: dot-stuffing undone, without the final
    /// `.` line; from BDAT: the chunks joined)
    /// and says what to answer. Called on a blocking thread, so it may
    /// write files.
    fn receive(&self, envelope: Envelope, data: Vec<u8>) -> Verdict;

    /// A client connected: how to greet it. The tests refuse connections
    /// beyond a limit here, as a relay at its own limit does.
    fn connected(&self) -> Greeting {
        Greeting::Welcome
    }

    /// A connection that [`Mailbox::connected`] welcomed has ended.
    fn disconnected(&self) {}
}

/// How a new connection is greeted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    /// 220.
    Welcome,
    /// `421 4.7.0` and close, as Postfix at
    /// `smtpd_client_connection_count_limit`.
    TooMany,
    /// Close at once, without a greeting, as relays that just reset do.
    Close,
}

/// Tells the mailbox when a welcomed connection ends, however it ends.
struct Connected(Arc<dyn Mailbox>);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.disconnected();
    }
}

/// A running receiver on 127.0.0.1; stops accepting when dropped.
pub struct SmtpReceiver {
    addr: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl fmt::Debug for SmtpReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpReceiver({})", self.addr)
    }
}

impl SmtpReceiver {
    /// Listens on an ephemeral loopback port.
    pub async fn start(mailbox: Arc<dyn Mailbox>) -> io::Result<SmtpReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let acceptor = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let mailbox = Arc::clone(&mailbox);
                // Any I/O error just ends the session: the client sees a
                // dropped link, which is all a relay can do either.
                tokio::spawn(async move { session(stream, mailbox).await.ok() });
            }
        });
        Ok(SmtpReceiver { addr, acceptor })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
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

async fn session(mut stream: TcpStream, mailbox: Arc<dyn Mailbox>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    match mailbox.connected() {
        Greeting::Welcome => {}
        Greeting::TooMany => {
            let line = b"421 4.7.0 receiver: too many connections\r\n";
            return stream.write_all(line).await;
        }
        Greeting::Close => return Ok(()),
    }
    let _connected = Connected(Arc::clone(&mailbox));
    let (read, mut out) = stream.into_split();
    let mut input = BufReader::new(read);
    out.write_all(b"220 receiver ESMTP popferry\r\n").await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut chunks = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        let upper = text.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-receiver\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n"
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
            if from.is_none() || to.is_empty() {
                b"503 5.5.1 MAIL and RCPT first\r\n"
            } else {
                out.write_all(b"354 go ahead\r\n").await?;
                let data = read_data(&mut input).await?;
                let envelope = Envelope {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    chunked: false,
                };
                if !answer(&mailbox, envelope, data, &mut out).await? {
                    return Ok(());
                }
                continue;
            }
        } else if upper.starts_with("BDAT ") {
            let mut words = upper.split(' ').skip(1);
            let size: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let last = words.next() == Some("LAST");
            // RFC 3030 §2: the chunk is read whatever the reply.
            let start = chunks.len();
            chunks.resize(start + size, 0);
            input.read_exact(&mut chunks[start..]).await?;
            match (last, from.take()) {
                (false, mail) => {
                    from = mail;
                    b"250 2.0.0 chunk taken\r\n"
                }
                (true, Some(from)) if !to.is_empty() => {
                    let envelope = Envelope {
                        from,
                        to: std::mem::take(&mut to),
                        chunked: true,
                    };
                    let data = std::mem::take(&mut chunks);
                    if !answer(&mailbox, envelope, data, &mut out).await? {
                        return Ok(());
                    }
                    continue;
                }
                (true, _) => {
                    chunks.clear();
                    to.clear();
                    b"554 5.5.1 no valid recipients\r\n"
                }
            }
        } else if upper == "RSET" {
            chunks.clear();
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

/// Hands a message to the mailbox and writes its verdict; `false` when
/// that ends the session (a 421, or a hang-up).
async fn answer(
    mailbox: &Arc<dyn Mailbox>,
    envelope: Envelope,
    data: Vec<u8>,
    out: &mut OwnedWriteHalf,
) -> io::Result<bool> {
    let mailbox = Arc::clone(mailbox);
    let verdict = tokio::task::spawn_blocking(move || mailbox.receive(envelope, data))
        .await
        .unwrap_or(Verdict::Defer);
    let code = match verdict {
        Verdict::Accept => 250,
        Verdict::Defer => 451,
        Verdict::Reject => 554,
        Verdict::Refuse(code) => code,
        Verdict::HangUp => return Ok(false),
    };
    let line = match verdict {
        Verdict::Accept => "250 2.0.0 queued\r\n".to_owned(),
        Verdict::Defer => "451 4.3.0 try again later\r\n".to_owned(),
        Verdict::Reject => "554 5.7.1 message refused\r\n".to_owned(),
        _ => format!("{code} {}.0.0 refused by the receiver\r\n", code / 100),
    };
    out.write_all(line.as_bytes()).await?;
    Ok(code != 421)
}

/// The DATA lines up to the lone `.`, with dot-stuffing undone.
async fn read_data(input: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(data);
        }
        let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
        data.extend_from_slice(unstuffed);
    }
}
