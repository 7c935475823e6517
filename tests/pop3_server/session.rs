//! One POP3 connection: reading commands, the per-state command filters,
//! the AUTHORIZATION state, and the injected faults.
//!
//! Reply texts are the reference server's (spec 4.5), so a client tested
//! here meets the wording it will meet there; clients must only ever act
//! on status and response code.

use std::sync::Arc;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::mailbox::Mailbox;
use super::{lock, Fault, SharedRef, State};

/// What a command handler wants done with the connection.
pub(super) enum Next {
    Continue,
    /// End the session. Whatever was to be committed has been already.
    Close,
}

pub(super) type Io = std::io::Result<Next>;

const SLEEP_FILTER: &str =
    "-ERR This command is not allowed in a sleeping state. (Only NOOP, QUIT or WAKE.)";

pub(super) struct Session {
    pub(super) shared: SharedRef,
    out: OwnedWriteHalf,
    /// This connection's key in `Shared::connections`.
    pub(super) id: u64,
    pub(super) user: Option<String>,
    /// `None` in the AUTHORIZATION state.
    pub(super) mailbox: Option<Mailbox>,
    /// SLEEP: logged in, deletions committed, waiting for WAKE.
    pub(super) asleep: bool,
    /// A bare `AUTH PLAIN` was answered with `+`; the next line is the
    /// credentials.
    awaiting_plain: bool,
}

/// Takes the connection out of the server's list however the session ends.
struct Registered {
    shared: SharedRef,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut shared = lock(&self.shared);
        shared.leave(self.id);
        shared.connections.remove(&self.id);
    }
}

