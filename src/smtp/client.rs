//! One SMTP or LMTP connection to the relay: greeting, EHLO (LHLO),
//! STARTTLS, AUTH, then any number of mail transactions
//! (`transaction.rs`).
//!
//! Three choices set this apart from a generic client, each worth a round
//! trip or a copy per message:
//! * TCP_NODELAY, and the DATA terminator in the same write as the
//!   message's tail ([`DataChunks`](super::data::DataChunks)), so no
//!   segment waits for a delayed ACK;
//! * PIPELINING (RFC 2920): MAIL, every RCPT and DATA go out in one write
//!   when the relay offers it, so a transaction costs two round trips;
//!   with CHUNKING (RFC 3030) as well, `BDAT <n> LAST` and the message go
//!   in the same flight, and it costs one (`chunking.rs`);
//! * the message is stuffed chunk by chunk from the one copy in memory.
//!
//! The next transaction never starts before the final reply to the last
//! one: Postfix (3.7) answers a MAIL pipelined behind the end of DATA (or
//! behind a BDAT LAST) only after a delayed-ACK timer, about 40 ms per
//! message.

use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::timeout;

use super::ehlo::Extensions;
use super::error::SmtpError;
use super::reply::{Reply, ReplyDecoder};
use super::settings::Settings;
pub use crate::config::Protocol;
use crate::config::TlsMode;
use crate::net::Stream;
use crate::sasl::Mechanism;

/// What the relay's failure happened during; `MAIL_FROM` failures on a
/// reused connection mean it went stale while idle.
pub(super) const MAIL_FROM: &str = "MAIL FROM";
pub(super) const END_OF_DATA: &str = "end of DATA";

/// An open, greeted (and, if configured, encrypted and logged-in) session.
pub struct Connection {
    pub(super) stream: Stream,
    decoder: ReplyDecoder,
    chunk: Vec<u8>,
    pub(super) ext: Extensions,
    pub(super) peer: String,
    pub(super) protocol: Protocol,
    pub(super) timeout: Duration,
    /// The AUTH mechanism the login used; `None` without a login.
    pub(super) mechanism: Option<Mechanism>,
    /// Left in a state no next transaction can start from (a DATA opened
    /// and abandoned, a 421, a failed RSET): close it, never reuse it.
    pub(super) broken: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "smtp::Connection({})", self.peer)
    }
}

impl Connection {
    pub async fn open(settings: &Settings) -> Result<Connection, SmtpError> {
        let limit = settings.timeout;
        let peer = settings.peer();
        let stream = match &settings.socket {
            Some(path) => {
                let unix = match timeout(limit, UnixStream::connect(path)).await {
                    Ok(Ok(unix)) => unix,
                    Ok(Err(source)) => return Err(SmtpError::Connect { peer, source }),
                    Err(_) => return Err(timed_out(&peer, "connect", limit)),
                };
                Stream::Unix(unix)
            }
            None => {
                let tcp = connect_tcp(settings, &peer).await?;
                match (&settings.tls, &settings.tls_config) {
                    (TlsMode::Implicit, Some(config)) => {
                        handshake(tcp, config, &settings.host, &peer, limit).await?
                    }
                    _ => Stream::Plain(tcp),
                }
            }
        };
        let mut conn = Connection {
            stream,
            decoder: ReplyDecoder::default(),
            chunk: vec![0; 4096],
            ext: Extensions::default(),
            peer,
            protocol: settings.protocol,
            timeout: limit,
            mechanism: None,
            broken: false,
        };
        conn.expect("greeting", 220).await?;
        conn.hello(&settings.helo).await?;
        if settings.tls == TlsMode::StartTls {
            conn = conn.starttls(settings).await?;
        }
        if let Some(login) = &settings.login {
            conn.login(settings, login).await?;
        }
        Ok(conn)
    }

    /// NOOP: whether an idle connection is still alive.
    pub async fn noop(&mut self) -> Result<(), SmtpError> {
        self.command("NOOP", "NOOP", 250).await.map(drop)
    }

    /// Polite end of the session; a relay that already left loses nothing.
    pub async fn quit(mut self) {
        let _ = self.command("QUIT", "QUIT", 221).await;
    }

