//! The DATA section on the wire (RFC 5321 §4.5.2): dot-stuffed, ended by
//! `CRLF . CRLF`, produced in bounded chunks.
//!
//! The message is held once, as fetched; the stuffed form is made one
//! chunk at a time so a 100 MiB message never has a second 100 MiB copy.
//! The terminator travels in the same chunk as the message's last bytes:
//! sent as a separate tiny write it would wait for the relay's delayed ACK
//! on a link with Nagle's algorithm, about 40 ms per message.

/// Size of the chunks handed to the socket.
pub const CHUNK: usize = 64 * 1024;

/// Yields the stuffed, terminated DATA of one message in chunks of about
/// [`CHUNK`] bytes.
#[derive(Debug)]
pub struct DataChunks<'a> {
    message: &'a [u8],
    /// Offset of the next unsent byte of `message`.
    pos: usize,
    /// Whether `message[pos]` starts a line.
    line_start: bool,
    done: bool,
    buf: Vec<u8>,
}

impl<'a> DataChunks<'a> {
    pub fn new(message: &'a [u8]) -> Self {
        DataChunks {
            message,
            pos: 0,
            line_start: true,
            done: false,
            buf: Vec::with_capacity(CHUNK + 8),
        }
    }

    /// The next chunk, `None` once the terminator was given out.
    pub fn next_chunk(&mut self) -> Option<&[u8]> {
        if self.done {
            return None;
        }
        self.buf.clear();
        while self.buf.len() < CHUNK && self.pos < self.message.len() {
            let rest = &self.message[self.pos..];
            if self.line_start && rest[0] == b'.' {
                self.buf.push(b'.');
            }
            // Copy up to and including the next line end in one go.
            let room = CHUNK.saturating_sub(self.buf.len()).max(1);
            let take = match rest[..rest.len().min(room)]
                .iter()
                .position(|&b| b == b'\n')
            {
                Some(newline) => {
                    self.line_start = true;
                    newline + 1
                }
                None => {
                    self.line_start = false;
                    rest.len().min(room)
                }
            };
            self.buf.extend_from_slice(&rest[..take]);
            self.pos += take;
        }
        if self.pos == self.message.len() {
            if !self.message.ends_with(b"\n") && !self.message.is_empty() {
                self.buf.extend_from_slice(b"\r\n");
            }
            self.buf.extend_from_slice(b".\r\n");
            self.done = true;
        }
        Some(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuffed(message: &[u8]) -> Vec<u8> {
        let mut chunks = DataChunks::new(message);
        let mut out = Vec::new();
        while let Some(chunk) = chunks.next_chunk() {
            assert!(chunk.len() <= CHUNK + 8);
            out.extend_from_slice(chunk);
        }
        out
    }

    /// The receiving side of RFC 5321 §4.5.2, for checking.
    fn unstuffed(wire: &[u8]) -> Vec<u8> {
        let body = wire.strip_suffix(b".\r\n").expect("terminator");
        let mut out = Vec::new();
        for line in body.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        out
    }

    #[test]
    fn leading_dots_are_doubled_and_the_end_is_marked() {
        assert_eq!(
            stuffed(b"Subject: x\r\n\r\n.\r\n..a\r\nb.c\r\n"),
            b"Subject: x\r\n\r\n..\r\n...a\r\nb.c\r\n.\r\n"
        );
        assert_eq!(stuffed(b""), b".\r\n");
        assert_eq!(stuffed(b"no final line end"), b"no final line end\r\n.\r\n");
    }

    #[test]
    fn large_messages_round_trip_in_bounded_chunks() {
        let mut message = Vec::new();
        for i in 0..40_000 {
            message.extend_from_slice(if i % 3 == 0 {
                b".dot line\r\n"
            } else {
                b"plain text line\r\n"
            });
        }
        message.extend_from_slice(&vec![b'x'; 3 * CHUNK]);
        message.extend_from_slice(b"\r\n.\r\n");
        assert_eq!(unstuffed(&stuffed(&message)), message);
    }

    #[test]
    fn a_dot_at_a_chunk_boundary_is_still_stuffed() {
        for shift in 0..4 {
            let mut message = vec![b'a'; CHUNK - 2 + shift];
            message.extend_from_slice(b"\r\n.x\r\n");
            let wire = stuffed(&message);
            assert_eq!(unstuffed(&wire), message, "shift {shift}");
            assert!(wire.windows(6).any(|w| w == b"\r\n..x\r"));
        }
    }
}
