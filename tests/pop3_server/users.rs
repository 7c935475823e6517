//! Who may log in, and what the server remembers about logins: enough for
//! a benchmark with thousands of accounts on one server to see how hard
//! the client hit it, without keeping a record per login.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{lock, Options, Pop3Server, Shared};

/// Logins counted per whole second of wall-clock time, and each user's
/// first one; constant work per login, whatever the number of users.
#[derive(Debug, Default)]
pub(super) struct Logins {
    total: usize,
    /// The second being counted (since the Unix epoch) and its count so far.
    second: u64,
    in_second: usize,
    busiest_second: usize,
    /// Milliseconds since the Unix epoch, so another process can compare
    /// them with its own clock.
    first: HashMap<String, u64>,
}

impl Options {
    pub(super) fn knows(&self, user: &str) -> bool {
        self.any_user || self.user == user || self.aliases.iter().any(|alias| alias == user)
    }
}

impl Shared {
    pub(super) fn note_login(&mut self, user: &str) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        let logins = &mut self.logins;
        logins.total += 1;
        if now / 1000 != logins.second {
            logins.second = now / 1000;
            logins.in_second = 0;
        }
        logins.in_second += 1;
        logins.busiest_second = logins.busiest_second.max(logins.in_second);
        logins.first.entry(user.to_owned()).or_insert(now);
    }
}

impl Pop3Server {
    pub fn logins(&self) -> usize {
        lock(&self.shared).logins.total
    }

    /// The most logins that fell into one second of the clock.
    pub fn busiest_second(&self) -> usize {
        lock(&self.shared).logins.busiest_second
    }

    /// How many users have logged in at least once, and when (milliseconds
    /// since the Unix epoch) the last of them first did.
    pub fn first_logins(&self) -> (usize, Option<u64>) {
        let shared = lock(&self.shared);
        let first = &shared.logins.first;
        (first.len(), first.values().max().copied())
    }
}
