//! One POP3 connection: the AUTHORIZATION and TRANSACTION states, and the
//! injected faults.

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

use popferry::pop3::codec::dot_stuff;

use super::{lock, Fault, SharedRef, Stored};

/// What a command handler wants done with the connection.
enum Next {
    Continue,
    /// End the session; with `commit`, apply the deletions first.
    Close {
        commit: bool,
    },
}

struct Session {
    shared: SharedRef,
    out: OwnedWriteHalf,
    user: Option<String>,
    /// The maildrop as of login, with a deleted flag per message; `None`
    /// while still in the AUTHORIZATION state.
    snapshot: Option<Vec<(Stored, bool)>>,
    /// A bare `AUTH PLAIN` was answered with `+`; the next line is the
    /// credentials.
    awaiting_plain: bool,
}

pub(super) async fn serve(stream: TcpStream, shared: SharedRef) {
    let (read, out) = stream.into_split();
    let mut input = BufReader::new(read);
    let mut session = Session {
        shared,
        out,
        user: None,
        snapshot: None,
        awaiting_plain: false,
    };
    if session
        .send(b"+OK test POP3 server ready\r\n")
        .await
        .is_err()
    {
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return, // no QUIT: nothing is committed
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        let next = if session.awaiting_plain {
            session.awaiting_plain = false;
            session.plain_credentials(&text).await
        } else {
            session.command(&text, &mut input).await
        };
        match next {
            Ok(Next::Continue) => {}
            Ok(Next::Close { commit }) => {
                if commit {
                    session.commit();
                }
                return;
            }
            Err(_) => return,
        }
    }
}

type Io = std::io::Result<Next>;

