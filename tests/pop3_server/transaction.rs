//! The RFC 1939 TRANSACTION commands, with UID-PARAM arguments when the
//! server offers them, and the mid-RETR fault.

use popferry::pop3::codec::dot_stuff;

use super::mailbox::{Mark, Target, BAD_SYNTAX};
use super::session::{Io, Next, Session};
use super::{lock, Message};

impl Session {
    /// The message a command's first argument names; the error is the
    /// reply to send.
    pub(super) fn resolve(&self, arg: Option<&str>) -> Result<Target, &'static str> {
        let Some(mailbox) = self.mailbox.as_ref() else {
            return Err("-ERR Authenticate first.");
        };
        let shared = lock(&self.shared);
        mailbox.resolve(arg, shared.options.extensions.uid_param, &shared.maildrop)
    }

    pub(super) async fn stat(&mut self) -> Io {
        let (count, total) = self
            .mailbox
            .iter()
            .flat_map(|m| m.live())
            .fold((0, 0), |(count, total), (_, stored)| {
                (count + 1, total + stored.message.bytes.len())
            });
        self.reply(&format!("+OK {count} {total}")).await
    }

    pub(super) async fn list(&mut self, args: &[&str]) -> Io {
        self.listing(args, "+OK Message sizes follow...", |m| {
            m.bytes.len().to_string()
        })
        .await
    }

    pub(super) async fn uidl(&mut self, args: &[&str]) -> Io {
        self.listing(args, "+OK Unique-IDs follow...", |m| m.uid.clone())
            .await
    }

    /// LIST and UIDL, for one message or all of them.
    async fn listing(&mut self, args: &[&str], head: &str, field: fn(&Message) -> String) -> Io {
        if let Some(&arg) = args.first() {
            return match self.resolve(Some(arg)) {
                Ok(target) => {
                    let value = field(&target.stored.message);
                    self.reply(&format!("+OK {} {value}", target.number)).await
                }
                Err(error) => self.reply(error).await,
            };
        }
        let mut out = format!("{head}\r\n").into_bytes();
        for (n, stored) in self.mailbox.iter().flat_map(|m| m.live()) {
            out.extend_from_slice(format!("{n} {}\r\n", field(&stored.message)).as_bytes());
        }
        out.extend_from_slice(b".\r\n");
        self.send(&out).await?;
        Ok(Next::Continue)
    }

    pub(super) async fn retr(&mut self, args: &[&str]) -> Io {
        match self.resolve(args.first().copied()) {
            Ok(target) => {
                self.body("+OK Message text follows...", &target.stored.message.bytes)
                    .await
            }
            Err(error) => self.reply(error).await,
        }
    }

    /// The line count comes after the last space, as in the reference
    /// server; a negative count sends the whole message, as there.
    pub(super) async fn top(&mut self, args: &[&str]) -> Io {
        let count = match args {
            [_, .., count] => count.parse::<i64>().ok(),
            _ => None,
        };
        let Some(count) = count else {
            return self.reply(BAD_SYNTAX).await;
        };
        let target = match self.resolve(args.first().copied()) {
            Ok(target) => target,
            Err(error) => return self.reply(error).await,
        };
        let bytes = &target.stored.message.bytes;
        let body = usize::try_from(count).map_or_else(|_| bytes.clone(), |lines| top(bytes, lines));
        self.body(&format!("+OK Header and first {count} lines..."), &body)
            .await
    }

    pub(super) async fn dele(&mut self, args: &[&str]) -> Io {
        let target = match self.resolve(args.first().copied()) {
            Ok(target) => target,
            Err(error) => return self.reply(error).await,
        };
        if let Some(mailbox) = self.mailbox.as_mut() {
            mailbox.mark(&target, Mark::Flagged);
        }
        let uid = &target.stored.message.uid;
        self.reply(&format!(
            "+OK Message UID:{uid} flagged for delete on QUIT or SLEE."
        ))
        .await
    }

    pub(super) async fn rset(&mut self) -> Io {
        if let Some(mailbox) = self.mailbox.as_mut() {
            mailbox.rset();
        }
        self.reply("+OK Un-flagged all messages flagged for delete.")
            .await
    }

    /// A status line and a dot-stuffed multi-line body.
    async fn body(&mut self, head: &str, bytes: &[u8]) -> Io {
        let mut out = format!("{head}\r\n").into_bytes();
        dot_stuff(bytes, &mut out);
        self.send(&out).await?;
        Ok(Next::Continue)
    }

    /// `Fault::DropMidRetr`: the link dies halfway through the body.
    pub(super) async fn retr_then_drop(&mut self, args: &[&str]) -> Io {
        let bytes = match self.resolve(args.first().copied()) {
            Ok(target) => target.stored.message.bytes,
            Err(error) => return self.reply(error).await,
        };
        let mut stuffed = Vec::new();
        dot_stuff(&bytes, &mut stuffed);
        let mut out = b"+OK Message text follows...\r\n".to_vec();
        out.extend_from_slice(&stuffed[..stuffed.len() / 2]);
        self.send(&out).await?;
        self.hang_up().await
    }
}

/// The header, the blank line and the first `lines` body lines (TOP).
fn top(bytes: &[u8], lines: usize) -> Vec<u8> {
    let header_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(bytes.len(), |p| p + 4);
    let mut out = bytes[..header_end].to_vec();
    for line in bytes[header_end..]
        .split_inclusive(|&b| b == b'\n')
        .take(lines)
    {
        out.extend_from_slice(line);
    }
    out
}
