//! Round trips that a pooled poll's wall time is measured against: the
//! bare loopback one, and one POP3 command through the TLS front to the
//! server and back (what WAKE and SLEE cost without any client work).

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

pub const PINGS: usize = 1000;

/// The median round trip of one byte over loopback TCP, echoed by a
/// thread: what the network part of a WAKE or SLEE costs at best.
pub fn loopback() -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo");
    let addr = listener.local_addr().expect("echo address");
    let echo = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept echo");
        stream.set_nodelay(true).ok();
        let mut byte = [0u8; 1];
        while stream.read_exact(&mut byte).is_ok() {
            if stream.write_all(&byte).is_err() {
                return;
            }
        }
    });
    let mut stream = TcpStream::connect(addr).expect("connect echo");
    stream.set_nodelay(true).expect("nodelay");
    let trips = (0..PINGS)
        .map(|_| {
            let started = Instant::now();
            stream.write_all(b".").expect("ping");
            stream.read_exact(&mut [0u8; 1]).expect("pong");
            started.elapsed()
        })
        .collect();
    drop(stream);
    echo.join().ok();
    median(trips)
}

/// The median round trip of a NOOP over implicit TLS to `port`, logged in
/// as the bench's account, then logged out (so the mailbox is free again).
pub async fn pop3_noop(port: u16, ca: CertificateDer<'static>) -> Duration {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).expect("trust the bench CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the TLS front");
    tcp.set_nodelay(true).expect("nodelay");
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let mut stream = BufReader::new(tls);
    reply(&mut stream).await;
    for command in ["USER alice", "PASS secret"] {
        send(&mut stream, command).await;
        reply(&mut stream).await;
    }
    let mut trips = Vec::with_capacity(PINGS);
    for _ in 0..PINGS {
        let started = Instant::now();
        send(&mut stream, "NOOP").await;
        reply(&mut stream).await;
        trips.push(started.elapsed());
    }
    send(&mut stream, "QUIT").await;
    reply(&mut stream).await;
    median(trips)
}

type Stream = BufReader<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

async fn send(stream: &mut Stream, command: &str) {
    let line = format!("{command}\r\n");
    stream.write_all(line.as_bytes()).await.expect("send");
    stream.flush().await.expect("flush");
}

async fn reply(stream: &mut Stream) {
    let mut line = String::new();
    stream.read_line(&mut line).await.expect("read a reply");
    assert!(line.starts_with("+OK"), "the server said {line:?}");
}

fn median(mut trips: Vec<Duration>) -> Duration {
    trips.sort();
    trips[trips.len() / 2]
}
