//! A scripted raw POP3 peer for byte-level hostility.
//!
//! The project's test server (`tests/pop3_server`) is a correct server
//! with a few faults on cue; this one is whatever a test scripts, byte for
//! byte: a greeting or none, then for every command line received a
//! [`Reply`] — canned bytes, an endless stream, a trickle, silence, a
//! closed socket. [`mailbox`] scripts a plausible server around a list of
//! messages whose LIST sizes may lie, and every command line received is
//! kept so a test can prove what was (not) deleted. [`sasl`] has what the
//! scripted SASL exchanges of POP3 and SMTP peers share.
//!
//! Several test crates include this module and each uses a subset of it,
//! hence the `dead_code` allowance.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use popferry::pop3::codec::dot_stuff;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub mod sasl;

/// What the peer sends, as a greeting or in answer to one command line.
#[derive(Debug, Clone)]
pub enum Reply {
    /// These bytes, in one write.
    Bytes(Vec<u8>),
    /// `head`, then `unit` again and again until `total` bytes in all have
    /// gone out (for ever when `None`) or the client goes away. Generated
    /// as it is written, so the peer itself stays small.
    Endless {
        head: Vec<u8>,
        unit: Vec<u8>,
        total: Option<u64>,
    },
    /// These bytes, one every `every`.
    Trickle { bytes: Vec<u8>, every: Duration },
    /// Nothing; the connection stays open and later commands are read.
    Silence,
    /// Close the connection.
    Close,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Bytes(b"+OK\r\n".to_vec())
    }

    pub fn text(text: &str) -> Reply {
        Reply::Bytes(text.as_bytes().to_vec())
    }

    /// `+OK`, the lines, and the terminating dot.
    pub fn listing<I: IntoIterator<Item = String>>(lines: I) -> Reply {
        let mut bytes = b"+OK\r\n".to_vec();
        for line in lines {
            bytes.extend_from_slice(line.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b".\r\n");
        Reply::Bytes(bytes)
    }
}

/// Picks the reply to one command line (without its CRLF).
pub type Script = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// A listening peer; stops accepting when dropped.
pub struct Peer {
    port: u16,
    commands: Arc<Mutex<Vec<String>>>,
    acceptor: JoinHandle<()>,
}

impl Peer {
    /// Listens on 127.0.0.1 with an ephemeral port; every connection gets
    /// `greeting` (`Reply::Silence` for none) and then `script`.
    pub async fn start(
        greeting: Reply,
        script: impl Fn(&str) -> Reply + Send + Sync + 'static,
    ) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind peer");
        let port = listener.local_addr().expect("peer address").port();
        let commands = Arc::new(Mutex::new(Vec::new()));
        let script: Script = Arc::new(script);
        let log = Arc::clone(&commands);
        let acceptor = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                stream.set_nodelay(true).ok();
                let (greeting, script, log) = (greeting.clone(), script.clone(), log.clone());
                tokio::spawn(serve(stream, greeting, script, log));
            }
        });
        Peer {
            port,
            commands,
            acceptor,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, as popferry names the server in its errors.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every command line received, on every connection, in order.
    pub fn commands(&self) -> Vec<String> {
        lock(&self.commands).clone()
    }

    /// The command lines that start with `verb`.
    pub fn received(&self, verb: &str) -> Vec<String> {
        self.commands()
            .into_iter()
            .filter(|c| {
                c.split(' ')
                    .next()
                    .is_some_and(|v| v.eq_ignore_ascii_case(verb))
            })
            .collect()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn serve(stream: TcpStream, greeting: Reply, script: Script, log: Arc<Mutex<Vec<String>>>) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    if !play(&mut write, &greeting).await {
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match read.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = String::from_utf8_lossy(&line).trim_end().to_owned();
        lock(&log).push(command.clone());
        if !play(&mut write, &script(&command)).await {
            return;
        }
    }
}

/// Sends one reply; false when the connection is over.
async fn play(write: &mut tokio::net::tcp::OwnedWriteHalf, reply: &Reply) -> bool {
    match reply {
        Reply::Bytes(bytes) => write.write_all(bytes).await.is_ok(),
        Reply::Endless { head, unit, total } => {
            if write.write_all(head).await.is_err() {
                return false;
            }
            let chunk = unit.repeat((64 * 1024 / unit.len().max(1)).max(1));
            let mut left = total.map(|t| t.saturating_sub(head.len() as u64));
            loop {
                let take = left.map_or(chunk.len(), |l| chunk.len().min(l as usize));
                if take == 0 {
                    return true;
                }
                if write.write_all(&chunk[..take]).await.is_err() {
                    return false;
                }
                left = left.map(|l| l - take as u64);
            }
        }
        Reply::Trickle { bytes, every } => {
            for byte in bytes {
                if write.write_all(&[*byte]).await.is_err() {
                    return false;
                }
                tokio::time::sleep(*every).await;
            }
            true
        }
        Reply::Silence => true,
        Reply::Close => false,
    }
}

/// A message as the scripted [`mailbox`] lists and sends it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub uid: String,
    /// What LIST claims, which need not be the body's length.
    pub list_size: u64,
    pub body: Vec<u8>,
}

impl Listed {
    /// A message whose LIST size is the truth.
    pub fn honest(uid: &str, body: Vec<u8>) -> Listed {
        Listed {
            uid: uid.to_owned(),
            list_size: body.len() as u64,
            body,
        }
    }
}

/// A server that logs anyone in and serves `messages` (numbered from 1)
/// as RFC 1939 says, except that LIST reports each `list_size`. DELE and
/// QUIT are acknowledged and recorded, never acted on: the tests read the
/// command log to see what was deleted.
pub fn mailbox(messages: Vec<Listed>) -> impl Fn(&str) -> Reply + Send + Sync + 'static {
    move |command| {
        let mut words = command.split(' ');
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let message = words
            .next()
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| messages.get(n.checked_sub(1)?));
        match (verb.as_str(), message) {
            ("CAPA", _) => Reply::listing(["USER".to_owned(), "UIDL".to_owned()]),
            ("UIDL", _) => Reply::listing(
                (messages.iter().enumerate()).map(|(i, m)| format!("{} {}", i + 1, m.uid)),
            ),
            ("LIST", _) => Reply::listing(
                (messages.iter().enumerate()).map(|(i, m)| format!("{} {}", i + 1, m.list_size)),
            ),
            ("RETR", Some(m)) => {
                let mut bytes = b"+OK\r\n".to_vec();
                dot_stuff(&m.body, &mut bytes);
                Reply::Bytes(bytes)
            }
            ("RETR" | "DELE", None) => Reply::text("-ERR no such message\r\n"),
            _ => Reply::ok(),
        }
    }
}

/// A greeting in the usual form.
pub fn greeting() -> Reply {
    Reply::text("+OK hostile peer ready\r\n")
}

/// A server that logs anyone in (CAPA lists USER and UIDL) and answers
/// every other command with `then`.
pub fn logged_in(
    then: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> impl Fn(&str) -> Reply + Send + Sync + 'static {
    move |command| {
        let verb = command.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "CAPA" => Reply::listing(["USER".to_owned(), "UIDL".to_owned()]),
            "USER" | "PASS" | "QUIT" => Reply::ok(),
            _ => then(command),
        }
    }
}
