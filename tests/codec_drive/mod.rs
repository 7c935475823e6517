//! Drives the sans-IO decoders the way a socket would: the same bytes in one
//! read or cut into pieces of any size. Each driver checks the decoder's
//! invariants as it goes (panicking when one breaks) and returns what was
//! decoded, so callers can compare one chunking against another.
//!
//! Shared by tests/codec_properties.rs (proptest) and the cargo-fuzz targets
//! in fuzz/ (which include this file by path), so both prove the same things.

use popferry::pop3::codec::{dot_stuff, DecodeError, Decoder, Limits, ListingLine};
use popferry::pop3::Reply as Pop3Reply;
use popferry::smtp::data::DataChunks;
use popferry::smtp::reply::{Reply as SmtpReply, ReplyDecoder, ReplyError, MAX_LINE, MAX_LINES};

/// `wire` cut into pieces whose sizes cycle through `sizes` (a size of 0
/// counts as 1). No sizes means one piece holding everything.
#[derive(Debug, Clone)]
pub struct Pieces<'a> {
    wire: &'a [u8],
    sizes: &'a [usize],
    turn: usize,
}

impl<'a> Pieces<'a> {
    pub fn new(wire: &'a [u8], sizes: &'a [usize]) -> Self {
        Pieces {
            wire,
            sizes,
            turn: 0,
        }
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.wire.is_empty() {
            return None;
        }
        let size = match self.sizes {
            [] => self.wire.len(),
            sizes => sizes[self.turn % sizes.len()].max(1),
        };
        self.turn += 1;
        let (piece, rest) = self.wire.split_at(size.min(self.wire.len()));
        self.wire = rest;
        Some(piece)
    }
}

/// What the client asks the POP3 decoder for next. The decoder does not
/// know which reply shape comes next; the client does, from its command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pop3Step {
    /// A status line (`+OK`, `-ERR`, `+`).
    Status,
    /// A multi-line listing up to its `.` line (CAPA, UIDL, LIST).
    Listing,
    /// A message body up to its `.` line (RETR, TOP).
    Body,
}

/// The result of one [`Pop3Step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pop3Event {
    Status(Pop3Reply),
    Listing(Vec<Vec<u8>>),
    Body(Vec<u8>),
    /// The bytes ran out before the step finished; what it had so far.
    Cut {
        lines: Vec<Vec<u8>>,
        body: Vec<u8>,
    },
    Failed(DecodeError),
}

/// Run `steps` over `wire` delivered in `pieces`, stopping at the first
/// step that is cut short or fails. Panics if an invariant breaks: a status
/// text with control characters, a listing line over `max_line`, a body
/// over `max_message` or longer than the bytes it was decoded from, or more
/// than a possible terminator (2 bytes) held back while a body waits.
pub fn decode_pop3(limits: Limits, steps: &[Pop3Step], pieces: Pieces<'_>) -> Vec<Pop3Event> {
    let mut feed = Pop3Feed {
        decoder: Decoder::new(limits),
        pieces,
    };
    let mut events = Vec::new();
    for &step in steps {
        let event = match step {
            Pop3Step::Status => feed.status(),
            Pop3Step::Listing => feed.listing(),
            Pop3Step::Body => feed.body(),
        };
        let last = matches!(event, Pop3Event::Cut { .. } | Pop3Event::Failed(_));
        events.push(event);
        if last {
            break;
        }
    }
    events
}

/// [`decode_pop3`] in one read and in `sizes` pieces, asserting both decode
/// the same; returns what they decoded.
pub fn decode_pop3_any_chunking(
    limits: Limits,
    steps: &[Pop3Step],
    wire: &[u8],
    sizes: &[usize],
) -> Vec<Pop3Event> {
    let whole = decode_pop3(limits, steps, Pieces::new(wire, &[]));
    let cut = decode_pop3(limits, steps, Pieces::new(wire, sizes));
    assert_eq!(whole, cut, "pieces of {sizes:?} decode differently");
    whole
}

struct Pop3Feed<'a> {
    decoder: Decoder,
    pieces: Pieces<'a>,
}

