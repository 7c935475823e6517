//! The fault matrix against the project's own servers: the in-process POP3
//! test server and SMTP test relay, driven through the library (every POP3
//! command's dropped link, SLEE and WAKE through the daemon's pool, every
//! relay refusal) and through the `popferry` binary (the ledger locked by
//! another process, the ledger's disk full).
//!
//! Each case faults the first run, then runs clean, then checks: every
//! message delivered, none twice unless the README's window allows it,
//! the mailbox as it should be, and a ledger consistent with both. The
//! summary table is printed (whatever the test harness captures) and saved
//! as `target/fault-matrix-hermetic.txt`; any wrong case fails the test.
//! The same faults against Dovecot and smtp-sink:
//! `tests/fault_matrix_dovecot.rs`.

mod faults;
mod harness;
mod pop3_server;
mod smtp_receiver;
mod support;

#[path = "fault_matrix/ledger.rs"]
mod ledger;
#[path = "fault_matrix/library.rs"]
mod library;
#[path = "fault_matrix/outcome.rs"]
mod outcome;

use faults::table;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_ends_with_each_message_delivered_once_and_a_consistent_ledger() {
    let mut rows = library::run_all().await;
    rows.extend(ledger::run_all().await);
    let problems = table::report(
        "Fault matrix: in-process POP3 test server + SMTP test relay",
        "fault-matrix-hermetic.txt",
        &rows,
    );
    assert!(
        problems.is_empty(),
        "wrong outcomes:\n{}",
        problems.join("\n")
    );
}
