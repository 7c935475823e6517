//! Typed POP3 replies and the listings that follow them.

use std::fmt;

use super::codec::Printable;

/// The status word of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `+OK`
    Ok,
    /// `-ERR`
    Err,
    /// `+` followed by a space or nothing: a SASL continuation (RFC 5034).
    Continue,
}

/// A status line: status, optional RFC 2449 response code, human text.
///
/// The text is for people only; decisions use [`Reply::status`] and
/// [`Reply::code`]. Control characters and non-UTF-8 bytes from the server
/// are replaced so the text can be logged and shown safely.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: Status,
    /// The response code without brackets, e.g. `SYS/TEMP` or `AUTH`.
    pub code: Option<String>,
    pub text: String,
}

impl Reply {
    /// Parse one status line (without its line terminator).
    pub(super) fn parse(line: &[u8]) -> Option<Reply> {
        let (status, rest) = split_status(line)?;
        let rest = strip_one_space(rest);
        if status == Status::Continue {
            return Some(Reply {
                status,
                code: None,
                text: clean_text(rest),
            });
        }
        let (code, text) = split_code(rest);
        Some(Reply {
            status,
            code,
            text: clean_text(text),
        })
    }

    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// True when the response code is `family` or a sub-code of it
    /// (`SYS` matches `SYS/TEMP`), compared case-insensitively.
    pub fn has_code(&self, family: &str) -> bool {
        self.code.as_deref().is_some_and(|code| {
            let head = code.split('/').next().unwrap_or(code);
            head.eq_ignore_ascii_case(family) || code.eq_ignore_ascii_case(family)
        })
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self.status {
            Status::Ok => "+OK",
            Status::Err => "-ERR",
            Status::Continue => "+",
        };
        f.write_str(status)?;
        if let Some(code) = &self.code {
            write!(f, " [{code}]")?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply({self})")
    }
}

fn split_status(line: &[u8]) -> Option<(Status, &[u8])> {
    let word_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let (word, rest) = line.split_at(word_end);
    let status = if word.eq_ignore_ascii_case(b"+OK") {
        Status::Ok
    } else if word.eq_ignore_ascii_case(b"-ERR") {
        Status::Err
    } else if word == b"+" {
        Status::Continue
    } else {
        return None;
    };
    Some((status, rest))
}

fn strip_one_space(rest: &[u8]) -> &[u8] {
    rest.strip_prefix(b" ").unwrap_or(rest)
}

/// An RFC 2449 response code is a bracketed token straight after the status
/// word. A `[` without a closing `]` is ordinary text.
fn split_code(rest: &[u8]) -> (Option<String>, &[u8]) {
    let Some(inner) = rest.strip_prefix(b"[") else {
        return (None, rest);
    };
    let Some(close) = inner.iter().position(|&b| b == b']') else {
        return (None, rest);
    };
    let code = &inner[..close];
    if code.is_empty() || !code.iter().all(|b| b.is_ascii_graphic()) {
        return (None, rest);
    }
    let text = strip_one_space(&inner[close + 1..]);
    (Some(String::from_utf8_lossy(code).into_owned()), text)
}

/// Server text made safe to log or show: non-UTF-8 bytes and control
/// characters (terminal escapes, CR, NUL) replaced. SMTP reply text gets
/// the same treatment.
pub(crate) fn clean_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// What a server said it can do, from CAPA (RFC 2449).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Each capability line as upper-cased keyword and its arguments.
    entries: Vec<(String, Vec<String>)>,
}

impl Capabilities {
    /// Build from the lines of a CAPA listing. Lines that are not printable
    /// ASCII are ignored rather than trusted.
    pub fn from_lines(lines: &[Vec<u8>]) -> Self {
        let entries = lines
            .iter()
            .filter_map(|line| std::str::from_utf8(line).ok())
            .filter_map(|line| {
                let mut words = line.split_ascii_whitespace();
                let keyword = words.next()?.to_ascii_uppercase();
                Some((keyword, words.map(str::to_owned).collect()))
            })
            .collect();
        Capabilities { entries }
    }

    pub fn has(&self, keyword: &str) -> bool {
        self.args(keyword).is_some()
    }

    /// Arguments of a capability, if the server listed it.
    pub fn args(&self, keyword: &str) -> Option<&[String]> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(keyword))
            .map(|(_, args)| args.as_slice())
    }

    /// SASL mechanisms offered (the `SASL` capability, RFC 5034).
    pub fn sasl_supports(&self, mechanism: &str) -> bool {
        self.args("SASL")
            .is_some_and(|mechs| mechs.iter().any(|m| m.eq_ignore_ascii_case(mechanism)))
    }

    /// Every capability line, for `popferry check --connect`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.entries.iter().map(|(k, a)| (k.as_str(), a.as_slice()))
    }
}

/// A listing line that does not have the shape RFC 1939 gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {listing} line from server: {line}")]
pub struct ListingError {
    pub listing: &'static str,
    pub line: Printable,
}

/// RFC 1939's unique-id: 1-70 characters in 0x21-0x7E. Anything else
/// could not be stored or compared reliably, and never came from a UIDL.
pub fn is_unique_id(uid: &str) -> bool {
    (1..=70).contains(&uid.len()) && uid.bytes().all(|b| b.is_ascii_graphic())
}

/// Parse `n uid` from a UIDL listing; a unique-id that is not one
/// ([`is_unique_id`]) is refused.
pub fn parse_uidl_line(line: &[u8]) -> Result<(u32, String), ListingError> {
    let bad = || ListingError {
        listing: "UIDL",
        line: Printable::new(line),
    };
    let text = std::str::from_utf8(line).map_err(|_| bad())?;
    let (number, uid) = text.split_once(' ').ok_or_else(bad)?;
    let number = number.parse().map_err(|_| bad())?;
    if !is_unique_id(uid) {
        return Err(bad());
    }
    Ok((number, uid.to_owned()))
}

/// Parse `n size` from a LIST listing.
pub fn parse_list_line(line: &[u8]) -> Result<(u32, u64), ListingError> {
    parse_two_numbers(line).ok_or_else(|| ListingError {
        listing: "LIST",
        line: Printable::new(line),
    })
}

/// Parse the `count size` text of a STAT reply.
pub fn parse_stat(text: &str) -> Option<(u32, u64)> {
    parse_two_numbers(text.as_bytes())
}

/// Two decimal numbers separated by one space; a server may append more
/// text after them (RFC 1939 allows it for STAT and LIST), which is ignored.
fn parse_two_numbers<A, B>(line: &[u8]) -> Option<(A, B)>
where
    A: std::str::FromStr,
    B: std::str::FromStr,
{
    let text = std::str::from_utf8(line).ok()?;
    let mut words = text.split(' ');
    let a = words.next()?.parse().ok()?;
    let b = words.next()?.parse().ok()?;
    Some((a, b))
}

#[cfg(test)]
#[path = "reply_tests.rs"]
mod tests;
