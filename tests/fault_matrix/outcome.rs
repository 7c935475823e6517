//! The checks every hermetic case makes, once after the faulted run and
//! once after the clean run, on the test server's maildrop, the test
//! relay's offers and the ledger's rows.

use std::collections::HashMap;
use std::path::Path;

use crate::faults::ledger_rows;
use crate::faults::table::Row;
use crate::harness::uid_of;
use crate::pop3_server::Pop3Server;
use crate::smtp_receiver::SmtpReceiver;

/// The account every case uses (the harness's).
pub const ACCOUNT: &str = "alice";

/// `m1` .. `mN`.
pub fn uids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("m{i}")).collect()
}

/// What the servers and the ledger hold at one moment.
#[derive(Debug)]
pub struct Snapshot {
    /// Times the relay answered 250, per uid.
    pub accepted: HashMap<String, usize>,
    pub on_server: Vec<String>,
    /// uid to ledger state.
    pub rows: HashMap<String, String>,
    /// uids with a file in the quarantine folder.
    pub quarantined: Vec<String>,
}

impl Snapshot {
    /// `quarantine` is the account's quarantine folder, if it has one.
    pub fn take(
        pop3: &Pop3Server,
        smtp: &SmtpReceiver,
        ledger: &Path,
        quarantine: Option<&Path>,
    ) -> Self {
        let mut accepted = HashMap::new();
        for offer in smtp.accepted() {
            let uid = uid_of(&offer.data).expect("X-Test-Uid");
            *accepted.entry(uid).or_default() += 1;
        }
        Self {
            accepted,
            on_server: pop3.uids(),
            rows: ledger_rows::states(ledger, ACCOUNT),
            quarantined: quarantine.map(quarantined_uids).unwrap_or_default(),
        }
    }

    pub fn accepted_once_or_more(&self) -> usize {
        self.accepted.len()
    }

    pub fn duplicates(&self) -> usize {
        self.accepted.values().map(|n| n.saturating_sub(1)).sum()
    }

    /// The guarantee: nothing left the server that the relay (or the
    /// quarantine) does not have; no row claims a delivery the relay never
    /// answered 250 to; no row says deleted while the server still lists
    /// the message. With `unlisted` (no poll has listed the mailbox since
    /// the deletions) every message gone must also still have its row.
    pub fn check_invariants(&self, all: &[String], when: &str, unlisted: bool, row: &mut Row) {
        for uid in all {
            let state = self.rows.get(uid).map(String::as_str);
            let gone = !self.on_server.contains(uid);
            let delivered = self.accepted.contains_key(uid) || self.quarantined.contains(uid);
            let recorded = matches!(state, Some("delivered" | "deleted" | "quarantined"));
            row.check(!gone || delivered, || {
                format!("{when}: {uid} left the server and never reached the relay")
            });
            row.check(!gone || recorded || !unlisted, || {
                format!("{when}: {uid} left the server but the ledger says {state:?}")
            });
            row.check(
                !matches!(state, Some("delivered" | "deleted")) || delivered,
                || format!("{when}: ledger says {uid} is {state:?}, the relay never took it"),
            );
            row.check(state != Some("deleted") || gone, || {
                format!("{when}: ledger says {uid} is deleted, the server still has it")
            });
        }
    }

    /// After the clean run: each message delivered exactly once beyond the
    /// `allowed` duplicates (quarantined ones not at all), the server
    /// empty, and every row settled.
    pub fn check_final(&self, all: &[String], allowed: usize, row: &mut Row) {
        self.check_invariants(all, "after the clean run", false, row);
        let quarantined = self.quarantined.len();
        row.delivered = self.accepted_once_or_more() + quarantined;
        row.duplicates = self.duplicates();
        row.left_on_server = self.on_server.len();
        row.check(row.delivered == all.len(), || {
            let missing: Vec<_> = all
                .iter()
                .filter(|u| !self.accepted.contains_key(*u))
                .collect();
            format!("never delivered: {missing:?} ({quarantined} quarantined)")
        });
        let duplicates = row.duplicates;
        row.check(duplicates <= allowed, || {
            format!(
                "{duplicates} duplicates, {allowed} allowed: {:?}",
                self.accepted
            )
        });
        row.check(self.on_server.is_empty(), || {
            format!("left on the server: {:?}", self.on_server)
        });
        let unsettled: Vec<_> = self.rows.iter().filter(|(_, s)| *s != "deleted").collect();
        row.check(unsettled.is_empty(), || {
            format!("ledger rows not settled as deleted: {unsettled:?}")
        });
    }
}

/// The uids of the `<uid>-<...>.eml` files in `folder`.
fn quarantined_uids(folder: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            Some(name.split_once('-')?.0.to_owned())
        })
        .collect()
}
