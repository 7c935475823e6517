//! A TCP proxy in front of a test POP3 server that delays every reply and
//! records each session's start, end and user, so the bench can make a
//! server slow without changing it, and read the poll times as the server
//! saw them (the ledger trims its poll history and folds empty polls).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{tcp, TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One connection through the proxy: one poll with a fresh login.
#[derive(Debug, Clone)]
pub struct Session {
    /// From the client's `USER` command; empty until it is seen.
    pub user: String,
    pub start: Instant,
    pub end: Option<Instant>,
}

type Sessions = Arc<Mutex<Vec<Session>>>;

fn lock(sessions: &Sessions) -> MutexGuard<'_, Vec<Session>> {
    sessions.lock().unwrap_or_else(PoisonError::into_inner)
}

pub struct Proxy {
    pub port: u16,
    sessions: Sessions,
    acceptor: JoinHandle<()>,
}

impl Proxy {
    /// Listens on an ephemeral loopback port and forwards to
    /// 127.0.0.1:`upstream`, holding each chunk the server sends for
    /// `delay` before passing it on.
    pub async fn start(upstream: u16, delay: Duration) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let sessions: Sessions = Arc::default();
        let shared = Arc::clone(&sessions);
        let target = SocketAddr::from(([127, 0, 0, 1], upstream));
        let acceptor = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let index = {
                    let mut sessions = lock(&shared);
                    sessions.push(Session {
                        user: String::new(),
                        start: Instant::now(),
                        end: None,
                    });
                    sessions.len() - 1
                };
                tokio::spawn(relay(client, target, delay, Arc::clone(&shared), index));
            }
        });
        Proxy {
            port,
            sessions,
            acceptor,
        }
    }

    pub fn sessions(&self) -> Vec<Session> {
        lock(&self.sessions).clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn relay(
    client: TcpStream,
    target: SocketAddr,
    delay: Duration,
    sessions: Sessions,
    index: usize,
) {
    let Ok(server) = TcpStream::connect(target).await else {
        lock(&sessions)[index].end = Some(Instant::now());
        return;
    };
    client.set_nodelay(true).ok();
    server.set_nodelay(true).ok();
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = upstream(client_read, server_write, Arc::clone(&sessions), index);
    let down = downstream(server_read, client_write, delay);
    tokio::join!(up, down);
    lock(&sessions)[index].end = Some(Instant::now());
}

/// Client to server, unchanged, picking the user name out of `USER`.
async fn upstream(
    mut from: tcp::OwnedReadHalf,
    mut to: tcp::OwnedWriteHalf,
    sessions: Sessions,
    index: usize,
) {
    let mut seen = Vec::new();
    let mut buffer = vec![0; 16 * 1024];
    while let Ok(n) = from.read(&mut buffer).await {
        if n == 0 || to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
        // The login is in the first few hundred bytes; stop looking after.
        if seen.len() < 4096 && lock(&sessions)[index].user.is_empty() {
            seen.extend_from_slice(&buffer[..n]);
            if let Some(user) = user_of(&seen) {
                lock(&sessions)[index].user = user;
            }
        }
    }
    to.shutdown().await.ok();
}

/// Server to client, each chunk held for `delay`: one round trip longer
/// per reply the client waits for.
async fn downstream(mut from: tcp::OwnedReadHalf, mut to: tcp::OwnedWriteHalf, delay: Duration) {
    let mut buffer = vec![0; 64 * 1024];
    while let Ok(n) = from.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    to.shutdown().await.ok();
}

fn user_of(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    // Whole lines only: a chunk can end in the middle of the name.
    let complete = &text[..text.rfind("\r\n")?];
    complete.split("\r\n").find_map(|line| {
        let (verb, rest) = line.split_once(' ')?;
        verb.eq_ignore_ascii_case("USER")
            .then(|| rest.trim().to_owned())
    })
}
