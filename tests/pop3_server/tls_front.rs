//! An implicit-TLS front for the test server: it terminates TLS, counts
//! the handshakes and relays the plaintext to the server, one TCP
//! connection each. A test sees how many TLS sessions a client set up
//! (here) beside how many connections it opened (the server's accepts).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::Pop3Server;

/// Stops accepting when dropped.
#[derive(Debug)]
pub struct TlsFront {
    port: u16,
    handshakes: Arc<AtomicUsize>,
    acceptor: JoinHandle<()>,
}

impl TlsFront {
    pub async fn start(server: &Pop3Server, tls: TlsAcceptor) -> TlsFront {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind TLS");
        let port = listener.local_addr().expect("TLS address").port();
        let backend = server.port();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&handshakes);
        let acceptor = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (tls, counted) = (tls.clone(), Arc::clone(&counted));
                tokio::spawn(async move {
                    let Ok(mut secured) = tls.accept(client).await else {
                        return;
                    };
                    counted.fetch_add(1, Ordering::SeqCst);
                    let Ok(mut plain) = TcpStream::connect(("127.0.0.1", backend)).await else {
                        return;
                    };
                    plain.set_nodelay(true).ok();
                    // Either side closing ends the relay; nothing to report.
                    tokio::io::copy_bidirectional(&mut secured, &mut plain)
                        .await
                        .ok();
                });
            }
        });
        TlsFront {
            port,
            handshakes,
            acceptor,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Completed TLS handshakes.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}