    /// The extensions of the last EHLO (LHLO) reply, one line each, as the
    /// relay wrote them; after STARTTLS, those offered over TLS.
    pub fn capabilities(&self) -> &[String] {
        &self.ext.lines
    }

    /// The SASL mechanisms the relay's AUTH extension offers.
    pub fn auth_mechanisms(&self) -> &[String] {
        &self.ext.auth
    }

    /// The mechanism the login used, if the relay has a login.
    pub fn mechanism(&self) -> Option<Mechanism> {
        self.mechanism
    }

    /// The TLS version, cipher suite and relay certificate, if encrypted.
    pub fn tls_info(&self) -> Option<crate::tls::ConnectionInfo> {
        self.stream.tls_info()
    }

    /// Whether the next transaction may start on this connection.
    pub fn is_reusable(&self) -> bool {
        !self.broken
    }

    async fn hello(&mut self, name: &str) -> Result<(), SmtpError> {
        if self.protocol == Protocol::Lmtp {
            // LMTP has LHLO and nothing to fall back to (RFC 2033 §4.1).
            let reply = self.command("LHLO", &format!("LHLO {name}"), 250).await?;
            self.ext = Extensions::from_ehlo(&reply);
            return Ok(());
        }
        self.write("EHLO", format!("EHLO {name}\r\n").as_bytes())
            .await?;
        let reply = self.read("EHLO").await?;
        if reply.is_completion() {
            self.ext = Extensions::from_ehlo(&reply);
            return Ok(());
        }
        // An RFC 821 relay: no extensions, one command at a time.
        self.ext = Extensions::default();
        self.command("HELO", &format!("HELO {name}"), 250)
            .await
            .map(drop)
    }

    async fn starttls(mut self, settings: &Settings) -> Result<Connection, SmtpError> {
        if !self.ext.starttls {
            return Err(SmtpError::NoStartTls { peer: self.peer });
        }
        self.command("STARTTLS", "STARTTLS", 220).await?;
        if self.decoder.buffered() > 0 {
            // Bytes that arrived before the handshake could be injected by
            // anyone on the path (the STARTTLS command injection attack).
            return Err(SmtpError::Io {
                peer: self.peer,
                during: "STARTTLS",
                source: std::io::Error::other("relay sent data before the TLS handshake"),
            });
        }
        let (Stream::Plain(tcp), Some(config)) = (self.stream, &settings.tls_config) else {
            return Err(SmtpError::Io {
                peer: self.peer,
                during: "STARTTLS",
                source: std::io::Error::other("connection is already encrypted"),
            });
        };
        self.stream = handshake(tcp, config, &settings.host, &self.peer, self.timeout).await?;
        self.hello(&settings.helo).await?;
        Ok(self)
    }

    /// One command, one reply, which must carry `code`. The command text
    /// is never logged: it can hold credentials.
    pub(super) async fn command(
        &mut self,
        during: &'static str,
        command: &str,
        code: u16,
    ) -> Result<Reply, SmtpError> {
        self.write(during, format!("{command}\r\n").as_bytes())
            .await?;
        self.expect(during, code).await
    }

    async fn expect(&mut self, during: &'static str, code: u16) -> Result<Reply, SmtpError> {
        let reply = self.read(during).await?;
        if reply.code == code {
            Ok(reply)
        } else {
            Err(self.refused(during, reply))
        }
    }

    pub(super) async fn write(
        &mut self,
        during: &'static str,
        bytes: &[u8],
    ) -> Result<(), SmtpError> {
        match timeout(self.timeout, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => self.flush(during).await,
            Ok(Err(source)) => Err(self.io_error(during, source)),
            Err(_) => Err(self.timed_out(during)),
        }
    }

    pub(super) async fn flush(&mut self, during: &'static str) -> Result<(), SmtpError> {
        match timeout(self.timeout, self.stream.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(self.io_error(during, source)),
            Err(_) => Err(self.timed_out(during)),
        }
    }