impl Pop3Feed<'_> {
    /// Feed the next piece; false when the wire is used up.
    fn more(&mut self) -> bool {
        self.pieces
            .next()
            .map(|piece| self.decoder.feed(piece))
            .is_some()
    }

    fn status(&mut self) -> Pop3Event {
        loop {
            match self.decoder.reply() {
                Ok(Some(reply)) => {
                    assert_status_is_printable(&reply);
                    return Pop3Event::Status(reply);
                }
                Ok(None) if self.more() => {}
                Ok(None) => return cut(Vec::new(), Vec::new()),
                Err(error) => return Pop3Event::Failed(error),
            }
        }
    }

    fn listing(&mut self) -> Pop3Event {
        let max_line = self.decoder.limits().max_line;
        let mut lines = Vec::new();
        loop {
            match self.decoder.listing_line() {
                Ok(Some(ListingLine::Line(line))) => {
                    assert!(line.len() < max_line, "listing line over {max_line}");
                    lines.push(line);
                }
                Ok(Some(ListingLine::End)) => return Pop3Event::Listing(lines),
                Ok(None) if self.more() => {}
                Ok(None) => return cut(lines, Vec::new()),
                Err(error) => return Pop3Event::Failed(error),
            }
        }
    }

    fn body(&mut self) -> Pop3Event {
        let max_message = self.decoder.limits().max_message;
        let mut out = Vec::new();
        loop {
            let (held, had) = (self.decoder.buffered(), out.len());
            let result = self.decoder.body(&mut out);
            let consumed = held - self.decoder.buffered();
            assert!(out.len() - had <= consumed, "unstuffing made bytes");
            assert!(out.len() as u64 <= max_message, "body over the limit");
            match result {
                Ok(Some(())) => return Pop3Event::Body(out),
                Ok(None) => {
                    assert!(self.decoder.buffered() <= 2, "body held back bytes");
                    if !self.more() {
                        return cut(Vec::new(), out);
                    }
                }
                // The part decoded before a body error depends on where
                // the reads ended; the connection is dropped anyway.
                Err(error) => return Pop3Event::Failed(error),
            }
        }
    }
}

fn cut(lines: Vec<Vec<u8>>, body: Vec<u8>) -> Pop3Event {
    Pop3Event::Cut { lines, body }
}

/// Status text and code are safe to log: no control characters, and a code
/// is a non-empty run of visible ASCII.
fn assert_status_is_printable(reply: &Pop3Reply) {
    assert!(!reply.text.chars().any(char::is_control), "{reply:?}");
    if let Some(code) = &reply.code {
        assert!(!code.is_empty() && code.bytes().all(|b| b.is_ascii_graphic()));
    }
    let shown = reply.to_string();
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
}

/// Every SMTP reply in `pieces`, ending with the first error if there is
/// one. Panics if a reply breaks the decoder's bounds or carries control
/// characters in its text.
pub fn decode_smtp(pieces: Pieces<'_>) -> Vec<Result<SmtpReply, ReplyError>> {
    let mut decoder = ReplyDecoder::default();
    let mut replies = Vec::new();
    for piece in pieces {
        decoder.feed(piece);
        loop {
            match decoder.next_reply() {
                Ok(Some(reply)) => {
                    assert!((200..600).contains(&reply.code), "{reply:?}");
                    assert!((1..=MAX_LINES).contains(&reply.lines.len()));
                    for line in &reply.lines {
                        assert!(line.chars().count() <= MAX_LINE, "{line:?}");
                        assert!(!line.chars().any(char::is_control), "{line:?}");
                    }
                    replies.push(Ok(reply));
                }
                Ok(None) => break,
                Err(error) => {
                    replies.push(Err(error));
                    return replies;
                }
            }
        }
    }
    replies
}

/// [`decode_smtp`] in one read and in `sizes` pieces, asserting both decode
/// the same; returns what they decoded.
pub fn decode_smtp_any_chunking(
    wire: &[u8],
    sizes: &[usize],
) -> Vec<Result<SmtpReply, ReplyError>> {
    let whole = decode_smtp(Pieces::new(wire, &[]));
    let cut = decode_smtp(Pieces::new(wire, sizes));
    assert_eq!(whole, cut, "pieces of {sizes:?} decode differently");
    whole
}

/// What a POP3 client gets back for `message` sent through SMTP DATA
/// stuffing: the message itself, plus a CRLF when it is not empty and does
/// not end with a line feed (the terminator needs a line of its own, so the
/// sender adds one; the receiver cannot tell it was added).
pub fn expected_after_round_trip(message: &[u8]) -> Vec<u8> {
    let mut expected = message.to_vec();
    if !message.is_empty() && !message.ends_with(b"\n") {
        expected.extend_from_slice(b"\r\n");
    }
    expected
}

/// Stuff `message` with [`DataChunks`] (checking it agrees with the POP3
/// side's [`dot_stuff`]), then unstuff it with the POP3 body decoder fed in
/// `sizes` pieces, followed by a status line that must come out intact.
/// Returns the unstuffed body.
pub fn stuff_then_unstuff(message: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut chunks = DataChunks::new(message);
    while let Some(chunk) = chunks.next_chunk() {
        wire.extend_from_slice(chunk);
    }
    let mut by_pop3 = Vec::new();
    dot_stuff(message, &mut by_pop3);
    assert_eq!(wire, by_pop3, "the two stuffers disagree");
    wire.extend_from_slice(b"+OK next\r\n");
    let limits = Limits {
        max_line: 64,
        max_message: wire.len() as u64,
    };
    let steps = [Pop3Step::Body, Pop3Step::Status];
    match &decode_pop3_any_chunking(limits, &steps, &wire, sizes)[..] {
        [Pop3Event::Body(body), Pop3Event::Status(next)] => {
            assert!(next.is_ok() && next.text == "next", "{next:?}");
            body.clone()
        }
        other => panic!("stuffed {message:?} decoded as {other:?}"),
    }
}
