//! The header block of a message as a sequence of unfolded fields (RFC
//! 5322 §2.2), for the few headers popferry reads: `Return-Path` for the
//! envelope sender, the multidrop recipient headers, its own trace header.
//! Sans-IO; the body is never read, however much a line of it looks like a
//! header.

/// One header field, unfolded.
pub struct Field<'a> {
    name: &'a [u8],
    value: Vec<u8>,
}

impl Field<'_> {
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }

    /// The value as the message has it, unfolded.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The value as text. Bytes that are not UTF-8 become U+FFFD, which
    /// multidrop's address parser then refuses, so such an address is
    /// dropped instead of being relayed to a different one.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.value).into_owned()
    }
}

/// The header fields of `message` in order, up to the blank line that ends
/// the header block; CRLF and bare LF line ends alike.
pub fn fields(message: &[u8]) -> Fields<'_> {
    Fields { rest: message }
}

pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    /// The next line without its line end; `None` at the blank line or the
    /// end of the message, after which nothing more is read.
    fn line(&mut self) -> Option<&'a [u8]> {
        let (line, rest) = match self.rest.iter().position(|&b| b == b'\n') {
            Some(end) => (&self.rest[..end], &self.rest[end + 1..]),
            None => (self.rest, &self.rest[self.rest.len()..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.rest = &[];
            return None;
        }
        self.rest = rest;
        Some(line)
    }

    fn continues(&self) -> bool {
        matches!(self.rest.first(), Some(b' ' | b'\t'))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        loop {
            let line = self.line()?;
            // A line without a colon is not a field; it is skipped with its
            // continuation lines, which then start with whitespace.
            if matches!(line[0], b' ' | b'\t') {
                continue;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = line[..colon].trim_ascii_end();
            let mut value = line[colon + 1..].to_vec();
            while self.continues() {
                match self.line() {
                    Some(more) => value.extend_from_slice(more),
                    None => break,
                }
            }
            return Some(Field { name, value });
        }
    }
}
