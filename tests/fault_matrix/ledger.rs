//! The ledger faults, through the `popferry` binary (so the error the
//! operator reads is what is checked) against the in-process test server
//! and relay: another process holding SQLite's write lock, and the disk
//! under the ledger full, each before the run and in the middle of it.
//!
//! "In the middle" is exact: the relay's judge brings the fault about
//! while it holds the first message, so the ledger fails on its first
//! commit while deliveries go on, the worst case for duplicates.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use popferry::poll::UNRECORDED;

use crate::faults::sqlite_lock::SqliteLock;
use crate::faults::table::Row;
use crate::faults::tmpfs::{fill_up, Tmpfs};
use crate::harness::message;
use crate::pop3_server::{Options, Pop3Server};
use crate::smtp_receiver::{SmtpReceiver, Verdict};
use crate::support::popferry::{run_popferry, RunOutput};

use super::outcome::{uids, Snapshot, ACCOUNT};

/// More than `UNRECORDED` + 1, so a run that delivers past the window
/// after its ledger failed shows as a duplicate too many.
const MESSAGES: usize = UNRECORDED + 4;

/// What goes wrong with the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Locked,
    DiskFull,
}

/// The fault held while it lasts; dropping it (or `clear`) ends it.
#[derive(Debug)]
enum Held {
    Lock(SqliteLock),
    Filler(PathBuf),
}

impl Held {
    fn start(fault: Fault, ledger: &Path, disk: Option<&Path>) -> Self {
        match (fault, disk) {
            (Fault::Locked, _) => Held::Lock(SqliteLock::acquire(ledger)),
            (Fault::DiskFull, Some(disk)) => Held::Filler(fill_up(disk)),
            (Fault::DiskFull, None) => unreachable!("disk-full cases mount a tmpfs"),
        }
    }

    fn clear(self) {
        match self {
            Held::Lock(lock) => lock.release(),
            Held::Filler(path) => std::fs::remove_file(path).expect("remove filler"),
        }
    }
}

/// A popferry configuration for the test servers, in its own folder.
struct Setup {
    _dir: tempfile::TempDir,
    config: PathBuf,
    ledger: PathBuf,
}

fn setup(pop3: &Pop3Server, smtp: &SmtpReceiver, state_dir: &Path) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = state_dir.join("popferry.db");
    let text = format!(
        "state = {ledger:?}\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         timeout = \"5s\"\n\n[[account]]\nname = \"{ACCOUNT}\"\nhost = \"127.0.0.1\"\nport = {}\n\
         tls = \"none\"\nusername = \"alice\"\npassword = \"secret\"\n\
         deliver_to = [\"alice@example.org\"]\ntimeout = \"5s\"\n",
        smtp.port(),
        pop3.port(),
    );
    let config = dir.path().join("popferry.toml");
    std::fs::write(&config, text).expect("write config");
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o600);
    std::fs::set_permissions(&config, mode).expect("chmod config");
    Setup {
        _dir: dir,
        config,
        ledger,
    }
}

async fn fetch(config: &Path) -> RunOutput {
    let config = config.to_owned();
    tokio::task::spawn_blocking(move || run_popferry(&config, &["fetch"]))
        .await
        .expect("popferry run")
}

pub async fn run_all() -> Vec<Row> {
    let mut rows = Vec::new();
    for fault in [Fault::Locked, Fault::DiskFull] {
        for mid_run in [false, true] {
            rows.push(run(fault, mid_run).await);
        }
    }
    rows
}

async fn run(fault: Fault, mid_run: bool) -> Row {
    let name = match (fault, mid_run) {
        (Fault::Locked, false) => "ledger locked by another process",
        (Fault::Locked, true) => "ledger locked mid-run",
        (Fault::DiskFull, false) => "ledger disk full",
        (Fault::DiskFull, true) => "ledger disk full mid-run",
    };
    let mut row = Row::new(name, MESSAGES);
    let pop3 = Pop3Server::start(Options::default()).await;
    let smtp = SmtpReceiver::start().await;
    let disk = (fault == Fault::DiskFull).then(|| Tmpfs::mount("1m"));
    let scratch = tempfile::tempdir().expect("tempdir");
    let state_dir = disk.as_ref().map_or(scratch.path(), Tmpfs::path);
    let setup = setup(&pop3, &smtp, state_dir);
    // The ledger exists, as it does for any run but the very first.
    let warm_up = fetch(&setup.config).await;
    row.check(warm_up.code == Some(0), || format!("first run: {warm_up}"));

    let held: Arc<Mutex<Option<Held>>> = Arc::default();
    if mid_run {
        let (held, ledger) = (held.clone(), setup.ledger.clone());
        let disk_path = disk.as_ref().map(|d| d.path().to_owned());
        smtp.set_judge(move |_| {
            let mut held = held.lock().expect("held");
            if held.is_none() {
                *held = Some(Held::start(fault, &ledger, disk_path.as_deref()));
            }
            Verdict::Accept
        });
    } else {
        let disk_path = disk.as_ref().map(Tmpfs::path);
        *held.lock().expect("held") = Some(Held::start(fault, &setup.ledger, disk_path));
    }
    let all = uids(MESSAGES);
    for uid in &all {
        pop3.add(uid, &message(uid, ""));
    }

    let faulted = fetch(&setup.config).await;
    row.faulted_run = match faulted.code {
        Some(code) => format!("exit {code}"),
        None => "killed".into(),
    };
    row.said = faulted
        .text()
        .lines()
        .find(|line| line.contains("FAILED") || line.starts_with("popferry:"))
        .map(str::to_owned);
    let text = faulted.text();
    let (word, ledger_name) = (
        if fault == Fault::Locked {
            "locked"
        } else {
            "full"
        },
        setup.ledger.display().to_string(),
    );
    // A ledger that cannot be opened means nothing ran: a setup error (2).
    // Once the poll is under way, the account failed (1).
    let code = if mid_run { 1 } else { 2 };
    row.check(
        faulted.code == Some(code) && text.contains(word) && text.contains(&ledger_name),
        || {
            format!(
                "the run should exit {code} saying the ledger {ledger_name} is {word}:\n{faulted}"
            )
        },
    );
    smtp.set_judge(|_| Verdict::Accept);
    if let Some(held) = held.lock().expect("held").take() {
        held.clear();
    } else {
        row.problems.push("the fault never happened".into());
    }
    let after = Snapshot::take(&pop3, &smtp, &setup.ledger, None);
    after.check_invariants(&all, "after the faulted run", true, &mut row);
    row.check(after.on_server.len() == MESSAGES, || {
        format!("without a QUIT nothing may go: {:?}", after.on_server)
    });
    if !mid_run {
        row.check(after.accepted.is_empty(), || {
            format!("delivered without a ledger: {:?}", after.accepted)
        });
    }

    let clean = fetch(&setup.config).await;
    row.check(clean.code == Some(0), || format!("clean run: {clean}"));
    // Whatever the relay took and the ledger could not record comes again:
    // the README's window, no more.
    let allowed = if mid_run { UNRECORDED } else { 0 };
    Snapshot::take(&pop3, &smtp, &setup.ledger, None).check_final(&all, allowed, &mut row);
    drop(disk);
    row
}
