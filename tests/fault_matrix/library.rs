//! The cases driven through the library against the in-process test
//! server and test relay: the link dropped at each POP3 command (SLEE,
//! WAKE, CORE and QAUT included, through the daemon's pool) and every
//! relay refusal.
//! Each case: five messages, the fault on the first poll, then a clean
//! poll (the daemon's next one for the pooled cases), then the checks.

use popferry::deliver::Relay;
use popferry::ledger::PollReport;
use popferry::poll::{PollError, PollOptions};

use crate::faults::table::Row;
use crate::harness::Rig;
use crate::pop3_server::{Extensions, Fault, Options};
use crate::smtp_receiver::Verdict;

use super::outcome::{uids, Snapshot};

const MESSAGES: usize = 5;

/// How the fault is brought about.
#[derive(Debug, Clone)]
enum Arm {
    /// The test server misbehaves once.
    Server(Fault),
    /// Like `Server`, but on the connection kept by an earlier, empty
    /// poll (its WAKE, its CORE, or the login on it after QAUT).
    Parked(Fault),
    /// The relay answers every end of DATA so.
    Relay(Verdict),
    /// Nothing listens on the relay's port.
    RelayUnreachable,
}

/// The extension the pooled cases' server offers to keep a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Sleep,
    Core,
    Qaut,
}

/// One row of the matrix and what its faulted poll must leave behind.
#[derive(Debug, Clone)]
struct Case {
    fault: &'static str,
    arm: Arm,
    /// Polls through the daemon's pool, on a server offering this.
    pooled: Option<Keep>,
    quarantine: bool,
    /// The faulted poll fails (rather than reporting deferrals).
    fails: bool,
    /// Messages the server still holds after the faulted poll.
    left: usize,
    /// A word the failed poll's error must contain.
    says: &'static str,
}

fn case(fault: &'static str, arm: Arm, fails: bool, left: usize, says: &'static str) -> Case {
    Case {
        fault,
        arm,
        pooled: None,
        quarantine: false,
        fails,
        left,
        says,
    }
}

fn pooled(case: Case) -> Case {
    kept_by(Keep::Sleep, case)
}

fn kept_by(keep: Keep, mut case: Case) -> Case {
    case.pooled = Some(keep);
    case
}

fn cases() -> Vec<Case> {
    use Arm::{Parked, Relay, RelayUnreachable, Server};
    let n = MESSAGES;
    let close = |verb| Server(Fault::CloseAfter { verb });
    let refuse = |code| Relay(Verdict::Refuse(code));
    vec![
        case("link drop after USER", close("USER"), true, n, "USER"),
        case("link drop after PASS", close("PASS"), true, n, "PASS"),
        case("link drop after UIDL", close("UIDL"), true, n, "UIDL"),
        case("link drop after LIST", close("LIST"), true, n, "LIST"),
        case(
            "link drop mid-RETR (3rd)",
            Server(Fault::DropMidRetr { nth: 3 }),
            true,
            n,
            "RETR",
        ),
        case("link drop after DELE", close("DELE"), true, n, "DELE"),
        case("QUIT lost before commit", close("QUIT"), true, n, "QUIT"),
        case(
            "QUIT reply lost after commit",
            Server(Fault::LostQuitReply),
            true,
            0,
            "QUIT",
        ),
        pooled(case(
            "SLEE lost before commit",
            close("SLEE"),
            true,
            n,
            "SLEE",
        )),
        pooled(case(
            "SLEE reply lost after commit",
            Server(Fault::LostSleeReply),
            true,
            0,
            "SLEE",
        )),
        pooled(case(
            "link drop after SLEE +OK",
            Server(Fault::DropAfterSlee),
            false,
            0,
            "",
        )),
        pooled(case(
            "link drop after WAKE",
            Parked(Fault::CloseAfter { verb: "WAKE" }),
            false,
            0,
            "",
        )),
        pooled(case(
            "WAKE refused [SYS/TEMP]",
            Parked(Fault::RefuseWake { code: "SYS/TEMP" }),
            false,
            0,
            "",
        )),
        kept_by(
            Keep::Core,
            case("CORE lost before commit", close("CORE"), true, n, "CORE"),
        ),
        kept_by(
            Keep::Core,
            case("CORE refused", Server(Fault::RefuseCore), false, 0, ""),
        ),
        kept_by(
            Keep::Core,
            case(
                "link drop after the next CORE",
                Parked(Fault::CloseAfter { verb: "CORE" }),
                false,
                0,
                "",
            ),
        ),
        kept_by(
            Keep::Core,
            case("next CORE refused", Parked(Fault::RefuseCore), false, 0, ""),
        ),
        kept_by(
            Keep::Qaut,
            case("QAUT lost before commit", close("QAUT"), true, n, "QAUT"),
        ),
        kept_by(
            Keep::Qaut,
            case(
                "QAUT reply lost after commit",
                Server(Fault::LostQautReply),
                true,
                0,
                "QAUT",
            ),
        ),
        kept_by(
            Keep::Qaut,
            case(
                "link drop at login after QAUT",
                Parked(Fault::CloseAfter { verb: "USER" }),
                false,
                0,
                "",
            ),
        ),
        case(
            "relay drops link after DATA",
            Relay(Verdict::HangUp),
            false,
            n,
            "",
        ),
        // 421 is the relay closing: the poll stops there too.
        case(
            "relay 421 + disconnect",
            refuse(421),
            true,
            n,
            "421 4.0.0 refused by the receiver",
        ),
        case("relay 451", Relay(Verdict::Defer), false, n, ""),
        case("relay 452", refuse(452), false, n, ""),
        case("relay 550", refuse(550), false, n, ""),
        case("relay 552", refuse(552), false, n, ""),
        case("relay 554", Relay(Verdict::Reject), false, n, ""),
        Case {
            quarantine: true,
            ..case(
                "relay 554, quarantine_dir set",
                Relay(Verdict::Reject),
                false,
                0,
                "",
            )
        },
        // The poll fails at the first message instead of deferring each.
        case(
            "relay unreachable",
            RelayUnreachable,
            true,
            n,
            "cannot connect to SMTP relay",
        ),
    ]
}

