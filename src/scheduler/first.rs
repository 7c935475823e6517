//! When each account polls first, and whether a server can take the
//! logins its accounts need.
//!
//! Started together, the accounts of one provider would all log in within
//! the first seconds, hundreds a second for a big host: what providers
//! throttle or ban. So the first polls of one server's accounts are spread
//! evenly over their interval: the k-th of n accounts of a host and port
//! polls first after k/n of its `poll_interval`. The first account of each
//! server polls at once, and so does an account alone on its server. The
//! pool's login pacing (`max_logins_per_second`) holds on top of this.

use std::collections::HashMap;
use std::time::Duration;

use crate::config::Account;

/// The wait before each account's first poll, in the order given.
pub fn first_polls<'a>(accounts: impl IntoIterator<Item = &'a Account>) -> Vec<Duration> {
    let accounts: Vec<&Account> = accounts.into_iter().collect();
    let mut per_server: HashMap<(String, u16), (u32, u32)> = HashMap::new();
    for account in &accounts {
        per_server.entry(server(account)).or_default().1 += 1;
    }
    accounts
        .into_iter()
        .map(|account| {
            let (seen, all) = per_server
                .get_mut(&server(account))
                .expect("every server was counted");
            let wait = account.poll_interval * *seen / *all;
            *seen += 1;
            wait
        })
        .collect()
}

/// A server whose accounts, if every poll logs in afresh, need more logins
/// a second than `max_logins_per_second` lets through: their polls will
/// come later than their intervals say.
#[derive(Debug, Clone, PartialEq)]
pub struct Overbooked {
    /// `host:port`.
    pub server: String,
    pub accounts: usize,
    pub needed_per_second: f64,
    pub allowed_per_second: f64,
}

/// The servers of `accounts` that need more logins than one every
/// `login_gap`, busiest first.
pub fn login_demand<'a>(
    accounts: impl IntoIterator<Item = &'a Account>,
    login_gap: Duration,
) -> Vec<Overbooked> {
    let mut per_server: HashMap<(String, u16), (usize, f64)> = HashMap::new();
    for account in accounts {
        let entry = per_server.entry(server(account)).or_default();
        entry.0 += 1;
        entry.1 += 1.0 / account.poll_interval.as_secs_f64();
    }
    let allowed = 1.0 / login_gap.as_secs_f64();
    let mut over: Vec<Overbooked> = per_server
        .into_iter()
        .filter(|(_, (_, needed))| *needed > allowed)
        .map(|((host, port), (accounts, needed))| Overbooked {
            server: format!("{host}:{port}"),
            accounts,
            needed_per_second: needed,
            allowed_per_second: allowed,
        })
        .collect();
    over.sort_by(|a, b| b.needed_per_second.total_cmp(&a.needed_per_second));
    over
}

/// The pool's notion of one server: host names are case-insensitive.
fn server(account: &Account) -> (String, u16) {
    (account.pop3.host.to_ascii_lowercase(), account.pop3.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts(hosts: &[&str], interval: &str) -> Vec<Account> {
        let mut toml = String::from("[smtp]\nhost = \"relay\"\n");
        for (i, host) in hosts.iter().enumerate() {
            toml.push_str(&format!(
                "[[account]]\nname = \"a{i}\"\nhost = \"{host}\"\nusername = \"u{i}\"\n\
                 password_env = \"P\"\ndeliver_to = [\"u@example.org\"]\n\
                 poll_interval = \"{interval}\"\n"
            ));
        }
        crate::config::Config::from_toml(&toml, std::path::Path::new("/nonexistent/p.toml"))
            .expect("config")
            .accounts
    }

    #[test]
    fn one_servers_first_polls_spread_evenly_over_the_interval() {
        let all = accounts(&["a", "b", "A", "a", "a"], "60s");
        let waits = first_polls(&all);
        let secs = |s| Duration::from_secs(s);
        assert_eq!(
            waits,
            [secs(0), secs(0), secs(15), secs(30), secs(45)],
            "four accounts of host a (any case) at 0, 1/4, 2/4, 3/4; b alone at once"
        );
    }

    #[test]
    fn a_server_is_overbooked_when_its_intervals_need_more_logins_than_allowed() {
        let mut all = accounts(&["a"; 30], "10s");
        all.extend(accounts(&["b"; 5], "10s"));
        let over = login_demand(&all, Duration::from_millis(500));
        assert_eq!(over.len(), 1, "{over:?}");
        assert_eq!(over[0].server, "a:995");
        assert_eq!(over[0].accounts, 30);
        assert!((over[0].needed_per_second - 3.0).abs() < 1e-9);
        assert!((over[0].allowed_per_second - 2.0).abs() < 1e-9);
        assert!(login_demand(&all, Duration::from_millis(100)).is_empty());
    }
}
