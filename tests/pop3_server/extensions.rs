//! SLEE, WAKE, DELI and QAUT as the reference server does them (spec 3.1,
//! 3.3, 3.4), CORE and REFR as its historical builds did (3.6), with the
//! faults a pooling client has to survive, and the switches that turn
//! them on.

use super::mailbox::{Mailbox, Mark, BAD_SYNTAX};
use super::session::{Io, Next, Session};
use super::{lock, Fault};

/// The reference server's extensions, each advertised in CAPA when on.
///
/// Off by default so that a plain RFC 1939 test server stays plain and a
/// client's fallback path is what the other tests exercise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extensions {
    /// `SLEE-WAKE`, the name in the reference code.
    pub sleep_wake: bool,
    /// `SLEEPING`, the Internet-Draft's name for the same commands.
    pub sleeping: bool,
    pub uid_param: bool,
    pub deli: bool,
    pub qaut: bool,
    pub pipelining: bool,
    /// `CORE`; off in [`Extensions::all`], as the newest code dropped it.
    pub core: bool,
    /// `REFR`, CORE's first name.
    pub refr: bool,
}

impl Extensions {
    /// What the reference server advertises (it never says `SLEEPING`).
    pub fn all() -> Extensions {
        Extensions {
            sleep_wake: true,
            sleeping: false,
            uid_param: true,
            deli: true,
            qaut: true,
            pipelining: true,
            core: false,
            refr: false,
        }
    }

    pub(super) fn sleep(&self) -> bool {
        self.sleep_wake || self.sleeping
    }

    /// The CAPA tokens, `RESP-CODES` first because every extension's
    /// replies rely on response codes.
    pub(super) fn tokens(&self) -> Vec<&'static str> {
        let flags = [
            (self.sleep_wake, "SLEE-WAKE"),
            (self.sleeping, "SLEEPING"),
            (self.uid_param, "UID-PARAM"),
            (self.deli, "DELI"),
            (self.qaut, "QAUT"),
            (self.pipelining, "PIPELINING"),
            (self.core, "CORE"),
            (self.refr, "REFR"),
        ];
        let mut tokens: Vec<&'static str> = flags
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, token)| *token)
            .collect();
        if !tokens.is_empty() {
            tokens.insert(0, "RESP-CODES");
        }
        tokens
    }
}

impl Session {
    /// Commits like QUIT but keeps the connection, parked. With `fault` the
    /// commit happens and then the link fails in the fault's way.
    pub(super) async fn slee(&mut self, fault: Option<Fault>) -> Io {
        let deleted = self.commit();
        match fault {
            Some(Fault::LostSleeReply) => return Ok(Next::Close),
            Some(Fault::DropAfterSlee) => {
                self.reply(&format!("+OK Zzzzz. Deleted {deleted} messages."))
                    .await?;
                return self.hang_up().await;
            }
            _ => {}
        }
        self.asleep = true;
        if let Some(connection) = lock(&self.shared).connection(self.id) {
            connection.sleeping = true;
        }
        self.reply(&format!("+OK Zzzzz. Deleted {deleted} messages."))
            .await
    }

    /// A fresh snapshot; the activity code says whether any uid is new
    /// since the last one, which is all a pool needs to skip a UIDL.
    pub(super) async fn wake(&mut self) -> Io {
        if !self.asleep {
            return self.reply("-ERR Not sleeping.").await;
        }
        {
            let mut shared = lock(&self.shared);
            // Decided under the same lock as `close_sleeping`: a connection
            // it counted as closed must not wake up.
            match shared.connection(self.id) {
                Some(connection) if !connection.closing => connection.sleeping = false,
                _ => return Ok(Next::Close),
            }
        }
        let activity = self.fresh_snapshot();
        self.asleep = false;
        self.reply(&format!("+OK [ACTIVITY/{activity}] Welcome back."))
            .await
    }

    /// Takes a fresh snapshot and says whether it holds a uid the last one
    /// did not: `NEW` or `NONE`.
    fn fresh_snapshot(&mut self) -> &'static str {
        let fresh = {
            let shared = lock(&self.shared);
            Mailbox::new(&shared.visible(self.user.as_deref().unwrap_or("")))
        };
        let old = self.mailbox.take();
        let new_uid = fresh.snapshot_uids().any(|uid| {
            !old.as_ref()
                .is_some_and(|old| old.snapshot_uids().any(|seen| seen == uid))
        });
        self.mailbox = Some(fresh);
        if new_uid {
            "NEW"
        } else {
            "NONE"
        }
    }

    /// CORE (and REFR): commits like QUIT, then a fresh snapshot, staying
    /// in TRANSACTION.
    pub(super) async fn core(&mut self) -> Io {
        let deleted = self.commit();
        let activity = self.fresh_snapshot();
        self.reply(&format!(
            "+OK [ACTIVITY/{activity}] Refreshed. Deleted {deleted} messages."
        ))
        .await
    }

    /// Deletes from the shared maildrop before the `+OK`, so the deletion
    /// survives whatever happens to the session afterwards.
    pub(super) async fn deli(&mut self, args: &[&str]) -> Io {
        let Some(&arg) = args.first() else {
            return self.reply(BAD_SYNTAX).await;
        };
        let target = match self.resolve(Some(arg)) {
            Ok(target) => target,
            Err(error) => return self.reply(error).await,
        };
        lock(&self.shared).commit(&[target.stored.id]);
        if let Some(mailbox) = self.mailbox.as_mut() {
            mailbox.mark(&target, Mark::Removed);
        }
        let uid = &target.stored.message.uid;
        self.reply(&format!("+OK Deleted message. UID:{uid}")).await
    }

    /// Commits like QUIT, then AUTHORIZATION again on the same connection,
    /// so a pool can hand the link to another account.
    pub(super) async fn qaut(&mut self) -> Io {
        self.commit();
        self.log_out();
        self.reply("+OK Logged out. You can either reauthenticate or exit.")
            .await
    }
}
