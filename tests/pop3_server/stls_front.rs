//! An STLS front for the test server (RFC 2595): it greets, answers CAPA
//! and STLS in the clear itself, upgrades the link, then relays the
//! client to the server, whose own greeting it swallows, so that after
//! the upgrade the client talks to the server as if it had been there all
//! along. A test sees what crossed the wire before TLS (here) beside what
//! the server got after it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::Pop3Server;

/// Stops accepting when dropped.
#[derive(Debug)]
pub struct StlsFront {
    port: u16,
    counts: Arc<Counts>,
    acceptor: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Counts {
    capas: AtomicUsize,
    upgrades: AtomicUsize,
}

impl StlsFront {
    pub async fn start(server: &Pop3Server, tls: TlsAcceptor) -> StlsFront {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind STLS");
        let port = listener.local_addr().expect("STLS address").port();
        let backend = server.port();
        let counts = Arc::new(Counts::default());
        let counted = Arc::clone(&counts);
        let acceptor = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (tls, counts) = (tls.clone(), Arc::clone(&counted));
                tokio::spawn(async move {
                    // Either side closing ends the relay; nothing to report.
                    serve(client, tls, backend, &counts).await.ok();
                });
            }
        });
        StlsFront {
            port,
            counts,
            acceptor,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// CAPA commands the front answered in the clear.
    pub fn capas_in_clear(&self) -> usize {
        self.counts.capas.load(Ordering::SeqCst)
    }

    /// Links upgraded with STLS.
    pub fn upgrades(&self) -> usize {
        self.counts.upgrades.load(Ordering::SeqCst)
    }
}

impl Drop for StlsFront {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn serve(
    client: TcpStream,
    tls: TlsAcceptor,
    backend: u16,
    counts: &Counts,
) -> std::io::Result<()> {
    client.set_nodelay(true).ok();
    let mut clear = BufReader::new(client);
    clear.write_all(b"+OK STLS front ready.\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if clear.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let reply: &[u8] = match line.trim_end().to_ascii_uppercase().as_str() {
            "CAPA" => {
                counts.capas.fetch_add(1, Ordering::SeqCst);
                b"+OK Capability list follows\r\nSTLS\r\nUSER\r\n.\r\n"
            }
            "STLS" => break,
            "QUIT" => return clear.write_all(b"+OK Bye.\r\n").await,
            _ => b"-ERR Say STLS first.\r\n",
        };
        clear.write_all(reply).await?;
    }
    clear.write_all(b"+OK Begin TLS negotiation.\r\n").await?;
    // A client that sent more behind STLS would have it read as if it
    // came over TLS; the real servers refuse that, so does this front.
    if !clear.buffer().is_empty() {
        return Ok(());
    }
    let mut secured = tls.accept(clear.into_inner()).await?;
    counts.upgrades.fetch_add(1, Ordering::SeqCst);
    let plain = TcpStream::connect(("127.0.0.1", backend)).await?;
    plain.set_nodelay(true).ok();
    let mut plain = BufReader::new(plain);
    let mut greeting = String::new();
    plain.read_line(&mut greeting).await?;
    tokio::io::copy_bidirectional(&mut secured, &mut plain).await?;
    Ok(())
}
