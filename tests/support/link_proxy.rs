//! A TCP proxy between popferry and a plain-text POP3 server that cuts the
//! link at one chosen point of the conversation: when the client sends the
//! `nth` occurrence of a command (the server never sees it), once the
//! server has answered it (the server acted, the client never learns), or
//! halfway through that answer (a RETR body cut short).
//!
//! To tell one reply from the next it follows the conversation: every
//! command the client sends is queued for the server side, which reads
//! each reply whole (multi-line where RFC 1939 says so) before relaying
//! it. So a cut lands on exactly the reply it names even when the client
//! pipelines.
//!
//! The cut happens once; later connections, and later commands of other
//! connections, pass through untouched, so the same proxy also carries the
//! clean run that follows a fault. Only for `tls = "none"`.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

/// Where, relative to the chosen command, the link goes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The client sent the command; the server never gets it.
    BeforeCommand,
    /// The server gets the command and answers it in full; the answer is
    /// not relayed.
    BeforeReply,
    /// The first half of the server's answer is relayed, then nothing.
    MidReply,
}

/// The `nth` (1-based, per connection) command named `verb` meets `cut`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutAt {
    pub verb: &'static str,
    pub nth: usize,
    pub cut: Cut,
}

impl CutAt {
    pub fn new(verb: &'static str, nth: usize, cut: Cut) -> Self {
        Self { verb, nth, cut }
    }
}

#[derive(Debug, Default)]
struct State {
    pending: Option<CutAt>,
    /// Commands the client sent, by upper-case verb, all connections.
    commands: HashMap<String, usize>,
    /// When each command was sent, by upper-case verb.
    sent_at: HashMap<String, Vec<SystemTime>>,
    connections: usize,
    cuts: usize,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running proxy on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct LinkProxy {
    runtime: Option<Runtime>,
    port: u16,
    state: Shared,
}

impl LinkProxy {
    /// Listens on an ephemeral port of 127.0.0.1 and proxies every
    /// connection to 127.0.0.1:`upstream_port`, cutting at `cut` once.
    pub fn start(upstream_port: u16, cut: Option<CutAt>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let listener = runtime
            .block_on(TcpListener::bind(("127.0.0.1", 0)))
            .expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state: Shared = Arc::new(Mutex::new(State {
            pending: cut,
            ..State::default()
        }));
        let shared = state.clone();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                lock(&shared).connections += 1;
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(client, upstream_port, state).await;
                });
            }
        });
        Self {
            runtime: Some(runtime),
            port,
            state,
        }
    }

    /// The port popferry should connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many commands named `verb` clients have sent so far.
    pub fn commands(&self, verb: &str) -> usize {
        let state = lock(&self.state);
        let count = state.commands.get(&verb.to_ascii_uppercase());
        count.copied().unwrap_or(0)
    }

    /// When each command named `verb` was sent, by the system clock (the
    /// one a database on this machine stamps its rows with).
    pub fn sent_at(&self, verb: &str) -> Vec<SystemTime> {
        let state = lock(&self.state);
        let at = state.sent_at.get(&verb.to_ascii_uppercase());
        at.cloned().unwrap_or_default()
    }

    /// How many connections the proxy has accepted so far.
    pub fn connections(&self) -> usize {
        lock(&self.state).connections
    }

    /// Whether the link was cut (the chosen command came up).
    pub fn has_cut(&self) -> bool {
        lock(&self.state).cuts > 0
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A command on its way to the server, as the reply reader needs it.
#[derive(Debug)]
struct Sent {
    multi_line: bool,
    cut: Option<Cut>,
}

/// Whether the `+OK` answer to `line` goes on until a lone `.` line.
fn multi_line(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let verb = words.next().unwrap_or("").to_ascii_uppercase();
    let has_argument = words.next().is_some();
    match verb.as_str() {
        "CAPA" | "RETR" | "TOP" => true,
        "LIST" | "UIDL" | "AUTH" => !has_argument,
        _ => false,
    }
}

/// Proxies one connection until either side is done or the link is cut.
async fn serve(client: TcpStream, upstream_port: u16, state: Shared) -> io::Result<()> {
    let server = TcpStream::connect(("127.0.0.1", upstream_port)).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let (sent_tx, sent_rx) = mpsc::unbounded_channel();
    let commands = forward_commands(client_read, server_write, sent_tx, &state);
    let replies = relay_replies(server_read, client_write, sent_rx, &state);
    tokio::pin!(commands, replies);
    tokio::select! {
        biased;
        // The server hung up, or the link was cut: drop both sockets.
        _ = &mut replies => {}
        ended = &mut commands => {
            // The client hung up: let the server's last words through.
            if ended? == Ended::ClientClosed {
                let _ = tokio::time::timeout(Duration::from_secs(10), replies).await;
            }
        }
    }
    Ok(())
}

/// Why [`forward_commands`] stopped.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    ClientClosed,
    Cut,
}

