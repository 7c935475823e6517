//! The byte stream under a POP3 or SMTP session: plain TCP, TLS over TCP,
//! or a Unix socket (a local LMTP or SMTP server).
//!
//! An enum rather than a boxed trait object because STLS (RFC 2595) and
//! STARTTLS (RFC 3207) need the plain `TcpStream` back to run the handshake
//! on it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::tls;

#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Unix(UnixStream),
}

impl Stream {
    /// Runs the TLS handshake on `tcp`, verifying the server as `host`.
    /// The caller bounds it with its own timeout.
    pub async fn tls(tcp: TcpStream, config: Arc<ClientConfig>, host: &str) -> io::Result<Stream> {
        let name = ServerName::try_from(host.to_owned()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{host:?} is not a host name or IP address TLS can verify"),
            )
        })?;
        let tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(handshake_error)?;
        Ok(Stream::Tls(Box::new(tls)))
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The negotiated TLS parameters and the server's certificate; `None`
    /// on a plain or Unix socket.
    pub fn tls_info(&self) -> Option<tls::ConnectionInfo> {
        match self {
            Stream::Tls(tls) => Some(tls::ConnectionInfo::of(tls.get_ref().1)),
            Stream::Plain(_) | Stream::Unix(_) => None,
        }
    }
}

/// A server that hangs up mid-handshake most often wanted something
/// popferry did not send, or does not speak TLS on that port.
fn handshake_error(error: io::Error) -> io::Error {
    if error.kind() == io::ErrorKind::UnexpectedEof {
        return io::Error::new(
            error.kind(),
            "the server closed the connection during the TLS handshake (does it speak TLS on \
             this port? does it require a client certificate?)",
        );
    }
    tls::plain(error)
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            // A TLS alert can arrive after the handshake, such as a
            // server's refusal of the client certificate under TLS 1.3.
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf).map_err(tls::plain),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
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
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf).map_err(tls::plain),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