impl Session {
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes).await?;
        self.out.flush().await
    }

    async fn reply(&mut self, line: &str) -> Io {
        self.send(format!("{line}\r\n").as_bytes()).await?;
        Ok(Next::Continue)
    }

    fn commit(&mut self) {
        let deleted: Vec<u64> = self
            .snapshot
            .iter()
            .flatten()
            .filter(|(_, deleted)| *deleted)
            .map(|(stored, _)| stored.id)
            .collect();
        lock(&self.shared).commit(&deleted);
    }

    async fn command(
        &mut self,
        text: &str,
        input: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    ) -> Io {
        let mut words = text.split(' ');
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let args: Vec<&str> = words.filter(|w| !w.is_empty()).collect();
        let fault = {
            let mut shared = lock(&self.shared);
            *shared.commands.entry(verb.clone()).or_default() += 1;
            shared.fault_for(&verb)
        };
        match fault {
            Some(Fault::Garbage { .. }) => return self.reply("HELLO? this is not POP3").await,
            Some(Fault::Stall { .. }) => {
                // Read (and ignore) until the client hangs up.
                let mut sink = Vec::new();
                while input
                    .read_until(b'\n', &mut sink)
                    .await
                    .is_ok_and(|n| n > 0)
                {}
                return Ok(Next::Close { commit: false });
            }
            Some(Fault::CloseAfter { .. }) => return Ok(Next::Close { commit: false }),
            Some(Fault::LostQuitReply) if self.snapshot.is_some() => {
                return Ok(Next::Close { commit: true })
            }
            Some(Fault::DropMidRetr { .. }) => return self.retr_then_drop(&args).await,
            _ => {}
        }
        match (verb.as_str(), self.snapshot.is_some()) {
            ("CAPA", _) => self.capa().await,
            ("QUIT", in_transaction) => {
                self.reply("+OK bye").await?;
                Ok(Next::Close {
                    commit: in_transaction,
                })
            }
            ("USER", false) => {
                self.user = args.first().map(|s| (*s).to_owned());
                self.reply("+OK send PASS").await
            }
            ("PASS", false) => {
                let password = text.split_once(' ').map_or("", |(_, p)| p);
                let user = self.user.clone().unwrap_or_default();
                self.login(&user, password).await
            }
            ("AUTH", false) => self.auth(&args).await,
            (_, false) => self.reply("-ERR not logged in").await,
            ("STAT", true) => {
                let live = self.live();
                let total: usize = live.iter().map(|(_, m)| m.message.bytes.len()).sum();
                self.reply(&format!("+OK {} {total}", live.len())).await
            }
            ("LIST", true) => self.listing(&args, |m| m.bytes.len().to_string()).await,
            ("UIDL", true) => {
                if !lock(&self.shared).options.uidl {
                    return self.reply("-ERR UIDL not supported").await;
                }
                self.listing(&args, |m| m.uid.clone()).await
            }
            ("RETR", true) => match self.message(&args) {
                Some(bytes) => self.body(&bytes).await,
                None => self.reply("-ERR no such message").await,
            },
            ("TOP", true) => {
                let lines = args.get(1).and_then(|n| n.parse().ok());
                match (self.message(&args), lines) {
                    (Some(bytes), Some(lines)) => self.body(&top(&bytes, lines)).await,
                    _ => self.reply("-ERR no such message").await,
                }
            }
            ("DELE", true) => match self.number(&args) {
                Some(index) => {
                    if let Some(entry) = self.snapshot.as_mut().and_then(|s| s.get_mut(index)) {
                        entry.1 = true;
                    }
                    self.reply("+OK deleted").await
                }
                None => self.reply("-ERR no such message").await,
            },
            ("RSET", true) => {
                for entry in self.snapshot.iter_mut().flatten() {
                    entry.1 = false;
                }
                self.reply("+OK").await
            }
            ("NOOP", true) => self.reply("+OK").await,
            _ => self.reply("-ERR unknown command").await,
        }
    }

    async fn capa(&mut self) -> Io {
        let capabilities = lock(&self.shared).options.capabilities.clone();
        let mut out = b"+OK capability list follows\r\n".to_vec();
        for capability in capabilities {
            out.extend_from_slice(capability.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.send(&out).await?;
        Ok(Next::Continue)
    }

    async fn login(&mut self, user: &str, password: &str) -> Io {
        let snapshot = {
            let mut shared = lock(&self.shared);
            if user != shared.options.user || password != shared.options.password {
                None
            } else {
                shared.logins += 1;
                Some(
                    shared
                        .maildrop
                        .iter()
                        .cloned()
                        .map(|s| (s, false))
                        .collect(),
                )
            }
        };
        match snapshot {
            Some(snapshot) => {
                self.snapshot = Some(snapshot);
                self.reply("+OK logged in").await
            }
            None => {
                self.reply("-ERR [AUTH] invalid user name or password")
                    .await
            }
        }
    }

    async fn auth(&mut self, args: &[&str]) -> Io {
        match args {
            [] => self
                .send(b"+OK\r\nPLAIN\r\n.\r\n")
                .await
                .map(|()| Next::Continue),
            [mechanism] if mechanism.eq_ignore_ascii_case("PLAIN") => {
                self.awaiting_plain = true;
                lock(&self.shared).plain_continuations += 1;
                self.reply("+ ").await
            }
            [mechanism, initial] if mechanism.eq_ignore_ascii_case("PLAIN") => {
                let initial = (*initial).to_owned();
                self.plain_credentials(&initial).await
            }
            _ => self.reply("-ERR unsupported mechanism").await,
        }
    }

    /// Checks a base64 `authzid NUL authcid NUL password` (RFC 4616).
    async fn plain_credentials(&mut self, token: &str) -> Io {
        if token == "*" {
            return self.reply("-ERR authentication cancelled").await;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap_or_default();
        let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
        match parts.as_slice() {
            [_, user, password] => {
                let user = String::from_utf8_lossy(user).into_owned();
                let password = String::from_utf8_lossy(password).into_owned();
                self.login(&user, &password).await
            }
            _ => self.reply("-ERR [AUTH] malformed PLAIN response").await,
        }
    }

    /// The messages not marked deleted, with their 1-based numbers.
    fn live(&self) -> Vec<(usize, Stored)> {
        self.snapshot
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, (_, deleted))| !deleted)
            .map(|(i, (stored, _))| (i + 1, stored.clone()))
            .collect()
    }

    /// The 0-based index of the live message named by the first argument.
    fn number(&self, args: &[&str]) -> Option<usize> {
        let n: usize = args.first()?.parse().ok()?;
        let snapshot = self.snapshot.as_ref()?;
        let (_, deleted) = snapshot.get(n.checked_sub(1)?)?;
        (!deleted).then_some(n - 1)
    }

    fn message(&self, args: &[&str]) -> Option<Vec<u8>> {
        let index = self.number(args)?;
        Some(self.snapshot.as_ref()?[index].0.message.bytes.clone())
    }

    /// LIST and UIDL, for one message or all of them.
    async fn listing(&mut self, args: &[&str], field: fn(&super::Message) -> String) -> Io {
        if !args.is_empty() {
            return match self.number(args) {
                Some(index) => {
                    let message = self.snapshot.as_ref().expect("logged in")[index]
                        .0
                        .message
                        .clone();
                    self.reply(&format!("+OK {} {}", index + 1, field(&message)))
                        .await
                }
                None => self.reply("-ERR no such message").await,
            };
        }
        let mut out = b"+OK\r\n".to_vec();
        for (n, stored) in self.live() {
            out.extend_from_slice(format!("{n} {}\r\n", field(&stored.message)).as_bytes());
        }
        out.extend_from_slice(b".\r\n");
        self.send(&out).await?;
        Ok(Next::Continue)
    }

    /// `+OK` and a dot-stuffed multi-line body.
    async fn body(&mut self, bytes: &[u8]) -> Io {
        let mut out = b"+OK message follows\r\n".to_vec();
        dot_stuff(bytes, &mut out);
        self.send(&out).await?;
        Ok(Next::Continue)
    }

    /// `Fault::DropMidRetr`: the link dies halfway through the body.
    async fn retr_then_drop(&mut self, args: &[&str]) -> Io {
        let Some(bytes) = self.message(args) else {
            return self.reply("-ERR no such message").await;
        };
        let mut stuffed = Vec::new();
        dot_stuff(&bytes, &mut stuffed);
        let mut out = b"+OK message follows\r\n".to_vec();
        out.extend_from_slice(&stuffed[..stuffed.len() / 2]);
        self.send(&out).await?;
        self.out.shutdown().await?;
        Ok(Next::Close { commit: false })
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
