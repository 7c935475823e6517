//! The fault matrix against real servers: Dovecot (through the link proxy
//! for the POP3 faults) and Postfix's smtp-sink (acting out the relay
//! faults), with the `popferry` binary. The faults only the project's own
//! server can show (SLEE, WAKE) and the ledger's own faults are in
//! `tests/fault_matrix.rs`.
//!
//! The summary table is printed (whatever the test harness captures) and
//! saved as `target/fault-matrix-dovecot.txt`; any wrong case fails the
//! test.
#![cfg(feature = "real-servers")]

mod faults;
mod support;

#[path = "fault_matrix_dovecot/cases.rs"]
mod cases;
#[path = "fault_matrix_dovecot/sink.rs"]
mod sink;

use faults::table;

#[test]
fn every_fault_against_dovecot_and_smtp_sink_ends_with_each_message_delivered_once() {
    let rows = cases::run_all();
    let problems = table::report(
        "Fault matrix: Dovecot + Postfix smtp-sink, popferry binary",
        "fault-matrix-dovecot.txt",
        &rows,
    );
    assert!(
        problems.is_empty(),
        "wrong outcomes:\n{}",
        problems.join("\n")
    );
}