pub(super) async fn serve(stream: TcpStream, shared: SharedRef, id: u64, close: Arc<Notify>) {
    let _registered = Registered {
        shared: Arc::clone(&shared),
        id,
    };
    let (read, out) = stream.into_split();
    // Buffered, so pipelined commands that arrive in one segment are taken
    // one line at a time and answered in order.
    let mut input = BufReader::new(read);
    let mut session = Session {
        shared,
        out,
        id,
        user: None,
        mailbox: None,
        asleep: false,
        awaiting_plain: false,
    };
    if session
        .send(b"+OK test POP3 server ready\r\n")
        .await
        .is_err()
    {
        return;
    }
    let autologout = lock(&session.shared).options.autologout;
    let silence = || async move {
        match autologout {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = tokio::select! {
            // A close request wins over a command that arrives with it.
            biased;
            () = close.notified() => return,
            read = input.read_until(b'\n', &mut line) => read,
            // Autologout: the session ends without entering UPDATE.
            () = silence() => return,
        };
        match read {
            Ok(0) | Err(_) => return, // no QUIT: nothing is committed
            Ok(_) => {}
        }
        session.note_pipelining(input.buffer());
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        let next = if session.awaiting_plain {
            session.awaiting_plain = false;
            session.plain_credentials(&text).await
        } else {
            session.command(&text, &mut input).await
        };
        match next {
            Ok(Next::Continue) => {}
            Ok(Next::Close) | Err(_) => return,
        }
    }
}

impl Session {
    pub(super) fn state(&self) -> State {
        match (&self.mailbox, self.asleep) {
            (None, _) => State::Authorization,
            (Some(_), false) => State::Transaction,
            (Some(_), true) => State::Sleep,
        }
    }

    /// Counts the complete commands already buffered behind the current
    /// one (a RETR body's lines never arrive from the client).
    fn note_pipelining(&self, buffered: &[u8]) {
        let lines = buffered.split_inclusive(|&b| b == b'\n');
        let waiting: Vec<&[u8]> = lines.filter(|l| l.ends_with(b"\n")).collect();
        let retrs = waiting
            .iter()
            .filter(|l| l.len() > 4 && l[..5].eq_ignore_ascii_case(b"RETR "))
            .count();
        let mut shared = lock(&self.shared);
        shared.most_ahead = shared.most_ahead.max(waiting.len());
        shared.most_retrs_ahead = shared.most_retrs_ahead.max(retrs);
    }

    pub(super) async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes).await?;
        self.out.flush().await
    }

    pub(super) async fn reply(&mut self, line: &str) -> Io {
        self.send(format!("{line}\r\n").as_bytes()).await?;
        Ok(Next::Continue)
    }

    /// Close after a reply, as a server that drops the link would.
    pub(super) async fn hang_up(&mut self) -> Io {
        self.out.shutdown().await?;
        Ok(Next::Close)
    }

    /// The UPDATE step of QUIT, SLEE and QAUT: remove the DELE'd messages
    /// from the shared maildrop. Returns what the reply reports as deleted.
    pub(super) fn commit(&mut self) -> usize {
        let Some(mailbox) = self.mailbox.as_mut() else {
            return 0;
        };
        let pending = mailbox.pending();
        lock(&self.shared).commit(&mailbox.flagged_ids());
        mailbox.committed();
        pending
    }

    async fn command(&mut self, text: &str, input: &mut BufReader<OwnedReadHalf>) -> Io {
        let mut words = text.split(' ');
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let args: Vec<&str> = words.filter(|w| !w.is_empty()).collect();
        let state = self.state();
        let (fault, extensions, uidl) = {
            let mut shared = lock(&self.shared);
            *shared.commands.entry(verb.clone()).or_default() += 1;
            let fault = shared.fault_for(&verb, state);
            (fault, shared.options.extensions, shared.options.uidl)
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
                return Ok(Next::Close);
            }
            Some(Fault::CloseAfter { .. }) => return Ok(Next::Close),
            Some(Fault::LostQuitReply) => {
                self.commit();
                return Ok(Next::Close);
            }
            Some(Fault::DropMidRetr { .. }) => return self.retr_then_drop(&args).await,
            Some(Fault::RefuseWake { code }) => {
                return self
                    .reply(&format!("-ERR [{code}] Cannot wake up now, still asleep."))
                    .await
            }
            Some(fault @ (Fault::DropAfterSlee | Fault::LostSleeReply)) => {
                return self.slee(Some(fault)).await
            }
            Some(Fault::LostQautReply) => {
                self.commit();
                return Ok(Next::Close);
            }
            Some(Fault::RefuseCore) => return self.reply("-ERR [SYS/TEMP] Cannot refresh.").await,
            Some(Fault::RefuseLogin) => return self.reply("-ERR [AUTH] Invalid login.").await,
            None => {}
        }
        let allowed: &[&str] = match state {
            State::Authorization => &["NOOP", "CAPA", "USER", "PASS", "AUTH", "QUIT"],
            State::Sleep => &["NOOP", "WAKE", "QUIT"],
            State::Transaction => &[],
        };
        match state {
            State::Authorization if !allowed.contains(&verb.as_str()) => {
                return self.reply("-ERR Authenticate first.").await
            }
            State::Sleep if !allowed.contains(&verb.as_str()) => {
                return self.reply(SLEEP_FILTER).await
            }
            _ => {}
        }
        let in_auth = state == State::Authorization;
        match verb.as_str() {
            "CAPA" => self.capa().await,
            "QUIT" => self.quit().await,
            "NOOP" => {
                self.reply("+OK There's no-one here but us POP3 services.")
                    .await
            }
            "USER" if in_auth => {
                self.user = args.first().map(|s| (*s).to_owned());
                self.reply("+OK Thank you. Send password.").await
            }
            "PASS" if in_auth => {
                let Some(user) = self.user.clone() else {
                    return self.reply("-ERR Call USER before PASS.").await;
                };
                let password = text.split_once(' ').map_or("", |(_, p)| p);
                self.login(&user, password).await
            }
            "AUTH" if in_auth => self.auth(&args).await,
            "STAT" => self.stat().await,
            "LIST" => self.list(&args).await,
            "UIDL" if uidl => self.uidl(&args).await,
            "RETR" => self.retr(&args).await,
            "TOP" => self.top(&args).await,
            "DELE" => self.dele(&args).await,
            "RSET" => self.rset().await,
            "SLEE" if extensions.sleep() => self.slee(None).await,
            "WAKE" if extensions.sleep() => self.wake().await,
            "DELI" if extensions.deli => self.deli(&args).await,
            "QAUT" if extensions.qaut => self.qaut().await,
            "CORE" if extensions.core => self.core().await,
            "REFR" if extensions.refr => self.core().await,
            _ => self.reply(&format!("-ERR Unknown command: {verb}")).await,
        }
    }

    async fn capa(&mut self) -> Io {
        let (mut capabilities, extensions) = {
            let shared = lock(&self.shared);
            (
                shared.options.capabilities.clone(),
                shared.options.extensions,
            )
        };
        for token in extensions.tokens() {
            if !capabilities.iter().any(|c| c == token) {
                capabilities.push(token.to_owned());
            }
        }
        let mut out = b"+OK Capabilities are...\r\n".to_vec();
        for capability in capabilities {
            out.extend_from_slice(capability.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.send(&out).await?;
        Ok(Next::Continue)
    }

    /// Commits before the `+OK`: the reply is the server's word that the
    /// deletions are done, so a test may look at the maildrop right after.
    async fn quit(&mut self) -> Io {
        let line = match self.state() {
            State::Authorization => "+OK Closing connection without authenticating.".to_owned(),
            State::Transaction | State::Sleep => match self.commit() {
                0 => "+OK Closing connection.".to_owned(),
                n => format!("+OK {n} messages deleted. Closing connection."),
            },
        };
        self.reply(&line).await?;
        Ok(Next::Close)
    }

    pub(super) async fn login(&mut self, user: &str, password: &str) -> Io {
        let snapshot = {
            let mut shared = lock(&self.shared);
            if !shared.options.knows(user) || password != shared.options.password {
                Err("-ERR [AUTH] Wrong username or password.")
            } else if !shared.enter(self.id, user) {
                Err("-ERR [IN-USE] Mailbox is locked by another POP3 session.")
            } else {
                shared.note_login(user);
                Ok(Mailbox::new(&shared.visible(user)))
            }
        };
        match snapshot {
            Ok(mailbox) => {
                self.user = Some(user.to_owned());
                self.mailbox = Some(mailbox);
                self.asleep = false;
                self.reply("+OK Welcome.").await
            }
            Err(refusal) => self.reply(refusal).await,
        }
    }

    /// Back to AUTHORIZATION on the same connection (QAUT).
    pub(super) fn log_out(&mut self) {
        lock(&self.shared).leave(self.id);
        self.mailbox = None;
        self.user = None;
        self.asleep = false;
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
}
