//! SIGKILL at random points, many times over: the README's one window.
//!
//! A process killed after the relay took a message and before the ledger
//! recorded it delivers that message again on the next run; popferry
//! keeps at most `UNRECORDED` messages in that state. This test kills the
//! real binary, mid-run, at least 200 times (each run moving a few hundred
//! messages from the in-process test server to the test relay), runs it
//! again cleanly after every kill, and counts what each kill made arrive
//! twice. The kill points are drawn from a seeded generator: the seed is
//! printed, and `POPFERRY_SIGKILL_SEED` replays it (the points are "after
//! the relay's k-th 250 of the run, plus d microseconds", so a replay hits
//! the same places give or take scheduling).

mod faults;
mod harness;
mod pop3_server;
mod smtp_receiver;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use popferry::poll::UNRECORDED;

use faults::table::{self, print_uncaptured};
use harness::{message, uid_of};
use pop3_server::{Extensions, Options, Pop3Server};
use smtp_receiver::{SmtpReceiver, Verdict};
use support::popferry::{popferry_command, run_popferry, KillOnDrop};

const KILLS: usize = 200;
/// Messages added before each killed run.
const MESSAGES: usize = 200;
/// The kill lands up to this long after the chosen 250.
const MAX_DELAY_US: u64 = 2_000;

/// splitmix64: small, seedable, good enough to scatter kill points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    match std::env::var("POPFERRY_SIGKILL_SEED") {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("POPFERRY_SIGKILL_SEED={text:?} is not a u64")),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos() as u64,
    }
}

fn write_config(dir: &Path, pop3: &Pop3Server, smtp: &SmtpReceiver) -> std::path::PathBuf {
    let text = format!(
        "state = \"popferry.db\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         timeout = \"5s\"\n\n[[account]]\nname = \"alice\"\nhost = \"127.0.0.1\"\nport = {}\n\
         tls = \"none\"\nusername = \"alice\"\npassword = \"secret\"\n\
         deliver_to = [\"alice@example.org\"]\ntimeout = \"5s\"\n",
        smtp.port(),
        pop3.port(),
    );
    let path = dir.join("popferry.toml");
    std::fs::write(&path, text).expect("write config");
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o600);
    std::fs::set_permissions(&path, mode).expect("chmod config");
    path
}

/// Runs popferry and SIGKILLs it once `accepted` reaches `at` (at once for
/// 0) and `delay` has passed. Returns false if it finished first.
fn killed_run(config: &Path, kill: &mpsc::Receiver<()>, at: usize, delay: Duration) -> bool {
    let child = popferry_command(config, &["fetch"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn popferry");
    let mut child = KillOnDrop(child);
    let limit = Instant::now() + Duration::from_secs(60);
    let mut signalled = at == 0;
    loop {
        if child.0.try_wait().expect("try_wait").is_some() {
            return false;
        }
        if signalled {
            std::thread::sleep(delay);
            child.0.kill().expect("SIGKILL");
            let status = child.0.wait().expect("reap");
            // It may have exited on its own during the delay.
            return status.code().is_none();
        }
        signalled = kill.recv_timeout(Duration::from_millis(1)).is_ok();
        assert!(Instant::now() < limit, "popferry ran for a minute");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_delivers_everything_and_repeats_at_most_the_unrecorded_window() {
    let seed = seed();
    print_uncaptured(&format!(
        "\nSIGKILL test: seed {seed} (replay with POPFERRY_SIGKILL_SEED={seed})\n"
    ));
    let mut rng = Rng(seed);
    let options = Options {
        extensions: Extensions {
            pipelining: true,
            ..Extensions::default()
        },
        ..Options::default()
    };
    let pop3 = Pop3Server::start(options).await;
    let smtp = SmtpReceiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &pop3, &smtp);

    // The judge counts 250s in the current run and rings at the chosen one.
    let accepted = Arc::new(AtomicUsize::new(0));
    let target = Arc::new(AtomicUsize::new(usize::MAX));
    let (ring, kill) = mpsc::channel();
    {
        let (accepted, target) = (accepted.clone(), target.clone());
        smtp.set_judge(move |_| {
            let n = accepted.fetch_add(1, Ordering::SeqCst) + 1;
            if n == target.load(Ordering::SeqCst) {
                let _ = ring.send(());
            }
            Verdict::Accept
        });
    }

    let started = Instant::now();
    let mut per_kill: BTreeMap<usize, usize> = BTreeMap::new();
    let (mut kills, mut finished_first, mut total) = (0, 0, 0);
    let mut problems = Vec::new();
    let mut round = 0;
    while kills < KILLS {
        round += 1;
        let uids: Vec<String> = (0..MESSAGES).map(|i| format!("r{round}-{i}")).collect();
        for uid in &uids {
            pop3.add(uid, &message(uid, ""));
        }
        let at = rng.below(MESSAGES as u64 + 1) as usize;
        let delay = Duration::from_micros(rng.below(MAX_DELAY_US));
        accepted.store(0, Ordering::SeqCst);
        target.store(at, Ordering::SeqCst);
        while kill.try_recv().is_ok() {}
        let (path, kill_ref) = (config.clone(), &kill);
        let was_killed = tokio::task::block_in_place(|| killed_run(&path, kill_ref, at, delay));
        target.store(usize::MAX, Ordering::SeqCst);

        let clean = tokio::task::block_in_place(|| run_popferry(&config, &["fetch"]));
        if clean.code != Some(0) {
            problems.push(format!("round {round}: clean run failed: {clean}"));
        }
        let mut times: HashMap<String, usize> = HashMap::new();
        for offer in smtp.accepted() {
            let uid = uid_of(&offer.data).expect("X-Test-Uid");
            if uid.starts_with(&format!("r{round}-")) {
                *times.entry(uid).or_default() += 1;
            }
        }
        let missing = uids.iter().filter(|u| !times.contains_key(*u)).count();
        let twice: usize = times.values().map(|n| n - 1).sum();
        if missing > 0 {
            problems.push(format!("round {round}: {missing} messages never delivered"));
        }
        if times.values().any(|n| *n > 2) {
            problems.push(format!("round {round}: a message came three times or more"));
        }
        if !pop3.uids().is_empty() {
            problems.push(format!(
                "round {round}: {} left on the server",
                pop3.uids().len()
            ));
        }
        if was_killed {
            kills += 1;
            total += twice;
            *per_kill.entry(twice).or_default() += 1;
        } else {
            finished_first += 1;
            if twice > 0 {
                problems.push(format!("round {round}: {twice} duplicates without a kill"));
            }
        }
    }

    let max = per_kill.keys().copied().max().unwrap_or(0);
    let mut text = format!(
        "SIGKILL test: {kills} kills ({finished_first} more runs finished before their kill), \
         {MESSAGES} messages per run, {:.1}s\n  duplicates per kill | kills\n",
        started.elapsed().as_secs_f64()
    );
    for (dups, count) in &per_kill {
        text += &format!("  {dups:>19} | {count:>5}\n");
    }
    text += &format!("  max {max} (window {UNRECORDED}), total {total}\n");
    table::publish("sigkill-window.txt", &text);
    assert!(problems.is_empty(), "seed {seed}:\n{}", problems.join("\n"));
    assert!(
        max <= UNRECORDED,
        "seed {seed}: a kill made {max} messages come twice, more than the README's {UNRECORDED}"
    );
}
