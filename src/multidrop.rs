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

use crate::headers::fields;
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
