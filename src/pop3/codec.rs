//! Sans-IO POP3 reply decoding: bytes in, typed replies out.
//!
//! Nothing here knows about sockets, tasks or clocks. The driver feeds
//! whatever bytes the network produced, in whatever pieces, and asks for the
//! next status line, the next line of a listing or the next stretch of a
//! message body. "Not enough bytes yet" is `Ok(None)`, never an error, so a
//! reply split at any byte boundary decodes exactly like one read in one go.
//!
//! The decoder does not remember which command is outstanding: the caller
//! knows whether a reply is single- or multi-line (RFC 1939 makes that a
//! property of the command, and of `+OK` versus `-ERR`). That keeps several
//! commands in flight possible (RFC 2449 PIPELINING): replies arrive in order
//! and the caller decodes them in the same order it sent the commands.
//!
//! Memory is bounded by [`Limits`]: a status or listing line longer than
//! `max_line` and a body longer than `max_message` are typed errors. Message
//! bodies are streamed out as they arrive, so a long body line costs nothing
//! beyond the body's own size. After any error the byte stream is no longer
//! in a known state and the connection must be dropped.

use std::fmt;

use super::reply::Reply;

/// Bounds on what one reply may make the decoder hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest status line or listing line, terminator included.
    pub max_line: usize,
    /// Largest message body, after dot-unstuffing.
    pub max_message: u64,
}

impl Default for Limits {
    /// 8 KiB lines (RFC 2449 allows 512 octets; servers send more in CAPA
    /// and error texts) and 64 MiB messages.
    fn default() -> Self {
        Limits {
            max_line: 8 * 1024,
            max_message: 64 * 1024 * 1024,
        }
    }
}

/// Why a reply could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A line ran past [`Limits::max_line`] without a line feed.
    #[error("server sent a line longer than {limit} bytes")]
    LineTooLong { limit: usize },
    /// A message body ran past [`Limits::max_message`].
    #[error(
        "message is larger than the limit of {limit} bytes (raise max_message_size to fetch it)"
    )]
    MessageTooLarge { limit: u64 },
    /// A status line that starts with neither `+OK`, `-ERR` nor `+`.
    #[error("malformed reply from server: {line}")]
    Malformed { line: Printable },
}

/// A line from the server, shortened and with control characters escaped so
/// it can go into an error message or a log without harm.
#[derive(Clone, PartialEq, Eq)]
pub struct Printable(String);

impl Printable {
    const MAX: usize = 120;

    pub fn new(bytes: &[u8]) -> Self {
        let mut text = String::new();
        for &b in bytes.iter().take(Self::MAX) {
            match b {
                0x20..=0x7e => text.push(b as char),
                _ => text.push_str(&format!("\\x{b:02x}")),
            }
        }
        if bytes.len() > Self::MAX {
            text.push_str("...");
        }
        Printable(text)
    }
}

impl fmt::Display for Printable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Printable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// One line of a multi-line listing (CAPA, UIDL, LIST).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListingLine {
    /// A line with its terminator removed and dot-stuffing undone.
    Line(Vec<u8>),
    /// The terminating `.` line.
    End,
}

/// Incremental decoder for the server side of a POP3 conversation.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed; compacted lazily in [`Decoder::feed`].
    pos: usize,
    limits: Limits,
    body: BodyState,
}

