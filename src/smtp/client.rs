//! One SMTP connection to the relay: greeting, EHLO, STARTTLS, AUTH, then
//! any number of mail transactions.
//!
//! Three choices set this apart from a generic client, each worth a round
//! trip or a copy per message:
//! * TCP_NODELAY, and the DATA terminator in the same write as the
//!   message's tail ([`DataChunks`]), so no segment waits for a delayed ACK;
//! * PIPELINING (RFC 2920): MAIL, every RCPT and DATA go out in one write
//!   when the relay offers it, so a transaction costs two round trips;
//! * the message is stuffed chunk by chunk from the one copy in memory.
//!
//! The next transaction never starts before the final reply to the last
//! one: Postfix (3.7) answers a MAIL pipelined behind the end of DATA only
//! after a delayed-ACK timer, about 40 ms per message.

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::data::DataChunks;
use super::ehlo::Extensions;
use super::error::SmtpError;
use super::reply::{Reply, ReplyDecoder};
use crate::config::{Credential, TlsMode};
use crate::net::Stream;
use crate::sasl::Mechanism;

/// What the relay's failure happened during; `MAIL_FROM` failures on a
/// reused connection mean it went stale while idle.
pub(super) const MAIL_FROM: &str = "MAIL FROM";
const END_OF_DATA: &str = "end of DATA";

/// How to reach and greet the relay, resolved once from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// Present unless `tls` is [`TlsMode::None`].
    pub tls_config: Option<Arc<ClientConfig>>,
    pub helo: String,
    pub login: Option<Login>,
    /// The configured mechanism; `None` for the strongest offered.
    pub auth: Option<Mechanism>,
    pub timeout: Duration,
}

/// Who logs in to the relay, and with what.
#[derive(Debug, Clone)]
pub struct Login {
    pub username: String,
    pub credential: Credential,
    /// The `popferry oauth login` arguments that renew an OAuth2 sign-in.
    pub sign_in: String,
}

/// An open, greeted (and, if configured, encrypted and logged-in) session.
pub struct Connection {
    pub(super) stream: Stream,
    decoder: ReplyDecoder,
    chunk: Vec<u8>,
    pub(super) ext: Extensions,
    pub(super) peer: String,
    timeout: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "smtp::Connection({})", self.peer)
    }
}

