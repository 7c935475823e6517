//! A transaction in one flight (RFC 3030 CHUNKING with RFC 2920
//! PIPELINING): MAIL, every RCPT, `BDAT <n> LAST` and the message go out
//! before any reply is read, so a message costs one round trip where DATA
//! costs two (MAIL to DATA, then the data).
//!
//! BDAT counts octets, so the message goes as it is: no dot-stuffing, no
//! end-of-data line. It is written in slices of the one copy in memory;
//! only its first [`CHUNK`] bytes are copied, into the write that carries
//! the commands, so a small message and its envelope leave as one segment.
//!
//! The whole message is one chunk, however large. Postfix's smtpd, Exim
//! and Dovecot's LMTP all read a chunk as a stream into the queue file or
//! the mail being saved, never into a buffer the size the BDAT announces;
//! so more chunks would cost more commands and buy nothing, and SIZE has
//! already let the relay refuse a message it will not take.
//!
//! Once the message is on its way, the relay may have taken it before any
//! reply arrives: a connection that fails while those replies are read has
//! an unknown outcome, never a "stale" one that would send the message
//! again on a fresh connection. Staleness is checked before the flight
//! instead, without a round trip: a relay that dropped an idle connection
//! has already sent its 421 or its FIN (`Connection::dropped_while_idle`).

use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

use super::client::{Connection, MAIL_FROM};
use super::data::CHUNK;
use super::error::SmtpError;
use super::transaction::{accepted, Verdict};

/// What a failure after the flight happened during. Not [`MAIL_FROM`]:
/// the relay may hold the message by then.
pub(super) const BDAT: &str = "BDAT";

impl Connection {
    pub(super) async fn chunked(
        &mut self,
        mail: String,
        recipients: &[String],
        message: &[u8],
    ) -> Result<Vec<Verdict>, SmtpError> {
        self.dropped_while_idle().await?;
        let mut head = mail + "\r\n";
        for r in recipients {
            head += &format!("RCPT TO:<{r}>\r\n");
        }
        head += &format!("BDAT {} LAST\r\n", message.len());
        let (first, rest) = message.split_at(message.len().min(CHUNK));
        let mut head = head.into_bytes();
        head.extend_from_slice(first);
        self.write(MAIL_FROM, &head).await?;
        for slice in rest.chunks(CHUNK) {
            match timeout(self.timeout, self.stream.write_all(slice)).await {
                Ok(Ok(())) => {}
                Ok(Err(source)) => return Err(self.io_error(BDAT, source)),
                Err(_) => return Err(self.timed_out(BDAT)),
            }
        }
        self.flush(BDAT).await?;

        let mail_reply = self.read(BDAT).await?;
        // A 421 to MAIL is still stale: no transaction began, so the relay
        // discards the chunk that followed.
        self.closing(MAIL_FROM, &mail_reply)?;
        let mut rcpt_replies = Vec::with_capacity(recipients.len());
        for _ in recipients {
            let reply = self.read(BDAT).await?;
            self.closing("RCPT TO", &reply)?;
            rcpt_replies.push(reply);
        }
        let mut verdicts = self.envelope_verdicts(&mail_reply, &rcpt_replies, recipients.len());
        let accepted = accepted(&verdicts);
        if accepted.is_empty() {
            // With nobody accepted the relay refuses the BDAT (RFC 3030
            // §4.2) with one reply, over LMTP too (RFC 2033 §4.2), and
            // discards the chunk: nothing to abandon, unlike DATA's 354.
            let reply = self.read(BDAT).await?;
            self.closing(BDAT, &reply)?;
            if reply.is_completion() {
                tracing::debug!(peer = %self.peer, %reply, "relay accepted BDAT with no recipient accepted");
            }
            self.reset().await;
            return Ok(verdicts);
        }
        self.final_replies(BDAT, &accepted, &mut verdicts).await?;
        if !self.broken && accepted.iter().all(|&n| verdicts[n].is_err()) {
            // A refused BDAT may leave the transaction open on some relays.
            self.reset().await;
        }
        Ok(verdicts)
    }
}