/// Where a message body stands between calls to [`Decoder::body`].
#[derive(Debug, Clone, Copy, Default)]
struct BodyState {
    /// True when the next byte begins a line (where stuffing and the
    /// terminator live). False while in the middle of a line.
    mid_line: bool,
    /// Unstuffed bytes produced for the current body so far.
    produced: u64,
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Decoder {
            buf: Vec::new(),
            pos: 0,
            limits,
            body: BodyState::default(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Change the limits, e.g. per account once the connection is known.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Append bytes read from the network.
    pub fn feed(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Gives back the memory of consumed bytes. The buffer grows to the
    /// largest stretch ever read at once; a session parked between polls
    /// should not hold on to that.
    pub fn release(&mut self) {
        self.buf.drain(..self.pos);
        self.pos = 0;
        self.buf.shrink_to_fit();
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Take the undecoded bytes, e.g. to check that a server sent nothing
    /// after its reply to STLS (RFC 2595 forbids it; such bytes could be an
    /// injection attempt and must not be read as if they came through TLS).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let rest = self.buf[self.pos..].to_vec();
        self.buf.clear();
        self.pos = 0;
        rest
    }

    /// Decode the next status line (`+OK`, `-ERR` or a `+` continuation).
    pub fn reply(&mut self) -> Result<Option<Reply>, DecodeError> {
        let Some(line) = self.next_line()? else {
            return Ok(None);
        };
        Reply::parse(&line)
            .map(Some)
            .ok_or_else(|| DecodeError::Malformed {
                line: Printable::new(&line),
            })
    }

    /// Decode the next line of a multi-line listing, unstuffed.
    pub fn listing_line(&mut self) -> Result<Option<ListingLine>, DecodeError> {
        let Some(line) = self.next_line()? else {
            return Ok(None);
        };
        Ok(Some(match line.strip_prefix(b".") {
            Some([]) => ListingLine::End,
            Some(rest) => ListingLine::Line(rest.to_vec()),
            None => ListingLine::Line(line),
        }))
    }

    /// Append the next stretch of a message body to `out`, dot-unstuffed,
    /// with line terminators kept as the server sent them.
    ///
    /// Returns `Ok(Some(()))` once the terminating `.` line is consumed,
    /// `Ok(None)` when more bytes are needed.
    pub fn body(&mut self, out: &mut Vec<u8>) -> Result<Option<()>, DecodeError> {
        loop {
            let rest = &self.buf[self.pos..];
            if rest.is_empty() {
                return Ok(None);
            }
            if !self.body.mid_line && rest[0] == b'.' {
                match rest.get(1) {
                    None => return Ok(None),
                    Some(b'\n') => return Ok(self.finish_body(2)),
                    Some(b'\r') => match rest.get(2) {
                        None => return Ok(None),
                        Some(b'\n') => return Ok(self.finish_body(3)),
                        Some(_) => self.pos += 1,
                    },
                    // "..x" is a stuffed dot; a lone ".x" is a server bug
                    // we forgive the same way: the first dot is dropped.
                    Some(_) => self.pos += 1,
                }
                self.body.mid_line = true;
                continue;
            }
            let rest = &self.buf[self.pos..];
            let (take, line_ended) = match memchr(b'\n', rest) {
                Some(i) => (i + 1, true),
                None => (rest.len(), false),
            };
            self.body.produced += take as u64;
            if self.body.produced > self.limits.max_message {
                return Err(DecodeError::MessageTooLarge {
                    limit: self.limits.max_message,
                });
            }
            out.extend_from_slice(&rest[..take]);
            self.pos += take;
            self.body.mid_line = !line_ended;
        }
    }

    /// Consume the terminator line and get ready for the next body.
    fn finish_body(&mut self, terminator: usize) -> Option<()> {
        self.pos += terminator;
        self.body = BodyState::default();
        Some(())
    }

    /// The next complete line without its CRLF (or bare LF), bounded by
    /// `max_line`.
    fn next_line(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        let rest = &self.buf[self.pos..];
        let window = &rest[..rest.len().min(self.limits.max_line)];
        let Some(lf) = memchr(b'\n', window) else {
            if rest.len() >= self.limits.max_line {
                return Err(DecodeError::LineTooLong {
                    limit: self.limits.max_line,
                });
            }
            return Ok(None);
        };
        let mut line = &rest[..lf];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        let line = line.to_vec();
        self.pos += lf + 1;
        Ok(Some(line))
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// Dot-stuff a message body for sending as a multi-line reply and append the
/// terminator. Lines are sent as they are; a body that does not end with a
/// line break gets a CRLF so the terminator stands on its own line.
///
/// Clients never send multi-line data in POP3; this serves the servers in
/// `popferry demo` and the test suite, and the codec's round-trip tests.
pub fn dot_stuff(body: &[u8], out: &mut Vec<u8>) {
    let mut at_line_start = true;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
