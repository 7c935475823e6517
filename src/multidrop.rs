//! Multidrop: one POP3 mailbox that holds the mail of a whole domain,
//! handed out to each message's own recipients.
//!
//! The recipients cannot come from `To:` or `Cc:`: the sender writes those,
//! and they never name Bcc recipients. They come from the one header the
//! provider's MTA writes from the envelope when it files the message into
//! the mailbox (`X-Original-To`, `Delivered-To`, `Envelope-To` or
//! `X-Envelope-To`, depending on the MTA). Only its topmost occurrence is
//! read: the MTA adds its header above everything the message already
//! carried, so any lower occurrence may have been written by the sender.
//! Even the topmost one only ever yields addresses in `local_domains`, so
//! a forged header can redirect mail within the domain at worst, never
//! out of it.
//!
//! Everything here is sans-IO and reads the header block only: a line
//! after the blank line that ends it is body, however much it looks like a
//! header.

use std::collections::HashSet;
use std::fmt;

use crate::smtp::is_address;

/// The envelope header that names a message's recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecipientHeader {
    /// Postfix's local(8) and virtual(8): the recipient before aliasing.
    XOriginalTo,
    /// Postfix, qmail and others: the recipient the copy was delivered to.
    DeliveredTo,
    /// Exim's `envelope_to_add`.
    EnvelopeTo,
    /// Sendmail setups and some providers' filters.
    XEnvelopeTo,
}

impl RecipientHeader {
    /// Every header accepted in `recipients_from`, in the order the
    /// configuration error lists them.
    pub const ALL: [RecipientHeader; 4] = [
        RecipientHeader::XOriginalTo,
        RecipientHeader::DeliveredTo,
        RecipientHeader::EnvelopeTo,
        RecipientHeader::XEnvelopeTo,
    ];

    /// The header's name as written in mail and in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            RecipientHeader::XOriginalTo => "X-Original-To",
            RecipientHeader::DeliveredTo => "Delivered-To",
            RecipientHeader::EnvelopeTo => "Envelope-To",
            RecipientHeader::XEnvelopeTo => "X-Envelope-To",
        }
    }

    /// The header called `name`, in any case, as header names are
    /// case-insensitive in mail too.
    pub fn from_name(name: &str) -> Option<RecipientHeader> {
        Self::ALL
            .into_iter()
            .find(|header| header.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for RecipientHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a multidrop account finds each message's recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multidrop {
    pub header: RecipientHeader,
    /// Never empty; lowercase when it comes from the configuration.
    pub local_domains: Vec<String>,
}

impl Multidrop {
    /// The local addresses named in the topmost `header` of `message`, in
    /// order and each once (the domain compared case-insensitively, the
    /// local part exactly, as RFC 5321 leaves its case to the receiving
    /// host). Empty when the header is missing or names no valid local
    /// address: the caller then delivers to `deliver_to`.
    pub fn recipients(&self, message: &[u8]) -> Vec<String> {
        let Some(field) = fields(message).find(|field| field.is(self.header.name())) else {
            return Vec::new();
        };
        let mut seen = HashSet::new();
        addresses(&field.text())
            .into_iter()
            .filter(|address| {
                let Some((local, domain)) = address.rsplit_once('@') else {
                    return false;
                };
                let domain = domain.to_lowercase();
                self.is_local(&domain) && seen.insert((local.to_owned(), domain))
            })
            .collect()
    }

    fn is_local(&self, domain: &str) -> bool {
        self.local_domains
            .iter()
            .any(|local| local.to_lowercase() == domain)
    }
}

/// Whether the header block of `message` carries the `Received:` header
/// that [`crate::deliver::trace_header`] adds for `account` on POP3 server
/// `host`: the message already went out through this account once and
/// came back into its mailbox, so relaying it again would start a loop.
/// Both must match: another popferry elsewhere in the chain may well have
/// an account of the same name.
pub fn carries_own_trace(message: &[u8], host: &str, account: &str) -> bool {
    fields(message)
        .filter(|field| field.is("Received"))
        .any(|field| {
            let text = field.text();
            let words: Vec<&str> = text.split_ascii_whitespace().collect();
            let by_popferry = words.windows(5).any(|w| {
                w[0] == "from"
                    && w[1].eq_ignore_ascii_case(host)
                    && w[2] == "by"
                    && w[3] == "popferry"
                    && w[4].starts_with('(')
            });
            let for_account = words
                .windows(4)
                .any(|w| w[..2] == ["for", "account"] && w[2] == account && w[3] == "id");
            by_popferry && for_account
        })
}

/// One header field, unfolded.
struct Field<'a> {
    name: &'a [u8],
    value: Vec<u8>,
}

impl Field<'_> {
    fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }

    /// The value as text. Bytes that are not UTF-8 become U+FFFD, which
    /// [`addresses`] then refuses, so such an address is dropped instead of
    /// being relayed to a different one.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.value).into_owned()
    }
}

/// The header fields of `message` in order, up to the blank line that ends
/// the header block; CRLF and bare LF line ends alike.
fn fields(message: &[u8]) -> Fields<'_> {
    Fields { rest: message }
}

struct Fields<'a> {
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

/// The valid addresses of an RFC 5322 address list, in order: display
/// names, comments and group names dropped, `<...>` preferred to the text
/// around it.
fn addresses(value: &str) -> Vec<String> {
    let mut list = AddressList::default();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if list.comment_depth > 0 {
            match c {
                '\\' => {
                    chars.next();
                }
                '(' => list.comment_depth += 1,
                ')' => list.comment_depth -= 1,
                _ => {}
            }
        } else if list.quoted {
            list.push(c);
            match c {
                '\\' => {
                    if let Some(escaped) = chars.next() {
                        list.push(escaped);
                    }
                }
                '"' => list.quoted = false,
                _ => {}
            }
        } else {
            list.unquoted(c);
        }
    }
    list.finish_item();
    list.found
        .into_iter()
        .filter(|address| is_address(address) && !address.contains(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// The state of [`addresses`] between two characters.
#[derive(Default)]
struct AddressList {
    found: Vec<String>,
    /// The current item outside angle brackets.
    plain: String,
    /// The current item's `<...>`, once one has opened.
    angle: Option<String>,
    in_angle: bool,
    quoted: bool,
    comment_depth: usize,
}

impl AddressList {
    fn push(&mut self, c: char) {
        match (&mut self.angle, self.in_angle) {
            (Some(angle), true) => angle.push(c),
            _ => self.plain.push(c),
        }
    }

    fn unquoted(&mut self, c: char) {
        match c {
            '(' => self.comment_depth = 1,
            '"' => {
                self.quoted = true;
                self.push(c);
            }
            '<' => {
                self.in_angle = true;
                self.angle = Some(String::new());
            }
            '>' => self.in_angle = false,
            ',' | ';' if !self.in_angle => self.finish_item(),
            // A group's name (`team: a@x, b@y;`) ends at the colon.
            ':' if !self.in_angle => self.plain.clear(),
            _ => self.push(c),
        }
    }

    fn finish_item(&mut self) {
        let plain = std::mem::take(&mut self.plain);
        let item = self.angle.take().unwrap_or(plain);
        self.in_angle = false;
        self.quoted = false;
        let item = item.trim();
        // An obsolete source route (`<@relay:user@host>`) is not part of
        // the address.
        let address = match item.strip_prefix('@') {
            Some(route) => route.rsplit_once(':').map_or("", |(_, address)| address),
            None => item,
        };
        if !address.is_empty() {
            self.found.push(address.to_owned());
        }
    }
}

#[cfg(test)]
#[path = "multidrop_tests.rs"]
mod tests;
