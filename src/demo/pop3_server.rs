//! The demo's POP3 server: one mailbox, RFC 1939 with CAPA, implicit TLS.
//!
//! It behaves like an ordinary well-run server (deletes happen only at a
//! `QUIT` in the TRANSACTION state, the UPDATE state of RFC 1939 §6), so
//! the demo exercises popferry exactly as a real one would. The session
//! logic is a plain state machine, line in and reply out; the async part
//! only moves bytes.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::pop3::codec::dot_stuff;

/// RFC 1939 §4 allows 255 octets of command; a little room for sloppy
/// clients, and a bound for hostile ones.
const MAX_COMMAND: u64 = 512;

/// One message waiting in the mailbox.
#[derive(Debug, Clone)]
pub struct Message {
    pub uid: String,
    /// CRLF-terminated lines, not dot-stuffed.
    pub bytes: Vec<u8>,
}

/// The mailbox and the one login that opens it.
struct Mailbox {
    user: String,
    password: String,
    messages: Mutex<Vec<Message>>,
}

impl Mailbox {
    fn messages(&self) -> MutexGuard<'_, Vec<Message>> {
        self.messages.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running server on 127.0.0.1; stops accepting when dropped.
pub struct Pop3Server {
    addr: SocketAddr,
    mailbox: Arc<Mailbox>,
    acceptor: JoinHandle<()>,
}

impl fmt::Debug for Pop3Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pop3Server({})", self.addr)
    }
}