/// Runs every case, one after the other.
pub async fn run_all() -> Vec<Row> {
    let mut rows = Vec::new();
    for case in cases() {
        rows.push(run(case).await);
    }
    rows
}

fn server_options(pooled: Option<Keep>) -> Options {
    // SLEE, CORE or QAUT, not DELI, commits the deletions, so their
    // faults matter.
    let extensions = Extensions {
        sleep_wake: pooled == Some(Keep::Sleep),
        core: pooled == Some(Keep::Core),
        qaut: pooled == Some(Keep::Qaut),
        ..Extensions::default()
    };
    Options {
        extensions,
        ..Options::default()
    }
}

async fn poll(
    rig: &Rig,
    daemon: &popferry::scheduler::Shared,
    pooled: bool,
    relay: &Relay,
) -> Result<PollReport, PollError> {
    let retry = PollOptions {
        retry_rejected: true,
        ..PollOptions::default()
    };
    if pooled {
        rig.pooled_poll(daemon).await
    } else {
        popferry::poll::poll(&rig.account, &rig.ledger, relay, &retry).await
    }
}

/// A relay on a loopback port nothing listens on.
async fn unreachable_relay(rig: &Rig) -> Relay {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let mut config = (*rig.account.smtp).clone();
    config.port = port;
    Relay::new(&config, "test").expect("relay")
}

async fn run(case: Case) -> Row {
    let extra = if case.quarantine {
        "quarantine_dir = \"quarantine\""
    } else {
        ""
    };
    let rig = Rig::with_server(server_options(case.pooled), extra).await;
    let ledger = rig.dir.path().join("ledger.db");
    let folder = rig.dir.path().join("quarantine").join("alice");
    let quarantine = case.quarantine.then_some(folder.as_path());
    let daemon = rig.daemon();
    let all = uids(MESSAGES);
    let mut row = Row::new(case.fault, MESSAGES);
    let mut relay = rig.relay.clone();
    match &case.arm {
        Arm::Server(fault) => rig.pop3.set_fault(Some(fault.clone())),
        Arm::Parked(fault) => {
            let parked = rig.pooled_poll(&daemon).await;
            row.check(parked.is_ok(), || format!("parking poll: {parked:?}"));
            let kept = if case.pooled == Some(Keep::Sleep) {
                rig.pop3.sleeping_connections()
            } else {
                rig.pop3.open_connections()
            };
            row.check(kept == 1, || {
                "the empty poll did not keep its connection".into()
            });
            rig.pop3.set_fault(Some(fault.clone()));
        }
        Arm::Relay(verdict) => {
            let verdict = *verdict;
            rig.smtp.set_judge(move |_| verdict);
        }
        Arm::RelayUnreachable => relay = unreachable_relay(&rig).await,
    }
    for uid in &all {
        rig.add(uid, "");
    }

    let first = poll(&rig, &daemon, case.pooled.is_some(), &relay).await;
    row.faulted_run = match &first {
        Ok(r) => format!(
            "ok: {} delivered, {} deferred, {} rejected",
            r.delivered, r.deferred, r.rejected
        ),
        Err(_) => "failed".into(),
    };
    row.check(first.is_err() == case.fails, || {
        format!(
            "faulted poll: expected failure {}, got {first:?}",
            case.fails
        )
    });
    if let Err(e) = &first {
        row.check(e.to_string().contains(case.says), || {
            format!("error should name {}: {e}", case.says)
        });
    }
    if matches!(case.arm, Arm::Server(_) | Arm::Parked(_)) {
        row.check(rig.pop3.faults_fired() == 1, || {
            "the fault never fired".into()
        });
    }
    let after = Snapshot::take(&rig.pop3, &rig.smtp, &ledger, quarantine);
    after.check_invariants(&all, "after the faulted poll", true, &mut row);
    row.check(after.on_server.len() == case.left, || {
        format!(
            "after the faulted poll the server holds {:?}, expected {} messages",
            after.on_server, case.left
        )
    });
    row.check(after.duplicates() == 0, || {
        format!("duplicates in the faulted poll: {:?}", after.accepted)
    });

    rig.pop3.set_fault(None);
    rig.smtp.set_judge(|_| Verdict::Accept);
    let clean = poll(&rig, &daemon, case.pooled.is_some(), &rig.relay).await;
    row.check(clean.is_ok(), || format!("clean poll: {clean:?}"));
    Snapshot::take(&rig.pop3, &rig.smtp, &ledger, quarantine).check_final(&all, 0, &mut row);
    let settle = poll(&rig, &daemon, case.pooled.is_some(), &rig.relay).await;
    row.check(settle.as_ref().is_ok_and(|r| r.delivered == 0), || {
        format!("a further poll should find nothing to do: {settle:?}")
    });
    // The daemon skips the listing when WAKE says nothing arrived, so only
    // a fresh login's listing prunes.
    let rows = crate::faults::ledger_rows::states(&ledger, super::outcome::ACCOUNT);
    row.check(case.pooled.is_some() || rows.is_empty(), || {
        format!("rows of messages gone from the server outlived a further poll: {rows:?}")
    });
    row
}
