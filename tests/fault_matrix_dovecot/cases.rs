//! The cases against Dovecot and smtp-sink, run with the real binary. POP3
//! faults go through the link proxy (plain POP3, USER/PASS so those two
//! commands are on the wire); relay faults are smtp-sinks told to act
//! them out. Each case: five messages, the faulted run, a clean run over
//! POP3S to the accepting sink (`--retry-rejected`, so rejected messages
//! go too), a further run that must find nothing to do.

use std::time::Duration;

use crate::faults::ledger_rows::{self, count};
use crate::faults::table::Row;
use crate::support::link_proxy::{Cut, CutAt, LinkProxy};
use crate::support::mail::messages_of_size;
use crate::support::popferry::{AccountConfig, TlsMode};
use crate::support::real::env;
use crate::support::scenario::Scenario;

use super::sink::{free_port, Sink};

const MESSAGES: usize = 5;
const ACCOUNT: &str = "fm";

/// The relay of the faulted run.
#[derive(Debug, Clone, Copy)]
enum Relay {
    Accepting,
    /// The shared sink that answers 451 to the final dot.
    Tempfail,
    /// The shared sink that answers 554 to the final dot.
    Permfail,
    /// A sink of our own with these options.
    Sink(&'static [&'static str]),
    Unreachable,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    fault: &'static str,
    cut: Option<CutAt>,
    relay: Relay,
    quarantine: bool,
    /// Exit status 1 expected (a failed poll) rather than 0.
    fails: bool,
    /// Messages Dovecot holds after the faulted run.
    left: usize,
    /// A word the faulted run's output must contain.
    says: &'static str,
}

fn link(fault: &'static str, verb: &'static str, nth: usize, cut: Cut, left: usize) -> Case {
    Case {
        fault,
        cut: Some(CutAt::new(verb, nth, cut)),
        relay: Relay::Accepting,
        quarantine: false,
        fails: true,
        left,
        says: verb,
    }
}

fn relay(fault: &'static str, relay: Relay) -> Case {
    Case {
        fault,
        cut: None,
        relay,
        quarantine: false,
        fails: false,
        left: MESSAGES,
        says: "",
    }
}

fn cases() -> Vec<Case> {
    use Cut::{BeforeCommand, BeforeReply, MidReply};
    let n = MESSAGES;
    vec![
        link("link drop after USER", "USER", 1, BeforeReply, n),
        link("link drop after PASS", "PASS", 1, BeforeReply, n),
        link("link drop after UIDL", "UIDL", 1, BeforeReply, n),
        link("link drop after LIST", "LIST", 1, BeforeReply, n),
        link("link drop mid-RETR (3rd)", "RETR", 3, MidReply, n),
        link("link drop after DELE", "DELE", 1, BeforeReply, n),
        link("QUIT lost before commit", "QUIT", 1, BeforeCommand, n),
        link("QUIT reply lost after commit", "QUIT", 1, BeforeReply, 0),
        relay("relay drops link after DATA", Relay::Sink(&["-q", "."])),
        // 421 is the relay closing: the run stops there too.
        Case {
            fails: true,
            says: "said to end of DATA: 421",
            ..relay("relay 421 + disconnect", Relay::Sink(&["-Q", "."]))
        },
        relay("relay 451", Relay::Tempfail),
        relay(
            "relay 452",
            Relay::Sink(&["-r", ".", "-b", "452 4.3.1 insufficient system storage"]),
        ),
        relay(
            "relay 550",
            Relay::Sink(&["-f", ".", "-B", "550 5.7.1 refused by policy"]),
        ),
        relay(
            "relay 552",
            Relay::Sink(&["-f", ".", "-B", "552 5.3.4 message too big"]),
        ),
        relay("relay 554", Relay::Permfail),
        Case {
            quarantine: true,
            left: 0,
            ..relay("relay 554, quarantine_dir set", Relay::Permfail)
        },
        // The run fails at the first message instead of deferring each.
        Case {
            fails: true,
            says: "cannot connect to SMTP relay",
            ..relay("relay unreachable", Relay::Unreachable)
        },
    ]
}

pub fn run_all() -> Vec<Row> {
    cases().into_iter().map(run).collect()
}

