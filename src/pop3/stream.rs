//! The byte stream under a POP3 session: plain TCP or TLS over TCP.
//!
//! An enum rather than a boxed trait object because STLS (RFC 2595) needs
//! the plain `TcpStream` back to run the handshake on it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::error::Pop3Error;

#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Runs the TLS handshake on `tcp`, verifying the server as `host`,
    /// within `limit`.
    pub async fn tls(
        tcp: TcpStream,
        config: Arc<ClientConfig>,
        host: &str,
        peer: &str,
        limit: Duration,
    ) -> Result<Stream, Pop3Error> {
        let tls_error = |source, hint| Pop3Error::Tls {
            peer: peer.to_owned(),
            source,
            hint,
        };
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| tls_error(std::io::Error::new(std::io::ErrorKind::InvalidInput, e), ""))?;
        match timeout(limit, TlsConnector::from(config).connect(name, tcp)).await {
            Ok(Ok(tls)) => Ok(Stream::Tls(Box::new(tls))),
            Ok(Err(source)) => {
                let hint = if source.to_string().contains("certificate") {
                    " (if the server uses a private CA or a self-signed certificate, set ca_file)"
                } else {
                    ""
                };
                Err(tls_error(source, hint))
            }
            Err(_) => Err(Pop3Error::Timeout {
                peer: peer.to_owned(),
                during: "TLS handshake",
                after: limit,
            }),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
