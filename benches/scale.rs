//! popferry with thousands of accounts on one machine (issue 15): the real
//! daemon (`popferry run`, binary from `POPFERRY`) against the test POP3
//! server with `any_user` behind TLS, mail trickling in. Reports start-up,
//! memory, CPU per poll, reload time and the highest poll rate as a
//! markdown table; not a test. `cargo bench --bench scale -- --help`;
//! bench/README.md says what each figure means.

#[path = "scale/daemon.rs"]
mod daemon;
#[path = "../tests/pop3_server/mod.rs"]
mod pop3_server;
#[path = "scale/report.rs"]
mod report;
#[path = "scale/scenario.rs"]
mod scenario;
#[path = "scale/server.rs"]
mod server;
#[path = "../tests/smtp_receiver/mod.rs"]
mod smtp_receiver;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use scenario::{Run, Scenario};

const USAGE: &str = "cargo bench --bench scale -- [--smoke] [--accounts \"1000 10000\"] \
[--scenarios \"fresh idle pooled rate-fresh rate-pooled\"] [--window SECS] \
[--max-logins-per-second N] [--write-results]";

/// So 10,000 parked accounts fit in each of popferry and the server child,
/// where the hard limit allows (often 20,000 already, or root may raise it).
const OPEN_FILES: u64 = 65_536;

fn main() {
    if server::is_server_role() {
        server::serve();
        return;
    }
    let options = report::Options::parse(std::env::args().skip(1)).unwrap_or_else(|e| {
        eprintln!("{e}\nusage: {USAGE}");
        std::process::exit(2)
    });
    raise_open_files();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let binary = std::env::var_os("POPFERRY")
        .map_or_else(|| root.join("target/release/popferry"), PathBuf::from);
    let dir = std::env::var_os("POPFERRY_SCALE_DIR_ROOT")
        .map_or_else(|| PathBuf::from("/var/tmp/scale-bench"), PathBuf::from);
    let run = Run {
        binary,
        dir,
        window: options.window,
        drain: options.smoke,
        max_logins_per_second: options.max_logins_per_second,
    };
    let started = Instant::now();
    let mut results = Vec::new();
    for &accounts in &options.accounts {
        for name in &options.scenarios {
            let scenario = options.scenario(name);
            eprintln!("scale: {} with {accounts} accounts", scenario.name);
            let figures = scenario::run(&scenario, accounts, &run);
            for failure in &figures.failures {
                eprintln!("scale: FAILED {} {accounts}: {failure}", scenario.name);
            }
            results.push((scenario, accounts, figures));
        }
    }
    let table = report::table(&options, &results);
    println!("{table}");
    let elapsed = started.elapsed();
    println!("whole run: {:.0} s", elapsed.as_secs_f64());
    if options.write_results {
        report::write_results(&root, &run.binary, &table, elapsed);
    }
    if results
        .iter()
        .any(|(_, _, figures)| !figures.failures.is_empty())
    {
        std::process::exit(1);
    }
    std::fs::remove_dir_all(&run.dir).ok();
}

/// Raises this process's open-file limit (the children inherit it) with
/// util-linux's prlimit, as far as the hard limit, or beyond it as root.
fn raise_open_files() {
    let pid = std::process::id().to_string();
    let wanted = format!("--nofile={OPEN_FILES}:{OPEN_FILES}");
    let raised = Command::new("prlimit")
        .args(["--pid", &pid, &wanted])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !raised {
        eprintln!("scale: RLIMIT_NOFILE stays as it was (see `ulimit -n`)");
    }
}

/// The scenarios by name, for [`report::Options::scenario`].
fn scenario_named(name: &'static str, interval: Duration) -> Scenario {
    let (pooled, steady, reload) = match name {
        "fresh" => (false, true, true),
        "idle" => (false, false, false),
        "pooled" => (true, true, false),
        // Whether every account gets its turn is what these measure.
        "rate-fresh" => (false, false, false),
        "rate-pooled" => (true, false, false),
        _ => unreachable!("scenario names are checked when parsed"),
    };
    Scenario {
        name,
        interval,
        pooled,
        steady,
        reload,
    }
}