/// Client to server, in whole lines, so a command is recognised before any
/// of it reaches the server. Stops forwarding at a cut.
async fn forward_commands(
    mut client: OwnedReadHalf,
    mut server: OwnedWriteHalf,
    sent: mpsc::UnboundedSender<Sent>,
    state: &Shared,
) -> io::Result<Ended> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = client.read(&mut buf).await?;
        if n == 0 {
            server.write_all(&pending).await?;
            server.shutdown().await?;
            return Ok(Ended::ClientClosed);
        }
        pending.extend_from_slice(&buf[..n]);
        let mut out = Vec::new();
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line).trim_end().to_owned();
            let verb = text.split(' ').next().unwrap_or("").to_ascii_uppercase();
            let nth = {
                let count = seen.entry(verb.clone()).or_default();
                *count += 1;
                *count
            };
            let cut = {
                let mut state = lock(state);
                *state.commands.entry(verb.clone()).or_default() += 1;
                let at = state.sent_at.entry(verb.clone()).or_default();
                at.push(SystemTime::now());
                let hit = state
                    .pending
                    .is_some_and(|c| c.verb.eq_ignore_ascii_case(&verb) && c.nth == nth);
                if hit {
                    state.pending.take().map(|c| c.cut)
                } else {
                    None
                }
            };
            if cut == Some(Cut::BeforeCommand) {
                server.write_all(&out).await?;
                lock(state).cuts += 1;
                return Ok(Ended::Cut);
            }
            let multi_line = multi_line(&text);
            // The reply reader is gone only once the link is down.
            let _ = sent.send(Sent { multi_line, cut });
            out.extend_from_slice(&line);
            if cut.is_some() {
                // Nothing after the chosen command reaches the server.
                server.write_all(&out).await?;
                return std::future::pending().await;
            }
        }
        server.write_all(&out).await?;
    }
}

/// Server to client, one whole reply at a time: the greeting, then one
/// reply per command sent.
async fn relay_replies(
    mut server: OwnedReadHalf,
    mut client: OwnedWriteHalf,
    mut sent: mpsc::UnboundedReceiver<Sent>,
    state: &Shared,
) -> io::Result<()> {
    let mut buf = Vec::new();
    let greeting = Sent {
        multi_line: false,
        cut: None,
    };
    let mut next = Some(greeting);
    while let Some(command) = next.take() {
        let Some(len) = read_reply(&mut server, &mut buf, command.multi_line).await? else {
            client.write_all(&buf).await?;
            return client.shutdown().await;
        };
        let reply: Vec<u8> = buf.drain(..len).collect();
        match command.cut {
            None => client.write_all(&reply).await?,
            Some(cut) => {
                if cut == Cut::MidReply {
                    client.write_all(&reply[..reply.len() / 2]).await?;
                }
                lock(state).cuts += 1;
                return Ok(());
            }
        }
        next = sent.recv().await;
    }
    Ok(())
}

/// Reads until `buf` holds one whole reply and returns its length, or
/// `None` if the server closed first.
async fn read_reply(
    server: &mut OwnedReadHalf,
    buf: &mut Vec<u8>,
    multi_line: bool,
) -> io::Result<Option<usize>> {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if let Some(len) = reply_length(buf, multi_line) {
            return Ok(Some(len));
        }
        let n = server.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The length of the complete reply at the start of `buf`, if it is there.
fn reply_length(buf: &[u8], multi_line: bool) -> Option<usize> {
    let status_end = buf.iter().position(|&b| b == b'\n')? + 1;
    if !multi_line || !buf.starts_with(b"+OK") {
        return Some(status_end);
    }
    // From the status line's CRLF, so an empty body's lone "." is found.
    let from = status_end.saturating_sub(2);
    let at = buf[from..].windows(5).position(|w| w == b"\r\n.\r\n")?;
    Some(from + at + 5)
}