impl Connection {
    pub async fn open(settings: &Settings) -> Result<Connection, SmtpError> {
        let peer = format!("{}:{}", settings.host, settings.port);
        let limit = settings.timeout;
        let tcp = match timeout(
            limit,
            TcpStream::connect((settings.host.as_str(), settings.port)),
        )
        .await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => return Err(SmtpError::Connect { peer, source }),
            Err(_) => return Err(timed_out(&peer, "connect", limit)),
        };
        tcp.set_nodelay(true).map_err(|source| SmtpError::Connect {
            peer: peer.clone(),
            source,
        })?;
        let stream = match (&settings.tls, &settings.tls_config) {
            (TlsMode::Implicit, Some(config)) => {
                handshake(tcp, config, &settings.host, &peer, limit).await?
            }
            _ => Stream::Plain(tcp),
        };
        let mut conn = Connection {
            stream,
            decoder: ReplyDecoder::default(),
            chunk: vec![0; 4096],
            ext: Extensions::default(),
            peer,
            timeout: limit,
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

    /// One mail transaction. `Ok` means the relay answered 2xx to the end
    /// of DATA and is responsible for the message from now on.
    pub async fn send(
        &mut self,
        sender: &str,
        recipients: &[String],
        message: &[u8],
    ) -> Result<(), SmtpError> {
        let mut mail = format!("MAIL FROM:<{sender}>");
        if self.ext.size {
            mail += &format!(" SIZE={}", message.len());
        }
        if self.ext.eight_bit && !message.is_ascii() {
            mail += " BODY=8BITMIME";
        }
        let international = !sender.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
        if self.ext.smtputf8 && international {
            mail += " SMTPUTF8";
        }
        let mut commands = vec![(MAIL_FROM, mail)];
        commands.extend(
            recipients
                .iter()
                .map(|r| ("RCPT TO", format!("RCPT TO:<{r}>"))),
        );
        commands.push(("DATA", "DATA".to_owned()));

        let mut refused = None;
        let mut data_open = false;
        if self.ext.pipelining {
            let batch: String = commands.iter().map(|(_, c)| format!("{c}\r\n")).collect();
            self.write(MAIL_FROM, batch.as_bytes()).await?;
            for (during, _) in &commands {
                let reply = self.read(during).await?;
                data_open = *during == "DATA" && reply.code == 354;
                if refused.is_none() && !reply.is_completion() && !data_open {
                    refused = Some(self.refused(during, reply));
                }
            }
        } else {
            for (during, command) in &commands {
                self.write(during, format!("{command}\r\n").as_bytes())
                    .await?;
                let reply = self.read(during).await?;
                data_open = *during == "DATA" && reply.code == 354;
                if !reply.is_completion() && !data_open {
                    refused = Some(self.refused(during, reply));
                    break;
                }
            }
        }
        if let Some(error) = refused {
            // RFC 2920 §3.1: a relay may open DATA although every RCPT
            // failed; an empty message closes it without sending anything.
            if data_open {
                self.write(END_OF_DATA, b".\r\n").await?;
                self.read(END_OF_DATA).await?;
            }
            return Err(self.reset_after(error).await);
        }

        let mut chunks = DataChunks::new(message);
        while let Some(chunk) = chunks.next_chunk() {
            let write = self.stream.write_all(chunk);
            match timeout(self.timeout, write).await {
                Ok(Ok(())) => {}
                Ok(Err(source)) => return Err(self.io_error("DATA", source)),
                Err(_) => return Err(timed_out(&self.peer, "DATA", self.timeout)),
            }
        }
        self.flush("DATA").await?;
        let reply = self.read(END_OF_DATA).await?;
        if reply.is_completion() {
            return Ok(());
        }
        let error = self.refused(END_OF_DATA, reply);
        Err(self.reset_after(error).await)
    }

    /// NOOP: whether an idle connection is still alive.
    pub async fn noop(&mut self) -> Result<(), SmtpError> {
        self.command("NOOP", "NOOP", 250).await.map(drop)
    }

    /// Polite end of the session; a relay that already left loses nothing.
    pub async fn quit(mut self) {
        let _ = self.command("QUIT", "QUIT", 221).await;
    }

    /// After a refused transaction, RSET so the connection can carry the
    /// next one. The refusal is what the caller needs to hear either way.
    async fn reset_after(&mut self, error: SmtpError) -> SmtpError {
        if error.leaves_connection_usable() {
            if let Err(reset) = self.command("RSET", "RSET", 250).await {
                tracing::debug!(error = %reset, "RSET after a refusal failed");
            }
        }
        error
    }

    async fn hello(&mut self, name: &str) -> Result<(), SmtpError> {
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
    async fn command(
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
            Err(_) => Err(timed_out(&self.peer, during, self.timeout)),
        }
    }

    async fn flush(&mut self, during: &'static str) -> Result<(), SmtpError> {
        match timeout(self.timeout, self.stream.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(self.io_error(during, source)),
            Err(_) => Err(timed_out(&self.peer, during, self.timeout)),
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
                Err(_) => return Err(timed_out(&self.peer, during, self.timeout)),
            }
        }
    }

    fn refused(&self, command: &'static str, reply: Reply) -> SmtpError {
        SmtpError::Refused {
            peer: self.peer.clone(),
            command,
            reply,
        }
    }

    fn io_error(&self, during: &'static str, source: std::io::Error) -> SmtpError {
        SmtpError::Io {
            peer: self.peer.clone(),
            during,
            source,
        }
    }
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
