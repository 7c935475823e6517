//! Which connections are logged in to which mailbox: enough for a test of
//! several popferry instances sharing accounts to prove that no mailbox
//! ever had two sessions at once. And, as RFC 1939 §8 lets a server do, a
//! maildrop lock that refuses the second session, and an autologout timer
//! that ends a session whose client went silent, so a frozen client's
//! session ends as a real server would end it.

use std::collections::HashMap;

use super::{lock, Pop3Server, Shared};

#[derive(Debug, Default)]
pub(super) struct Sessions {
    /// The user each logged-in connection is logged in as.
    by_connection: HashMap<u64, String>,
    per_user: HashMap<String, usize>,
    most_at_once: usize,
    /// Logins that found another session on their mailbox.
    overlapping: usize,
    /// Logins refused because another session held the maildrop.
    refused: usize,
}

impl Shared {
    /// Records `connection` logging in as `user`. `false`, and nothing
    /// recorded, when the server locks maildrops and another session holds
    /// this one.
    pub(super) fn enter(&mut self, connection: u64, user: &str) -> bool {
        let locks = self.options.lock_maildrops;
        let sessions = &mut self.sessions;
        let open = sessions.per_user.entry(user.to_owned()).or_default();
        if *open > 0 && locks {
            sessions.refused += 1;
            return false;
        }
        if *open > 0 {
            sessions.overlapping += 1;
        }
        *open += 1;
        sessions.most_at_once = sessions.most_at_once.max(*open);
        sessions.by_connection.insert(connection, user.to_owned());
        true
    }

    /// `connection` is no longer logged in: QUIT, QAUT, or the link gone.
    pub(super) fn leave(&mut self, connection: u64) {
        let sessions = &mut self.sessions;
        if let Some(user) = sessions.by_connection.remove(&connection) {
            if let Some(open) = sessions.per_user.get_mut(&user) {
                *open -= 1;
            }
        }
    }
}

impl Pop3Server {
    /// The most sessions any one mailbox had at the same moment.
    pub fn most_sessions_at_once(&self) -> usize {
        lock(&self.shared).sessions.most_at_once
    }

    /// How many logins found their mailbox already in a session.
    pub fn overlapping_logins(&self) -> usize {
        lock(&self.shared).sessions.overlapping
    }

    /// How many logins the maildrop lock refused (`lock_maildrops`).
    pub fn refused_in_use(&self) -> usize {
        lock(&self.shared).sessions.refused
    }
}