impl Pop3Server {
    /// Listens on an ephemeral loopback port, speaking TLS from the first
    /// byte (like port 995).
    pub async fn start(tls: TlsAcceptor, user: &str, password: &str) -> io::Result<Pop3Server> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mailbox = Arc::new(Mailbox {
            user: user.to_owned(),
            password: password.to_owned(),
            messages: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&mailbox);
        let acceptor = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (tls, mailbox) = (tls.clone(), Arc::clone(&shared));
                tokio::spawn(async move { serve(stream, tls, mailbox).await.ok() });
            }
        });
        Ok(Pop3Server {
            addr,
            mailbox,
            acceptor,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Puts a message in the mailbox, as if it had just arrived.
    pub fn deposit(&self, message: Message) {
        self.mailbox.messages().push(message);
    }

    /// How many messages the mailbox holds now.
    pub fn count(&self) -> usize {
        self.mailbox.messages().len()
    }
}

impl Drop for Pop3Server {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn serve(stream: TcpStream, tls: TlsAcceptor, mailbox: Arc<Mailbox>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let stream = tls.accept(stream).await?;
    let (read, mut write) = tokio::io::split(stream);
    let mut input = BufReader::new(read);
    write
        .write_all(b"+OK popferry demo POP3 server ready\r\n")
        .await?;
    write.flush().await?;
    let mut session = Session::new(mailbox);
    let mut line = Vec::new();
    loop {
        line.clear();
        (&mut input)
            .take(MAX_COMMAND)
            .read_until(b'\n', &mut line)
            .await?;
        if line.is_empty() {
            return Ok(());
        }
        let (reply, done) = match std::str::from_utf8(&line) {
            Ok(text) if line.ends_with(b"\n") => session.answer(text.trim_end()),
            _ => (b"-ERR command too long or not text\r\n".to_vec(), true),
        };
        write.write_all(&reply).await?;
        write.flush().await?;
        if done {
            return write.shutdown().await;
        }
    }
}

enum State {
    Authorization {
        user: Option<String>,
    },
    /// The messages as they were at login, each with its deletion mark.
    Transaction {
        messages: Vec<(Message, bool)>,
    },
}

struct Session {
    mailbox: Arc<Mailbox>,
    state: State,
}

fn ok(text: impl fmt::Display) -> Vec<u8> {
    format!("+OK {text}\r\n").into_bytes()
}

fn err(text: impl fmt::Display) -> Vec<u8> {
    format!("-ERR {text}\r\n").into_bytes()
}

impl Session {
    fn new(mailbox: Arc<Mailbox>) -> Session {
        Session {
            mailbox,
            state: State::Authorization { user: None },
        }
    }

    /// The reply to one command line, and whether the session ends.
    fn answer(&mut self, line: &str) -> (Vec<u8>, bool) {
        let (verb, argument) = line.split_once(' ').unwrap_or((line, ""));
        let verb = verb.to_ascii_uppercase();
        match (verb.as_str(), &mut self.state) {
            ("CAPA", _) => (
                b"+OK\r\nUSER\r\nUIDL\r\nTOP\r\nRESP-CODES\r\nIMPLEMENTATION popferry-demo\r\n.\r\n"
                    .to_vec(),
                false,
            ),
            ("QUIT", State::Authorization { .. }) => (ok("bye"), true),
            ("QUIT", State::Transaction { messages }) => {
                let deleted: Vec<&str> = messages
                    .iter()
                    .filter(|(_, deleted)| *deleted)
                    .map(|(message, _)| message.uid.as_str())
                    .collect();
                let mut stored = self.mailbox.messages();
                stored.retain(|message| !deleted.contains(&message.uid.as_str()));
                (ok(format_args!("{} messages deleted", deleted.len())), true)
            }
            ("USER", State::Authorization { user }) => {
                *user = Some(argument.to_owned());
                (ok("send PASS"), false)
            }
            ("PASS", State::Authorization { user }) => {
                if user.as_deref() != Some(self.mailbox.user.as_str())
                    || argument != self.mailbox.password
                {
                    return (err("[AUTH] wrong user name or password"), true);
                }
                let snapshot = self.mailbox.messages().clone();
                self.state = State::Transaction {
                    messages: snapshot.into_iter().map(|m| (m, false)).collect(),
                };
                (ok("logged in"), false)
            }
            (_, State::Authorization { .. }) => (err("log in first"), false),
            (_, State::Transaction { messages }) => (transaction(&verb, argument, messages), false),
        }
    }
}

/// The TRANSACTION state commands (RFC 1939 §5).
fn transaction(verb: &str, argument: &str, messages: &mut [(Message, bool)]) -> Vec<u8> {
    let mut arguments = argument.split_ascii_whitespace();
    let number = arguments.next().map(|n| n.parse::<usize>());
    let live = |n: usize| match messages.get(n.wrapping_sub(1)) {
        Some((message, false)) => Some(message),
        _ => None,
    };
    match (verb, number) {
        ("NOOP", None) => ok(""),
        ("RSET", None) => {
            messages
                .iter_mut()
                .for_each(|(_, deleted)| *deleted = false);
            ok("deletion marks removed")
        }
        ("STAT", None) => {
            let live = messages.iter().filter(|(_, deleted)| !deleted);
            let (count, size) = live.fold((0, 0), |(c, s), (m, _)| (c + 1, s + m.bytes.len()));
            ok(format_args!("{count} {size}"))
        }
        ("LIST" | "UIDL", None) => {
            let mut out = ok("listing follows");
            for (n, (message, deleted)) in messages.iter().enumerate() {
                if !deleted {
                    out.extend(listing(verb, n + 1, message).into_bytes());
                }
            }
            out.extend_from_slice(b".\r\n");
            out
        }
        (_, Some(Err(_))) => err("that is not a message number"),
        (_, Some(Ok(n))) if live(n).is_none() => err(format_args!("no message {n}")),
        ("LIST" | "UIDL", Some(Ok(n))) => {
            let line = listing(verb, n, live(n).expect("checked above"));
            ok(line.trim_end())
        }
        ("RETR", Some(Ok(n))) => {
            let bytes = &live(n).expect("checked above").bytes;
            let mut out = ok(format_args!("{} octets", bytes.len()));
            dot_stuff(bytes, &mut out);
            out
        }
        ("TOP", Some(Ok(n))) => match arguments.next().map(str::parse::<usize>) {
            Some(Ok(lines)) => {
                let mut out = ok("top of message follows");
                dot_stuff(
                    &top(&live(n).expect("checked above").bytes, lines),
                    &mut out,
                );
                out
            }
            _ => err("TOP needs a message number and a line count"),
        },
        ("DELE", Some(Ok(n))) => {
            messages[n - 1].1 = true;
            ok(format_args!("message {n} deleted"))
        }
        _ => err("unknown command or wrong arguments"),
    }
}

fn listing(verb: &str, n: usize, message: &Message) -> String {
    if verb == "UIDL" {
        format!("{n} {}\r\n", message.uid)
    } else {
        format!("{n} {}\r\n", message.bytes.len())
    }
}

/// The header, the blank line and the first `lines` lines of the body.
fn top(bytes: &[u8], lines: usize) -> Vec<u8> {
    let header_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(bytes.len(), |at| at + 4);
    let body = &bytes[header_end..];
    let body_end = body
        .split_inclusive(|&b| b == b'\n')
        .take(lines)
        .map(<[u8]>::len)
        .sum::<usize>();
    bytes[..header_end + body_end].to_vec()
}
