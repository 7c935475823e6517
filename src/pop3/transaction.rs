//! The TRANSACTION-state commands (RFC 1939 §5, and the reference
//! server's DELI and WAKE), one at a time: each sends its command and
//! waits for the reply. The poll pipelines RETR and DELE through
//! [`Client::send`] instead; the session uses WAKE and NOOP from here, and
//! the protocol tests the rest.

use super::client::Client;
use super::command::{Command, Msg};
use super::error::Pop3Error;
use super::reply::{parse_stat, Reply};

impl Client {
    /// STAT: message count and total size.
    pub async fn stat(&mut self) -> Result<(u32, u64), Pop3Error> {
        let reply = self.expect_ok(Command::Stat).await?;
        parse_stat(&reply.text).ok_or_else(|| Pop3Error::Unexpected {
            peer: self.peer().to_owned(),
            command: "STAT",
            reply,
        })
    }

    /// RETR: append the message, unstuffed, to `out`.
    pub async fn retr(
        &mut self,
        msg: impl Into<Msg<'_>>,
        out: &mut Vec<u8>,
    ) -> Result<(), Pop3Error> {
        self.expect_ok(Command::Retr(msg.into())).await?;
        self.read_body("RETR", out).await
    }

    /// TOP: append the header and the first `lines` body lines.
    pub async fn top(
        &mut self,
        msg: impl Into<Msg<'_>>,
        lines: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), Pop3Error> {
        self.expect_ok(Command::Top(msg.into(), lines)).await?;
        self.read_body("TOP", out).await
    }

    /// DELE: mark for deletion; the server deletes at QUIT (or SLEE).
    pub async fn dele(&mut self, msg: impl Into<Msg<'_>>) -> Result<(), Pop3Error> {
        self.expect_ok(Command::Dele(msg.into())).await.map(drop)
    }

    /// DELI: delete now; the `+OK` means the message is gone for good.
    pub async fn deli(&mut self, msg: impl Into<Msg<'_>>) -> Result<(), Pop3Error> {
        self.expect_ok(Command::Deli(msg.into())).await.map(drop)
    }

    pub async fn rset(&mut self) -> Result<(), Pop3Error> {
        self.expect_ok(Command::Rset).await.map(drop)
    }

    pub async fn noop(&mut self) -> Result<(), Pop3Error> {
        self.expect_ok(Command::Noop).await.map(drop)
    }

    /// WAKE: back from sleep with a fresh listing. The reply's code says
    /// whether anything arrived meanwhile (`ACTIVITY/NEW` or `/NONE`).
    pub async fn wake(&mut self) -> Result<Reply, Pop3Error> {
        self.expect_ok(Command::Wake).await
    }

    /// QAUT: commit the deletions like QUIT and return to AUTHORIZATION,
    /// the connection (and its TLS) kept for the next login.
    pub async fn qaut(&mut self) -> Result<(), Pop3Error> {
        self.expect_ok(Command::Qaut).await?;
        self.release_buffers();
        Ok(())
    }

    /// CORE (or its older name REFR): commit the deletions and reload the
    /// listing, staying logged in. Like WAKE's, the reply's code says
    /// whether anything arrived.
    pub async fn refresh(&mut self, older_name: bool) -> Result<Reply, Pop3Error> {
        let command = if older_name {
            Command::Refr
        } else {
            Command::Core
        };
        let reply = self.expect_ok(command).await?;
        self.release_buffers();
        Ok(reply)
    }
}
