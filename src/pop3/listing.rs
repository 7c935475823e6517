//! The multi-line listings: CAPA, UIDL and LIST.
//!
//! Each is read a line at a time and parsed as it arrives, so memory grows
//! with the messages listed, not with the bytes a server cares to send,
//! and a listing that never ends stops at a line cap with an error that
//! says so. A UIDL listing that names one message number twice is
//! refused: see [`Client::read_uidl`].

use super::client::Client;
use super::codec::ListingLine;
use super::command::Command;
use super::error::Pop3Error;
use super::reply::{parse_list_line, parse_uidl_line, Capabilities, ListingError};

/// Most CAPA lines read. Servers list a dozen or two; a few hundred lines
/// of up to 8 KiB each bounds what a server that never ends CAPA costs.
pub const MAX_CAPA_LINES: usize = 256;

/// Most messages popferry handles in one mailbox: the line cap of UIDL and
/// LIST. A poll holds about 290 bytes per listed message (unique-ids,
/// sizes, the ledger check and the plan; 288 MiB for a million, measured
/// by `tests/hostile_server_memory.rs`), so this bounds one account's poll
/// near a quarter of a GiB, yet takes on any mailbox a POP3 server can
/// list in reasonable time. A larger mailbox, or a listing that never
/// ends, fails the poll with [`Pop3Error::ListingTooLong`] once the cap
/// is passed, before anything is fetched.
pub const MAX_MESSAGES: usize = 1_000_000;

impl Client {
    /// CAPA (RFC 2449). `None` when the server does not know the command,
    /// as plain RFC 1939 servers answer.
    pub async fn capa(&mut self) -> Result<Option<super::Capabilities>, Pop3Error> {
        self.send(Command::Capa)?;
        self.flush().await?;
        let reply = self.read_reply("CAPA").await?;
        if !reply.is_ok() {
            return Ok(None);
        }
        let mut lines = Vec::new();
        self.read_listing("CAPA", MAX_CAPA_LINES, |line| {
            lines.push(line);
            Ok(())
        })
        .await?;
        Ok(Some(Capabilities::from_lines(&lines)))
    }

    /// LIST: every message's number and size.
    pub async fn list(&mut self) -> Result<Vec<(u32, u64)>, Pop3Error> {
        self.send(Command::List)?;
        self.flush().await?;
        self.read_list().await
    }

    /// The reply to a LIST sent earlier.
    pub async fn read_list(&mut self) -> Result<Vec<(u32, u64)>, Pop3Error> {
        self.read_ok("LIST").await?;
        let mut sizes = Vec::new();
        self.read_listing("LIST", MAX_MESSAGES, |line| {
            sizes.push(parse_list_line(&line)?);
            Ok(())
        })
        .await?;
        Ok(sizes)
    }

    /// UIDL: every message's number and unique-id. `None` when the server
    /// refuses the command (UIDL is optional in RFC 1939).
    pub async fn uidl(&mut self) -> Result<Option<Vec<(u32, String)>>, Pop3Error> {
        self.send(Command::Uidl)?;
        self.flush().await?;
        self.read_uidl().await
    }

    /// The reply to a UIDL sent earlier.
    ///
    /// One message number listed twice is an error for the whole listing:
    /// the number is how popferry names a message whose unique-id is shared
    /// (see `poll::copies`), so a listing that gives one number two ids
    /// leaves no way to name either, and a server that sends it cannot be
    /// trusted for the rest. Nothing is moved until the server is repaired,
    /// and every poll says why. One unique-id listed for several numbers is
    /// allowed (RFC 1939 lets servers that derive ids from the content do
    /// it for identical copies); the poll deals with those.
    pub async fn read_uidl(&mut self) -> Result<Option<Vec<(u32, String)>>, Pop3Error> {
        if !self.read_reply("UIDL").await?.is_ok() {
            return Ok(None);
        }
        let mut uids = Vec::new();
        self.read_listing("UIDL", MAX_MESSAGES, |line| {
            uids.push(parse_uidl_line(&line)?);
            Ok(())
        })
        .await?;
        if let Some(number) = repeated_number(&uids) {
            return Err(Pop3Error::RepeatedNumber {
                peer: self.peer().to_owned(),
                number,
            });
        }
        Ok(Some(uids))
    }

    /// Reads the lines of a multi-line listing up to its terminator and
    /// hands each to `line`; more than `max_lines` lines is an error.
    async fn read_listing(
        &mut self,
        listing: &'static str,
        max_lines: usize,
        mut line: impl FnMut(Vec<u8>) -> Result<(), ListingError>,
    ) -> Result<(), Pop3Error> {
        let during = match listing {
            "CAPA" => "CAPA in full",
            "UIDL" => "UIDL in full",
            _ => "LIST in full",
        };
        let mut pace = self.pace();
        let mut count = 0;
        loop {
            match self.decoder.listing_line() {
                Ok(Some(ListingLine::Line(_))) if count == max_lines => {
                    return Err(Pop3Error::ListingTooLong {
                        peer: self.peer().to_owned(),
                        listing,
                        limit: max_lines,
                    })
                }
                Ok(Some(ListingLine::Line(bytes))) => {
                    count += 1;
                    line(bytes).map_err(|source| self.listing_error(source))?;
                }
                Ok(Some(ListingLine::End)) => return Ok(()),
                Ok(None) => self.fill(during, &mut pace).await?,
                Err(source) => return Err(self.decode_error(source)),
            }
        }
    }
}

/// The first message number listed twice, by sorting the numbers rather
/// than building a set: a million-entry listing costs 4 MB here.
pub fn repeated_number(uids: &[(u32, String)]) -> Option<u32> {
    let mut numbers: Vec<u32> = uids.iter().map(|(n, _)| *n).collect();
    numbers.sort_unstable();
    numbers.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(entries: &[(u32, &str)]) -> Vec<(u32, String)> {
        entries
            .iter()
            .map(|&(n, uid)| (n, uid.to_owned()))
            .collect()
    }

    #[test]
    fn repeated_number_finds_a_number_listed_twice_not_a_shared_uid() {
        assert_eq!(repeated_number(&listing(&[(1, "a"), (2, "b")])), None);
        assert_eq!(repeated_number(&[]), None);
        assert_eq!(
            repeated_number(&listing(&[(1, "x"), (2, "a"), (3, "x"), (4, "x")])),
            None
        );
        assert_eq!(
            repeated_number(&listing(&[(2, "a"), (1, "b"), (2, "c")])),
            Some(2)
        );
        assert_eq!(
            repeated_number(&listing(&[(3, "a"), (1, "a"), (3, "a")])),
            Some(3)
        );
    }
}