fn run(case: Case) -> Row {
    let mut row = Row::new(case.fault, MESSAGES);
    let mut s = Scenario::new(ACCOUNT, |tag| messages_of_size(tag, MESSAGES, 3_000));
    let ledger = s.config.dir.path().join("popferry.db");
    let proxy = case
        .cut
        .map(|cut| LinkProxy::start(env().pop3_port, Some(cut)));
    if let Some(proxy) = &proxy {
        let account = s.account();
        account.tls = TlsMode::None;
        account.ca_file = None;
        account.port = proxy.port();
        account.auth = Some("user".into());
    }
    let mut _sink = None;
    s.config.smtp_port = match case.relay {
        Relay::Accepting => env().smtp_port,
        Relay::Tempfail => env().smtp_tempfail_port,
        Relay::Permfail => env().smtp_permfail_port,
        Relay::Sink(options) => _sink.insert(Sink::start(options)).port,
        Relay::Unreachable => free_port(),
    };
    if case.quarantine {
        s.account().quarantine_dir = Some("quarantine".into());
    }

    let first = s.config.fetch();
    // "fm: ok in 0.05s: 5 listed, 0 delivered, ..." -> "exit 0: 0 delivered, ..."
    let counts = first
        .stdout
        .lines()
        .next()
        .and_then(|l| l.split_once("s: "));
    row.faulted_run = match (first.code, counts) {
        (Some(0), Some((_, counts))) => format!("exit 0: {}", counts.replace("5 listed, ", "")),
        (code, _) => format!(
            "exit {}",
            code.map_or("by signal".into(), |c| c.to_string())
        ),
    };
    row.check(first.code == Some(i32::from(case.fails)), || {
        format!(
            "faulted run should exit {}:\n{first}",
            i32::from(case.fails)
        )
    });
    row.check(first.text().contains(case.says), || {
        format!("the output should name {}:\n{first}", case.says)
    });
    if let Some(proxy) = &proxy {
        row.check(proxy.has_cut(), || "the proxy never cut the link".into());
    }
    let left = s.mailbox.wait_for_count(case.left, Duration::from_secs(5));
    row.check(left == case.left, || {
        format!(
            "after the faulted run Dovecot holds {left}, expected {}",
            case.left
        )
    });
    let sent = s.deliveries();
    let (delivered, twice) = tally(&sent);
    let rows = ledger_rows::states(&ledger, ACCOUNT);
    let recorded = count(&rows, "delivered") + count(&rows, "deleted");
    row.check(twice == 0, || {
        format!("duplicates in the faulted run: {sent:?}")
    });
    // Quarantined rows turn "deleted" at QUIT, like delivered ones.
    let quarantined_now = quarantined(&s);
    row.check(recorded == delivered + quarantined_now, || {
        format!(
            "{delivered} reached the sink, {quarantined_now} the quarantine, \
             but the ledger records {recorded}: {rows:?}"
        )
    });
    row.check(MESSAGES - left <= delivered + quarantined_now, || {
        format!(
            "{} left Dovecot, {delivered} reached the sink",
            MESSAGES - left
        )
    });

    // Clean: POP3S straight to Dovecot, the accepting sink.
    let clean_account = AccountConfig::new(ACCOUNT, &s.mailbox, &s.rcpt);
    s.config.accounts[0] = AccountConfig {
        quarantine_dir: s.account().quarantine_dir.clone(),
        ..clean_account
    };
    s.config.smtp_port = env().smtp_port;
    let clean = s.config.run(&["fetch", "--retry-rejected"]);
    row.check(clean.code == Some(0), || format!("clean run:\n{clean}"));
    let sent = s.deliveries();
    let (delivered, twice) = tally(&sent);
    let quarantined = quarantined(&s);
    row.delivered = delivered + quarantined;
    row.duplicates = twice;
    row.left_on_server = s.mailbox.count();
    row.check(row.delivered == MESSAGES && twice == 0, || {
        format!("after the clean run: {sent:?}, {quarantined} quarantined")
    });
    row.check(row.left_on_server == 0, || {
        "Dovecot still holds mail".into()
    });
    let rows = ledger_rows::states(&ledger, ACCOUNT);
    row.check(rows.values().all(|s| s == "deleted"), || {
        format!("ledger rows not settled as deleted: {rows:?}")
    });

    let settle = s.config.fetch();
    row.check(
        settle.code == Some(0) && settle.stdout.contains(" 0 delivered"),
        || format!("a further run should find nothing to do:\n{settle}"),
    );
    let rows = ledger_rows::states(&ledger, ACCOUNT);
    row.check(rows.is_empty(), || {
        format!("rows of messages gone from Dovecot outlived a further run: {rows:?}")
    });
    row
}

/// (distinct messages delivered, deliveries beyond the first).
fn tally(sent: &std::collections::HashMap<String, usize>) -> (usize, usize) {
    let delivered = sent.values().filter(|n| **n > 0).count();
    let twice = sent.values().map(|n| n.saturating_sub(1)).sum();
    (delivered, twice)
}

fn quarantined(s: &Scenario) -> usize {
    let folder = s.config.dir.path().join("quarantine").join(ACCOUNT);
    std::fs::read_dir(folder).map_or(0, Iterator::count)
}
