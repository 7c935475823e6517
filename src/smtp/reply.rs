//! SMTP replies (RFC 5321 §4.2), decoded sans-IO: bytes in, replies out.
//!
//! A reply is one or more lines `ddd-text` ending with a line `ddd text`
//! (or a bare `ddd`). The decoder buffers what the socket gave it and hands
//! out complete replies; a relay that never ends its line or its reply runs
//! into a limit instead of into memory.

use std::fmt;

use crate::pop3::reply::clean_text;

/// Longest reply line accepted. RFC 5321 allows 512 bytes; real relays
/// stay well under this, a hostile one is cut off here.
pub const MAX_LINE: usize = 8 * 1024;
/// Most lines in one reply (an EHLO lists a few dozen at most).
pub const MAX_LINES: usize = 256;

/// One complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// The text of every line, in order, without codes or line ends.
    /// Control characters and non-UTF-8 bytes are replaced: the text goes
    /// into logs, errors and the ledger, and a relay must not be able to
    /// put terminal escapes there.
    pub lines: Vec<String>,
}

impl Reply {
    /// 2xx: the command succeeded.
    pub fn is_completion(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 3xx: go on (354 after DATA, 334 during AUTH).
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// 5xx: sending the same again will fail the same way.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// The RFC 3463 enhanced status code (`5.7.8`) that starts the text,
    /// if the relay sent one (RFC 2034).
    pub fn enhanced_code(&self) -> Option<&str> {
        let word = self.lines.first()?.split(' ').next()?;
        let parts: Vec<&str> = word.split('.').collect();
        let numeric =
            |part: &&str| (1..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
        (parts.len() == 3 && parts.iter().all(numeric)).then_some(word)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.lines.join(" / "))
    }
}

/// A byte stream that is not SMTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("reply line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("reply of more than {MAX_LINES} lines")]
    TooManyLines,
    #[error("malformed reply line {0:?}")]
    Malformed(String),
    #[error("reply lines with different codes ({0} then {1})")]
    MixedCodes(u16, u16),
}

/// Accumulates bytes and yields replies.
#[derive(Debug, Default)]
pub struct ReplyDecoder {
    buf: Vec<u8>,
    /// Where the next unread line starts in `buf`.
    start: usize,
    partial: Option<Reply>,
}

impl ReplyDecoder {
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not yet decoded. After STARTTLS this must be
    /// zero: anything already buffered was sent before the handshake, in
    /// clear text, and must not be trusted as coming over TLS.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete reply, `None` if more bytes are needed.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        loop {
            let rest = &self.buf[self.start..];
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                if rest.len() > MAX_LINE {
                    return Err(ReplyError::LineTooLong);
                }
                return Ok(None);
            };
            if end > MAX_LINE {
                return Err(ReplyError::LineTooLong);
            }
            let line = &rest[..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let (code, last, text) = parse_line(line)?;
            self.start += end + 1;
            let reply = self.partial.get_or_insert_with(|| Reply {
                code,
                lines: Vec::new(),
            });
            if reply.code != code {
                return Err(ReplyError::MixedCodes(reply.code, code));
            }
            if reply.lines.len() == MAX_LINES {
                return Err(ReplyError::TooManyLines);
            }
            reply.lines.push(text);
            if last {
                return Ok(self.partial.take());
            }
        }
    }
}

/// `ddd`, `ddd text` or `ddd-text`: the code, whether this is the last
/// line, and the text.
fn parse_line(line: &[u8]) -> Result<(u16, bool, String), ReplyError> {
    let malformed = || ReplyError::Malformed(String::from_utf8_lossy(line).into_owned());
    let digits = line.get(..3).ok_or_else(malformed)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return Err(malformed());
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let (last, text) = match line.get(3) {
        None => (true, &[][..]),
        Some(b' ') => (true, &line[4..]),
        Some(b'-') => (false, &line[4..]),
        Some(_) => return Err(malformed()),
    };
    Ok((code, last, clean_text(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> Vec<Reply> {
        let mut decoder = ReplyDecoder::default();
        decoder.feed(bytes);
        std::iter::from_fn(|| decoder.next_reply().unwrap()).collect()
    }

    #[test]
    fn single_and_multi_line_replies() {
        let replies = decode_all(
            b"220 relay ready\r\n250-relay\r\n250-PIPELINING\r\n250 8BITMIME\r\n354\r\n",
        );
        assert_eq!(replies.len(), 3);
        assert_eq!(replies[0].code, 220);
        assert_eq!(replies[1].lines, ["relay", "PIPELINING", "8BITMIME"]);
        assert!(replies[2].is_intermediate() && replies[2].lines == [""]);
    }

    #[test]
    fn a_reply_split_anywhere_decodes_the_same() {
        let wire = b"250-first\r\n250 second\r\n550 5.1.1 no such user\r\n";
        let whole = decode_all(wire);
        for cut in 0..wire.len() {
            let mut decoder = ReplyDecoder::default();
            decoder.feed(&wire[..cut]);
            let mut got: Vec<Reply> =
                std::iter::from_fn(|| decoder.next_reply().unwrap()).collect();
            decoder.feed(&wire[cut..]);
            got.extend(std::iter::from_fn(|| decoder.next_reply().unwrap()));
            assert_eq!(got, whole, "cut at {cut}");
        }
    }

    #[test]
    fn control_bytes_in_reply_text_are_neutralised() {
        let replies = decode_all(b"550-\x1b[2J\x1b]0;owned\x07\r\n550 a\rb\x00\xff\r\n");
        assert_eq!(replies[0].lines, ["?[2J?]0;owned?", "a?b?\u{fffd}"]);
    }

    #[test]
    fn garbage_and_floods_are_errors() {
        let mut decoder = ReplyDecoder::default();
        decoder.feed(b"hello\r\n");
        assert!(matches!(
            decoder.next_reply(),
            Err(ReplyError::Malformed(_))
        ));

        let mut decoder = ReplyDecoder::default();
        decoder.feed(&vec![b'2'; MAX_LINE + 1]);
        assert_eq!(decoder.next_reply(), Err(ReplyError::LineTooLong));

        let mut decoder = ReplyDecoder::default();
        decoder.feed(b"250-a\r\n550 b\r\n");
        assert_eq!(decoder.next_reply(), Err(ReplyError::MixedCodes(250, 550)));

        let mut decoder = ReplyDecoder::default();
        decoder.feed(&b"250-x\r\n".repeat(MAX_LINES + 1));
        assert_eq!(decoder.next_reply(), Err(ReplyError::TooManyLines));
    }
}
