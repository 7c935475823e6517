//! The async driver: runs the sans-IO [`Decoder`] over a socket.
//!
//! Sending and receiving are separate steps ([`Client::send`] queues a
//! command, [`Client::flush`] writes the queue, the `read_*` methods decode
//! replies in order), so several commands can be in flight at once on a
//! server that advertises PIPELINING. The convenience methods that do one
//! command at a time are in `transaction.rs`, `listing.rs` and `auth.rs`.
//!
//! Every read and every write is bounded by the session timeout, and a
//! reply must keep a minimum pace ([`super::pace`]). A server that stalls,
//! trickles or floods gets a typed error, never a stuck task or unbounded
//! memory.

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};

use super::codec::{Decoder, Limits};
use super::command::Command;
use super::error::Pop3Error;
use super::pace::{Expired, Pace};
use super::reply::{Reply, Status};
use crate::net::Stream;

/// Where to connect and how.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// TLS from the first byte (port 995) when set.
    pub implicit_tls: Option<Arc<ClientConfig>>,
    pub timeout: Duration,
    pub limits: Limits,
}

/// An open POP3 session.
#[derive(Debug)]
pub struct Client {
    stream: Stream,
    pub(super) decoder: Decoder,
    out: Vec<u8>,
    /// Reused for every socket read; on the heap because futures that
    /// hold large arrays overflow task stacks.
    chunk: Vec<u8>,
    host: String,
    peer: String,
    timeout: Duration,
    pub(super) greeting: Reply,
}

const READ_CHUNK: usize = 64 * 1024;

