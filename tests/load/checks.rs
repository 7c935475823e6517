//! What must hold once the run is over: connections, deliveries, ledger.

use std::collections::HashMap;
use std::path::Path;

use popferry::config::Daemon;
use popferry::ledger::{Ledger, MessageState, OnServer};

use super::{account_name, Mailbox, ACCOUNTS};
use crate::harness;
use crate::smtp_receiver::SmtpReceiver;

/// While the daemon runs: each server (one mailbox) has at most one
/// connection open, pooled mailboxes kept the one session they logged in
/// with, and nothing exceeds the `[daemon]` caps.
pub fn check_connections(mailboxes: &[Mailbox], limits: &Daemon) {
    let open: Vec<usize> = mailboxes
        .iter()
        .map(|m| m.server.open_connections())
        .collect();
    let sleeping: usize = mailboxes
        .iter()
        .map(|m| m.server.sleeping_connections())
        .sum();
    println!(
        "connections at the end: {} open, {sleeping} parked; caps: {} per server, {} parked, {} polls at once",
        open.iter().sum::<usize>(),
        limits.max_connections_per_server,
        limits.max_idle_connections,
        limits.max_concurrent_polls,
    );
    for (index, (mailbox, open)) in mailboxes.iter().zip(&open).enumerate() {
        let name = account_name(index);
        assert!(*open <= 1, "{name}: {open} connections to one mailbox");
        assert!(
            *open <= limits.max_connections_per_server,
            "{name}: {open} over the cap"
        );
        if mailbox.pooled {
            assert_eq!(
                mailbox.server.logins(),
                1,
                "{name}: the pooled session should have lived through the whole run"
            );
        }
    }
    assert!(sleeping <= limits.max_idle_connections);
}

/// Every message added was accepted by the relay exactly once, and nothing
/// else was offered. Returns how many were delivered.
pub fn check_delivered_once(mailboxes: &[Mailbox], smtp: &SmtpReceiver) -> usize {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for offer in smtp.accepted() {
        let uid = harness::uid_of(&offer.data).expect("every message names its uid");
        *counts.entry(uid).or_default() += 1;
    }
    let added: usize = mailboxes.iter().map(|m| m.added.len()).sum();
    let lost: Vec<&String> = mailboxes
        .iter()
        .flat_map(|m| &m.added)
        .filter(|uid| !counts.contains_key(*uid))
        .collect();
    let duplicated: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    println!(
        "messages: {added} added, {} accepted, {} lost, {} duplicated",
        counts.values().sum::<usize>(),
        lost.len(),
        duplicated.len()
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(
        duplicated.is_empty(),
        "delivered more than once: {duplicated:?}"
    );
    assert_eq!(
        smtp.offers().len(),
        added,
        "offers beyond the accepted ones"
    );
    assert_eq!(
        counts.len(),
        added,
        "accepted messages the test never added"
    );
    added
}

/// The ledger's view: nothing awaiting deletion or rejected, every row it
/// kept marked deleted and belonging to its account, no failed poll, and
/// per account the deliveries its polls recorded add up to what was added.
pub async fn check_ledger(mailboxes: &[Mailbox], path: &Path) {
    let ledger = Ledger::open(path).expect("open the ledger");
    let status = ledger.status().await.expect("status");
    assert_eq!(status.len(), ACCOUNTS, "accounts in the ledger");
    for account in &status {
        assert_eq!(
            account.on_server,
            OnServer::default(),
            "{}",
            account.account
        );
    }
    let sql = rusqlite::Connection::open(path).expect("open the ledger with SQLite");
    let mut query = sql
        .prepare(
            "SELECT account, count(*), sum(delivered), sum(outcome <> 'ok') FROM poll
             GROUP BY account ORDER BY account",
        )
        .expect("prepare");
    let polls: Vec<(String, i64, i64, i64)> = query
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(polls.len(), ACCOUNTS);
    for (index, mailbox) in mailboxes.iter().enumerate() {
        let name = account_name(index);
        let (account, count, delivered, not_ok) = &polls[index];
        assert_eq!(account, &name);
        assert_eq!(*not_ok, 0, "{name}: polls that failed or never finished");
        assert!(
            *count < 1000,
            "{name}: {count} polls; the ledger keeps the last 1000 only, so the sum below would be incomplete"
        );
        assert_eq!(
            usize::try_from(*delivered).expect("count"),
            mailbox.added.len(),
            "{name}: deliveries recorded by its polls"
        );
        let rows = ledger.messages(&name).await.expect("messages");
        for (uid, record) in rows {
            assert_eq!(record.state, MessageState::Deleted, "{name} {uid}");
            assert!(
                mailbox.added.contains(&uid),
                "{name}: {uid} is not its message"
            );
        }
    }
}
