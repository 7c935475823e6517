//! A TCP proxy between popferry and a plain-text POP3 server that loses the
//! end of the session: when the client sends `QUIT`, the proxy either
//! forwards it and hangs up before the server's reply gets through (the
//! server commits its deletions, the client never learns it), or hangs up
//! without forwarding it (the server never commits).
//!
//! Only for `tls = "none"`: the proxy reads the client's commands.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// What the proxy does with a client's `QUIT` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnQuit {
    /// Forward `QUIT`, wait [`REPLY_GRACE`], close both connections; the
    /// server's reply is never relayed.
    ForwardThenHangUp,
    /// Close both connections at once; the server never sees `QUIT`.
    HangUpWithoutForwarding,
    /// Pass everything through (a transparent proxy).
    Relay,
}

/// How long the server gets to act on a forwarded `QUIT` before the proxy
/// closes the connections.
pub const REPLY_GRACE: Duration = Duration::from_millis(200);

/// A running proxy on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct QuitProxy {
    runtime: Option<Runtime>,
    port: u16,
    quits: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
}

impl QuitProxy {
    /// Listens on an ephemeral port of 127.0.0.1 and proxies every
    /// connection to 127.0.0.1:`upstream_port`.
    pub fn start(upstream_port: u16, on_quit: OnQuit) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let listener = runtime
            .block_on(TcpListener::bind(("127.0.0.1", 0)))
            .expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let quits = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (quits2, connections2) = (quits.clone(), connections.clone());
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                connections2.fetch_add(1, Ordering::SeqCst);
                let quits = quits2.clone();
                tokio::spawn(async move {
                    let _ = serve(client, upstream_port, on_quit, &quits).await;
                });
            }
        });
        Self {
            runtime: Some(runtime),
            port,
            quits,
            connections,
        }
    }

    /// The port popferry should connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many `QUIT` lines clients have sent so far.
    pub fn quits_seen(&self) -> usize {
        self.quits.load(Ordering::SeqCst)
    }

    /// How many connections the proxy has accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for QuitProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn is_quit(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.eq_ignore_ascii_case(b"QUIT")
}

/// Proxies one connection. Client-to-server traffic is forwarded in whole
/// lines, so a `QUIT` is recognised before any of it reaches the server.
async fn serve(
    client: TcpStream,
    upstream_port: u16,
    on_quit: OnQuit,
    quits: &AtomicUsize,
) -> io::Result<()> {
    let server = TcpStream::connect(("127.0.0.1", upstream_port)).await?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let mut downstream = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    });
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = client_read.read(&mut buf).await?;
        if n == 0 {
            // The client hung up: pass that on, let the server's last
            // words through (bounded), done.
            server_write.write_all(&pending).await?;
            let _ = server_write.shutdown().await;
            let _ = tokio::time::timeout(Duration::from_secs(10), &mut downstream).await;
            return Ok(());
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if is_quit(&line) {
                quits.fetch_add(1, Ordering::SeqCst);
                if on_quit != OnQuit::Relay {
                    // Stop relaying first, so the reply to QUIT (or to
                    // anything pipelined before it) never reaches the client.
                    downstream.abort();
                    let _ = (&mut downstream).await;
                    if on_quit == OnQuit::ForwardThenHangUp {
                        server_write.write_all(&line).await?;
                        tokio::time::sleep(REPLY_GRACE).await;
                    }
                    return Ok(()); // dropping the halves closes both sockets
                }
            }
            server_write.write_all(&line).await?;
        }
    }
}
