//! One mail transaction on an open connection, with an answer for every
//! recipient.
//!
//! A relay judges recipients one by one: at RCPT, and for LMTP (RFC 2033)
//! once more after the data, one reply per accepted recipient. So the
//! result is a verdict per recipient, never one for the whole message:
//! a relay that takes one of two recipients has delivered the message to
//! that one, and the other must be retried (4xx) or given up (5xx) alone.
//!
//! The data is sent only when at least one recipient was accepted. A relay
//! that answers a pipelined DATA with 354 although it accepted nobody
//! (RFC 2920 §3.1 allows it) would turn the end-of-data dot into an empty
//! message for whoever it did accept; so the connection is dropped instead,
//! which makes the relay discard the open transaction (RFC 5321 §4.1.1.4:
//! the mail data ends only with the dot).

use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

use super::client::{Connection, Protocol, END_OF_DATA, MAIL_FROM};
use super::data::DataChunks;
use super::error::SmtpError;
use super::reply::Reply;

/// The relay's answer for one recipient, in the order they were given:
/// `Ok` when it took responsibility for the message for that recipient.
pub type Verdict = Result<(), SmtpError>;

impl Connection {
    /// One mail transaction. An `Err` means the connection failed or the
    /// relay is closing it (421): what became of the message is not known,
    /// and the connection must not be reused.
    pub async fn send(
        &mut self,
        sender: &str,
        recipients: &[String],
        message: &[u8],
    ) -> Result<Vec<Verdict>, SmtpError> {
        let ascii = |address: &String| address.is_ascii();
        if self.ext.smtputf8 || (sender.is_ascii() && recipients.iter().all(ascii)) {
            return self.transaction(sender, recipients, message).await;
        }
        // RFC 6531 §3.4: without SMTPUTF8 such an address cannot be written
        // in MAIL or RCPT at all. Those recipients are refused here; the
        // others still get the message.
        if !sender.is_ascii() {
            return Ok(recipients
                .iter()
                .map(|_| Err(self.needs_utf8(sender)))
                .collect());
        }
        let plain: Vec<String> = recipients.iter().filter(|r| ascii(r)).cloned().collect();
        let mut sent = if plain.is_empty() {
            Vec::new()
        } else {
            self.transaction(sender, &plain, message).await?
        }
        .into_iter();
        Ok(recipients
            .iter()
            .map(|r| match ascii(r) {
                true => sent.next().expect("one verdict per recipient sent"),
                false => Err(self.needs_utf8(r)),
            })
            .collect())
    }

    fn needs_utf8(&self, address: &str) -> SmtpError {
        SmtpError::NeedsSmtpUtf8 {
            peer: self.peer.clone(),
            address: address.to_owned(),
        }
    }

    async fn transaction(
        &mut self,
        sender: &str,
        recipients: &[String],
        message: &[u8],
    ) -> Result<Vec<Verdict>, SmtpError> {
        let mail = self.mail_command(sender, recipients, message);
        // A message over the relay's SIZE goes the DATA way: its MAIL is
        // refused before any of the message is sent.
        if self.ext.chunking && self.ext.pipelining && !self.ext.too_large(message.len()) {
            return self.chunked(mail, recipients, message).await;
        }
        let mut commands = vec![(MAIL_FROM, mail)];
        commands.extend(
            recipients
                .iter()
                .map(|r| ("RCPT TO", format!("RCPT TO:<{r}>"))),
        );
        commands.push(("DATA", "DATA".to_owned()));
        let replies = if self.ext.pipelining {
            self.pipelined(&commands).await?
        } else {
            self.one_by_one(&commands).await?
        };
        let (mail_reply, rest) = replies.split_first().expect("MAIL's reply is read first");
        let (data_reply, rcpt_replies) = match rest.split_last() {
            Some((data, rcpts)) if rcpts.len() == recipients.len() => (Some(data), rcpts),
            _ => (None, rest),
        };

        let mut verdicts = self.envelope_verdicts(mail_reply, rcpt_replies, recipients.len());
        let accepted = accepted(&verdicts);
        let data_open = data_reply.is_some_and(|r| r.code == 354);
        if accepted.is_empty() {
            if data_open {
                tracing::debug!(peer = %self.peer, "relay opened DATA with no recipient accepted; dropping the connection so it discards the transaction");
                self.broken = true;
            } else {
                self.reset().await;
            }
            return Ok(verdicts);
        }
        if !data_open {
            let reply = data_reply.cloned().unwrap_or_else(|| mail_reply.clone());
            for &n in &accepted {
                verdicts[n] = Err(self.refused("DATA", reply.clone()));
            }
            self.reset().await;
            return Ok(verdicts);
        }

        self.send_data(message).await?;
        self.final_replies(END_OF_DATA, &accepted, &mut verdicts)
            .await?;
        Ok(verdicts)
    }

    /// MAIL FROM with the parameters the relay offered and the message
    /// needs.
    fn mail_command(&self, sender: &str, recipients: &[String], message: &[u8]) -> String {
        let international = !sender.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
        let mut mail = format!("MAIL FROM:<{sender}>");
        if self.ext.size {
            mail += &format!(" SIZE={}", message.len());
        }
        if self.ext.eight_bit && !message.is_ascii() {
            mail += " BODY=8BITMIME";
        }
        if international {
            mail += " SMTPUTF8";
        }
        mail
    }