impl Client {
    /// Connect, run the TLS handshake for implicit TLS, read the greeting.
    pub async fn connect(endpoint: &Endpoint) -> Result<Client, Pop3Error> {
        let peer = format!("{}:{}", endpoint.host, endpoint.port);
        let tcp = match timeout(
            endpoint.timeout,
            TcpStream::connect((endpoint.host.as_str(), endpoint.port)),
        )
        .await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => return Err(Pop3Error::Connect { peer, source }),
            Err(_) => {
                return Err(Pop3Error::Timeout {
                    peer,
                    during: "connect",
                    after: endpoint.timeout,
                })
            }
        };
        // Commands are small and each waits for its reply: Nagle would
        // only add delay.
        tcp.set_nodelay(true).map_err(|source| Pop3Error::Connect {
            peer: peer.clone(),
            source,
        })?;
        let stream = match &endpoint.implicit_tls {
            Some(config) => {
                handshake(tcp, config.clone(), &endpoint.host, &peer, endpoint.timeout).await?
            }
            None => Stream::Plain(tcp),
        };
        let mut client = Client {
            stream,
            decoder: Decoder::new(endpoint.limits),
            out: Vec::new(),
            chunk: vec![0; READ_CHUNK],
            host: endpoint.host.clone(),
            peer,
            timeout: endpoint.timeout,
            greeting: Reply {
                status: Status::Ok,
                code: None,
                text: String::new(),
            },
        };
        let greeting = client.read_reply("greeting").await?;
        if !greeting.is_ok() {
            return Err(client.refused("greeting", greeting));
        }
        client.greeting = greeting;
        Ok(client)
    }

    pub fn peer(&self) -> &str {
        &self.peer
    }

    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// The TLS version, cipher suite and server certificate, if encrypted.
    pub fn tls_info(&self) -> Option<crate::tls::ConnectionInfo> {
        self.stream.tls_info()
    }

    /// Upgrade to TLS with STLS (RFC 2595). Capabilities must be asked for
    /// again afterwards: the server may offer more once encrypted.
    pub async fn starttls(mut self, config: Arc<ClientConfig>) -> Result<Client, Pop3Error> {
        self.expect_ok(Command::Stls).await?;
        if self.decoder.buffered() > 0 {
            return Err(Pop3Error::StlsInjection { peer: self.peer });
        }
        let Stream::Plain(tcp) = self.stream else {
            return Ok(self);
        };
        self.stream = handshake(tcp, config, &self.host, &self.peer, self.timeout).await?;
        Ok(self)
    }

    /// SLEE: commit the deletions like QUIT, but keep the connection,
    /// asleep, for a later WAKE.
    pub async fn slee(&mut self) -> Result<(), Pop3Error> {
        self.expect_ok(Command::Slee).await?;
        self.release_buffers();
        Ok(())
    }

    /// Frees the read chunk and whatever the decoder and the command queue
    /// grew to while a poll moved mail: a pool parks hundreds of sessions,
    /// and each would otherwise keep its high-water mark (the 64 KiB chunk
    /// alone) for as long as it sleeps. The chunk is allocated again by the
    /// next read.
    pub(super) fn release_buffers(&mut self) {
        self.chunk = Vec::new();
        self.decoder.release();
        self.out = Vec::new();
    }

    /// Takes on another account's timeout and limits, for a connection
    /// that account logs in on after another's QAUT.
    pub fn retune(&mut self, timeout: Duration, limits: Limits) {
        self.timeout = timeout;
        self.decoder.set_limits(limits);
    }

    /// QUIT. Its `+OK` is the server's word that the deletions are
    /// committed (RFC 1939 §6): anything else means they may not be.
    pub async fn quit(mut self) -> Result<(), Pop3Error> {
        self.expect_ok(Command::Quit).await?;
        // The session is over either way; a failed close loses nothing.
        let _ = timeout(self.timeout, self.stream.shutdown()).await;
        Ok(())
    }

    /// Queue a command without waiting for its reply.
    pub fn send(&mut self, command: Command<'_>) -> Result<(), Pop3Error> {
        tracing::trace!(peer = %self.peer, ?command, "send");
        command.encode(&mut self.out)?;
        Ok(())
    }

    /// Write every queued command.
    pub async fn flush(&mut self) -> Result<(), Pop3Error> {
        if self.out.is_empty() {
            return Ok(());
        }
        let write = async {
            self.stream.write_all(&self.out).await?;
            self.stream.flush().await
        };
        match timeout(self.timeout, write).await {
            Ok(Ok(())) => {
                self.out.clear();
                Ok(())
            }
            Ok(Err(source)) => Err(self.io_error("sending a command", source)),
            Err(_) => Err(self.timeout_error("sending a command")),
        }
    }

    /// Read the next status line.
    pub async fn read_reply(&mut self, during: &'static str) -> Result<Reply, Pop3Error> {
        let mut pace = self.pace();
        loop {
            match self.decoder.reply() {
                Ok(Some(reply)) => {
                    tracing::trace!(peer = %self.peer, %reply, "reply");
                    return Ok(reply);
                }
                Ok(None) => self.fill(during, &mut pace).await?,
                Err(source) => return Err(self.decode_error(source)),
            }
        }
    }

    /// Read a multi-line message body up to its terminator into `out`.
    pub async fn read_body(
        &mut self,
        during: &'static str,
        out: &mut Vec<u8>,
    ) -> Result<(), Pop3Error> {
        let during = match during {
            "RETR" => "RETR in full",
            "TOP" => "TOP in full",
            other => other,
        };
        let mut pace = self.pace();
        loop {
            match self.decoder.body(out) {
                Ok(Some(())) => return Ok(()),
                Ok(None) => self.fill(during, &mut pace).await?,
                Err(source) => return Err(self.decode_error(source)),
            }
        }
    }

    /// Send one command and require `+OK`.
    pub(super) async fn expect_ok(&mut self, command: Command<'_>) -> Result<Reply, Pop3Error> {
        self.send(command)?;
        self.flush().await?;
        self.read_ok(command.verb()).await
    }

    /// Read the reply to `command`, sent earlier, and require `+OK`.
    pub async fn read_ok(&mut self, command: &'static str) -> Result<Reply, Pop3Error> {
        let reply = self.read_reply(command).await?;
        match reply.status {
            Status::Ok => Ok(reply),
            Status::Err => Err(self.refused(command, reply)),
            Status::Continue => Err(Pop3Error::Unexpected {
                peer: self.peer.clone(),
                command,
                reply,
            }),
        }
    }

    /// A new [`Pace`] for a reply about to be read.
    pub(super) fn pace(&self) -> Pace {
        Pace::new(self.timeout, Instant::now())
    }

    /// One read from the socket into the decoder. It fails when nothing
    /// arrived for `timeout`, or when the reply falls behind its pace.
    pub(super) async fn fill(
        &mut self,
        during: &'static str,
        pace: &mut Pace,
    ) -> Result<(), Pop3Error> {
        if self.chunk.is_empty() {
            self.chunk = vec![0; READ_CHUNK];
        }
        loop {
            let read = self.stream.read(&mut self.chunk);
            match timeout_at(pace.deadline(), read).await {
                Ok(Ok(0)) => {
                    return Err(Pop3Error::Closed {
                        peer: self.peer.clone(),
                        during,
                    })
                }
                Ok(Ok(n)) => {
                    self.decoder.feed(&self.chunk[..n]);
                    pace.arrived(n, Instant::now());
                    return Ok(());
                }
                Ok(Err(source)) => return Err(self.io_error(during, source)),
                Err(_) => match pace.expired() {
                    Expired::Stalled => return Err(self.timeout_error(during)),
                    Expired::TooSlow { received } => {
                        return Err(Pop3Error::TooSlow {
                            peer: self.peer.clone(),
                            during,
                            received,
                            after: self.timeout,
                        })
                    }
                    Expired::NextWindow => {}
                },
            }
        }
    }

    pub(super) fn refused(&self, command: &'static str, reply: Reply) -> Pop3Error {
        Pop3Error::Refused {
            peer: self.peer.clone(),
            command,
            reply,
        }
    }

    fn io_error(&self, during: &'static str, source: std::io::Error) -> Pop3Error {
        Pop3Error::Io {
            peer: self.peer.clone(),
            during,
            source,
        }
    }

    fn timeout_error(&self, during: &'static str) -> Pop3Error {
        Pop3Error::Timeout {
            peer: self.peer.clone(),
            during,
            after: self.timeout,
        }
    }

    pub(super) fn decode_error(&self, source: super::codec::DecodeError) -> Pop3Error {
        Pop3Error::Decode {
            peer: self.peer.clone(),
            source,
        }
    }

    pub(super) fn listing_error(&self, source: super::reply::ListingError) -> Pop3Error {
        Pop3Error::Listing {
            peer: self.peer.clone(),
            source,
        }
    }
}

/// The TLS handshake, bounded by the session timeout, with POP3 errors.
async fn handshake(
    tcp: TcpStream,
    config: Arc<ClientConfig>,
    host: &str,
    peer: &str,
    limit: Duration,
) -> Result<Stream, Pop3Error> {
    match timeout(limit, Stream::tls(tcp, config, host)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(source)) => Err(Pop3Error::Tls {
            peer: peer.to_owned(),
            source,
        }),
        Err(_) => Err(Pop3Error::Timeout {
            peer: peer.to_owned(),
            during: "TLS handshake",
            after: limit,
        }),
    }
}