    pub(super) async fn read(&mut self, during: &'static str) -> Result<Reply, SmtpError> {
        loop {
            match self.decoder.next_reply() {
                Ok(Some(reply)) => {
                    tracing::trace!(peer = %self.peer, %reply, "reply");
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(source) => {
                    return Err(SmtpError::Reply {
                        peer: self.peer.clone(),
                        source,
                    })
                }
            }
            match timeout(self.timeout, self.stream.read(&mut self.chunk)).await {
                Ok(Ok(0)) => {
                    return Err(SmtpError::Closed {
                        peer: self.peer.clone(),
                        during,
                    })
                }
                Ok(Ok(n)) => self.decoder.feed(&self.chunk[..n]),
                Ok(Err(source)) => return Err(self.io_error(during, source)),
                Err(_) => return Err(self.timed_out(during)),
            }
        }
    }

    /// Before a flight that sends the message with the commands: whether
    /// the relay already dropped this connection while it was idle. Its
    /// 421 or its FIN is then waiting to be read, so one read that does
    /// not wait tells, and the error is the stale kind (`MAIL FROM`) that
    /// lets the message go out on a fresh connection.
    pub(super) async fn dropped_while_idle(&mut self) -> Result<(), SmtpError> {
        if self.decoder.buffered() == 0 {
            // Polled once, not raced against a zero timeout: tokio's timer
            // rounds that up to its next millisecond tick, a wait per message.
            let mut buf = ReadBuf::new(&mut self.chunk);
            let stream = &mut self.stream;
            let polled = std::future::poll_fn(|cx| {
                Poll::Ready(Pin::new(&mut *stream).poll_read(cx, &mut buf))
            })
            .await;
            let n = buf.filled().len();
            match polled {
                Poll::Pending => return Ok(()),
                Poll::Ready(Ok(())) if n == 0 => {
                    self.broken = true;
                    return Err(SmtpError::Closed {
                        peer: self.peer.clone(),
                        during: MAIL_FROM,
                    });
                }
                Poll::Ready(Ok(())) => self.decoder.feed(&self.chunk[..n]),
                Poll::Ready(Err(source)) => {
                    self.broken = true;
                    return Err(self.io_error(MAIL_FROM, source));
                }
            }
        }
        self.broken = true;
        let reply = self.read(MAIL_FROM).await?;
        Err(self.refused(MAIL_FROM, reply))
    }

    pub(super) fn refused(&self, command: &'static str, reply: Reply) -> SmtpError {
        SmtpError::Refused {
            peer: self.peer.clone(),
            command,
            reply,
        }
    }

    pub(super) fn io_error(&self, during: &'static str, source: std::io::Error) -> SmtpError {
        SmtpError::Io {
            peer: self.peer.clone(),
            during,
            source,
        }
    }
}

impl Connection {
    pub(super) fn timed_out(&self, during: &'static str) -> SmtpError {
        timed_out(&self.peer, during, self.timeout)
    }
}

async fn connect_tcp(settings: &Settings, peer: &str) -> Result<TcpStream, SmtpError> {
    let connect = TcpStream::connect((settings.host.as_str(), settings.port));
    let tcp = match timeout(settings.timeout, connect).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(source)) => {
            return Err(SmtpError::Connect {
                peer: peer.to_owned(),
                source,
            })
        }
        Err(_) => return Err(timed_out(peer, "connect", settings.timeout)),
    };
    tcp.set_nodelay(true).map_err(|source| SmtpError::Connect {
        peer: peer.to_owned(),
        source,
    })?;
    Ok(tcp)
}

fn timed_out(peer: &str, during: &'static str, after: Duration) -> SmtpError {
    SmtpError::Timeout {
        peer: peer.to_owned(),
        during,
        after,
    }
}

async fn handshake(
    tcp: TcpStream,
    config: &Arc<ClientConfig>,
    host: &str,
    peer: &str,
    limit: Duration,
) -> Result<Stream, SmtpError> {
    match timeout(limit, Stream::tls(tcp, config.clone(), host)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(source)) => Err(SmtpError::Tls {
            peer: peer.to_owned(),
            source,
        }),
        Err(_) => Err(timed_out(peer, "TLS handshake", limit)),
    }
}
