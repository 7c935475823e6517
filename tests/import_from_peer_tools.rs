//! Moving from fetchmail, mpop or getmail with `keep = true`: each real
//! tool (Debian's packages) fetches a Dovecot mailbox in keep mode and
//! leaves its state file; `popferry import` reads it; `popferry fetch`
//! then delivers none of that mail, and a message that arrives afterwards
//! exactly once.
#![cfg(feature = "real-servers")]

mod support;

use std::path::Path;

use popferry::ledger::Ledger;
use support::mail::{message, messages_of_size};
use support::peers::{PeerHome, HOST};
use support::popferry::RunOutput;
use support::scenario::Scenario;

const KEPT: usize = 3;

/// A mailbox of [`KEPT`] messages and a `keep = true` account for it that
/// names the server as the tools do.
fn kept_mailbox(name: &str) -> Scenario {
    let mut s = Scenario::new(name, |tag| messages_of_size(tag, KEPT, 400));
    s.account().host = HOST.to_owned();
    s.account().keep = true;
    s
}

fn import(s: &Scenario, tool: &str, file: &Path) -> RunOutput {
    let file = file.to_string_lossy();
    let out = s.config.run(&["import", tool, &file]);
    assert_eq!(out.code, Some(0), "import {tool}\n{out}");
    out
}

/// The sizes the ledger holds for the account's messages (popferry is not
/// running, so the ledger is free).
fn recorded_sizes(s: &Scenario) -> Vec<Option<u64>> {
    let path = s.config.dir.path().join("popferry.db");
    let name = s.config.accounts[0].name.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let ledger = Ledger::open(&path).expect("open the ledger");
    let messages = runtime
        .block_on(ledger.messages(&name))
        .expect("read the ledger");
    messages.values().map(|record| record.size).collect()
}

/// The whole move, once the tool has fetched and left `file`.
fn moves_without_redelivery(mut s: Scenario, home: &PeerHome, tool: &str, file: &Path) {
    assert_eq!(home.delivered(), KEPT, "{tool} fetched the mailbox");
    assert!(file.is_file(), "{tool} left {}", file.display());
    let name = s.config.accounts[0].name.clone();

    let out = import(&s, tool, file);
    let expected = format!(
        "imported {KEPT} unique-ids for account {name} from {}; 0 already known",
        file.display()
    );
    assert!(out.stdout.contains(&expected), "{out}");

    assert_eq!(recorded_sizes(&s), [None; KEPT], "the file names no sizes");

    let out = s.fetch_expecting(&[0], "fetch after the import");
    assert!(s.dumps().is_empty(), "nothing delivered again\n{out}");
    s.assert_pop3_holds(KEPT, &out);
    let learned = recorded_sizes(&s);
    assert!(
        learned.iter().all(Option::is_some),
        "the first listing recorded each size: {learned:?}"
    );

    let newer = message(&s.mailbox.user, KEPT, 400);
    s.mailbox.add(&newer);
    s.messages.push(newer.clone());
    let out = s.fetch_expecting(&[0], "fetch after new mail");
    let dumps = s.dumps();
    assert_eq!(dumps.len(), 1, "only the new message\n{out}");
    assert_eq!(dumps[0].message_id(), Some(newer.message_id.clone()));
    let out = s.fetch_expecting(&[0], "one more fetch");
    let deliveries = s.deliveries();
    for (id, times) in &deliveries {
        let expected = usize::from(*id == newer.message_id);
        assert_eq!(*times, expected, "{id} delivered {times} times\n{out}");
    }
    s.assert_pop3_holds(KEPT + 1, &out);

    let again = import(&s, tool, file);
    assert!(
        again
            .stdout
            .contains(&format!("imported 0 unique-ids for account {name}"))
            && again.stdout.contains(&format!("; {KEPT} already known")),
        "a second import changes nothing\n{again}"
    );
}

#[test]
fn fetchmail_fetchids_import_stops_redelivery() {
    let s = kept_mailbox("import-fetchmail");
    let home = PeerHome::new();
    let file = home.fetchmail(&s.mailbox);
    moves_without_redelivery(s, &home, "fetchmail", &file);
}

#[test]
fn mpop_uidls_import_stops_redelivery() {
    let s = kept_mailbox("import-mpop");
    let home = PeerHome::new();
    let file = home.mpop(&s.mailbox);
    moves_without_redelivery(s, &home, "mpop", &file);
}

#[test]
fn getmail_oldmail_import_stops_redelivery() {
    let s = kept_mailbox("import-getmail");
    let home = PeerHome::new();
    let file = home.getmail(&s.mailbox);
    moves_without_redelivery(s, &home, "getmail", &file);
}

#[test]
fn imported_mail_is_deleted_unsent_when_popferry_does_not_keep() {
    let mut s = kept_mailbox("import-then-delete");
    s.account().keep = false;
    let home = PeerHome::new();
    let file = home.mpop(&s.mailbox);
    assert_eq!(home.delivered(), KEPT, "mpop fetched the mailbox");
    import(&s, "mpop", &file);
    let out = s.fetch_expecting(&[0], "fetch with keep = false");
    assert!(s.dumps().is_empty(), "mpop delivered them already\n{out}");
    s.assert_pop3_holds(0, &out);
}