    /// A verdict per recipient from the replies to MAIL and to each RCPT
    /// read so far; recipients without a reply share MAIL's refusal.
    pub(super) fn envelope_verdicts(
        &self,
        mail_reply: &Reply,
        rcpt_replies: &[Reply],
        recipients: usize,
    ) -> Vec<Verdict> {
        (0..recipients)
            .map(
                |n| match (mail_reply.is_completion(), rcpt_replies.get(n)) {
                    (true, Some(reply)) if reply.is_completion() => Ok(()),
                    (true, Some(reply)) => Err(self.refused("RCPT TO", reply.clone())),
                    _ => Err(self.refused(MAIL_FROM, mail_reply.clone())),
                },
            )
            .collect()
    }

    /// The answers once the message is sent (`during` names what ended
    /// it): one for the whole message over SMTP, one per accepted
    /// recipient over LMTP.
    pub(super) async fn final_replies(
        &mut self,
        during: &'static str,
        accepted: &[usize],
        verdicts: &mut [Verdict],
    ) -> Result<(), SmtpError> {
        match self.protocol {
            Protocol::Smtp => {
                let reply = self.read(during).await?;
                self.closing(during, &reply)?;
                if !reply.is_completion() {
                    for &n in accepted {
                        verdicts[n] = Err(self.refused(during, reply.clone()));
                    }
                }
            }
            // In RCPT order. Those read before a failure stand: those
            // recipients have the message.
            Protocol::Lmtp => {
                for (i, &n) in accepted.iter().enumerate() {
                    let reply = match self.read(during).await {
                        Ok(reply) if reply.code != 421 => reply,
                        failed => {
                            self.broken = true;
                            let why = match &failed {
                                Ok(reply) => format!("it said {reply} and is closing"),
                                Err(e) => {
                                    tracing::debug!(error = %e, "LMTP replies cut short");
                                    "the connection failed first".to_owned()
                                }
                            };
                            for &m in &accepted[i..] {
                                verdicts[m] = Err(SmtpError::Unanswered {
                                    peer: self.peer.clone(),
                                    why: why.clone(),
                                });
                            }
                            break;
                        }
                    };
                    if !reply.is_completion() {
                        verdicts[n] = Err(self.refused(during, reply));
                    }
                }
            }
        }
        Ok(())
    }

    /// MAIL, every RCPT and DATA in one write, then their replies.
    async fn pipelined(
        &mut self,
        commands: &[(&'static str, String)],
    ) -> Result<Vec<Reply>, SmtpError> {
        let batch: String = commands.iter().map(|(_, c)| format!("{c}\r\n")).collect();
        self.write(MAIL_FROM, batch.as_bytes()).await?;
        let mut replies = Vec::with_capacity(commands.len());
        for (during, _) in commands {
            let reply = self.read(during).await?;
            self.closing(during, &reply)?;
            replies.push(reply);
        }
        Ok(replies)
    }

    /// A command at a time, stopping where going on would be pointless:
    /// after a refused MAIL, and before DATA when no RCPT was accepted.
    async fn one_by_one(
        &mut self,
        commands: &[(&'static str, String)],
    ) -> Result<Vec<Reply>, SmtpError> {
        let mut replies: Vec<Reply> = Vec::with_capacity(commands.len());
        for (during, command) in commands {
            let is_data = *during == "DATA";
            let any_accepted = replies.iter().skip(1).any(Reply::is_completion);
            if is_data && !any_accepted {
                break;
            }
            self.write(during, format!("{command}\r\n").as_bytes())
                .await?;
            let reply = self.read(during).await?;
            self.closing(during, &reply)?;
            let mail_refused = *during == MAIL_FROM && !reply.is_completion();
            replies.push(reply);
            if mail_refused {
                break;
            }
        }
        Ok(replies)
    }

    /// The message, dot-stuffed, with the end-of-data dot in its last write.
    async fn send_data(&mut self, message: &[u8]) -> Result<(), SmtpError> {
        let mut chunks = DataChunks::new(message);
        while let Some(chunk) = chunks.next_chunk() {
            match timeout(self.timeout, self.stream.write_all(chunk)).await {
                Ok(Ok(())) => {}
                Ok(Err(source)) => return Err(self.io_error("DATA", source)),
                Err(_) => return Err(self.timed_out("DATA")),
            }
        }
        self.flush("DATA").await
    }

    /// After a transaction that did not reach the data (or whose data
    /// was refused), RSET so the connection can carry the next one; if
    /// that fails, the connection is dropped rather than trusted.
    pub(super) async fn reset(&mut self) {
        if let Err(error) = self.command("RSET", "RSET", 250).await {
            tracing::debug!(%error, "RSET after a refused transaction failed");
            self.broken = true;
        }
    }

    /// 421 at any point: the relay is closing the connection (RFC 5321
    /// §3.8). That says nothing about the message and everything about
    /// the relay, so the transaction ends as a failure of the connection.
    pub(super) fn closing(&mut self, during: &'static str, reply: &Reply) -> Result<(), SmtpError> {
        if reply.code == 421 {
            self.broken = true;
            return Err(self.refused(during, reply.clone()));
        }
        Ok(())
    }
}

/// The positions of the recipients the relay accepted so far.
pub(super) fn accepted(verdicts: &[Verdict]) -> Vec<usize> {
    (0..verdicts.len())
        .filter(|&n| verdicts[n].is_ok())
        .collect()
}
