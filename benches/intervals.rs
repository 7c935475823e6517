//! Fair under load, and adaptive versus fixed intervals (issue 15, parts
//! 3 and 4): the real daemon (`popferry run`, binary from `POPFERRY`)
//! against the test suite's POP3 server and an SMTP receiver, all on
//! loopback. Not a test; `--smoke` runs both scenarios tiny with every
//! check on. `cargo bench --bench intervals -- --help`; bench/README.md.

#[path = "intervals/adaptive.rs"]
mod adaptive;
#[path = "intervals/daemon.rs"]
mod daemon;
#[path = "intervals/fair.rs"]
mod fair;
#[path = "../tests/pop3_server/mod.rs"]
mod pop3_server;
#[path = "intervals/proxy.rs"]
mod proxy;
#[path = "intervals/results.rs"]
mod results;
#[path = "intervals/sink.rs"]
mod sink;
#[path = "intervals/stats.rs"]
mod stats;

use std::path::PathBuf;
use std::time::{Duration, Instant};

const USAGE: &str = "cargo bench --bench intervals -- [--smoke] [--write-results] \
                     [--only fair|adaptive] [--seed N]\n\
                     env: POPFERRY (binary), POPFERRY_INTERVALS_DIR (kept state)";

#[derive(Debug)]
struct Args {
    smoke: bool,
    write_results: bool,
    fair: bool,
    adaptive: bool,
    seed: u64,
}

fn args() -> Args {
    let mut args = Args {
        smoke: false,
        write_results: false,
        fair: true,
        adaptive: true,
        seed: 15,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        match arg.as_str() {
            "--smoke" => args.smoke = true,
            "--write-results" => args.write_results = true,
            "--only" => match given.next().as_deref() {
                Some("fair") => args.adaptive = false,
                Some("adaptive") => args.fair = false,
                _ => exit_usage(),
            },
            "--seed" => {
                args.seed = given
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| exit_usage());
            }
            // cargo bench passes --bench to every bench binary.
            "--bench" => {}
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => exit_usage(),
        }
    }
    args
}

fn exit_usage() -> ! {
    eprintln!("{USAGE}");
    std::process::exit(2)
}

fn fair_params(smoke: bool) -> fair::Params {
    if smoke {
        fair::Params {
            accounts: 6,
            interval: Duration::from_secs(1),
            slow_delay: Duration::from_millis(150),
            run: Duration::from_secs(4),
            max_polls: 2,
            per_server: 1,
        }
    } else {
        fair::Params {
            accounts: 100,
            interval: Duration::from_secs(10),
            slow_delay: Duration::from_millis(300),
            run: Duration::from_secs(75),
            max_polls: 8,
            per_server: 4,
        }
    }
}

fn adaptive_params(smoke: bool, seed: u64) -> adaptive::Params {
    if smoke {
        adaptive::Params {
            accounts: 40,
            receiving: 2,
            scale: 60.0,
            interval: Duration::from_secs(1),
            interval_max: Duration::from_secs(3),
            mean_gap: Duration::from_secs(1),
            arrivals: Duration::from_secs(3),
            seed,
            max_polls: 8,
        }
    } else {
        adaptive::Params {
            accounts: 1000,
            receiving: 50,
            scale: 30.0,
            interval: Duration::from_secs(2),
            interval_max: Duration::from_secs(60),
            mean_gap: Duration::from_secs(30),
            arrivals: Duration::from_secs(240),
            seed,
            max_polls: 32,
        }
    }
}

fn main() {
    let args = args();
    let kept = std::env::var_os("POPFERRY_INTERVALS_DIR").map(PathBuf::from);
    let temp = tempfile::tempdir().expect("temp dir");
    let root = kept.unwrap_or_else(|| temp.path().to_owned());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let started = Instant::now();
    let mut sections = Vec::new();
    let pacing = daemon::pacing_lines();
    if args.fair {
        let params = fair_params(args.smoke);
        let runs = runtime.block_on(async {
            let base = fair::run(&params, false, &root.join("fair-fast"), &pacing).await;
            let slow = fair::run(&params, true, &root.join("fair-slow"), &pacing).await;
            vec![base, slow]
        });
        let table = fair::table(&params, &runs);
        println!("fair under load\n{table}");
        fair::check(&runs);
        sections.push(("Fair under load", table));
    }
    if args.adaptive {
        let params = adaptive_params(args.smoke, args.seed);
        let with_max = daemon::knows_interval_max();
        let runs = runtime.block_on(async {
            let mut runs = vec![adaptive::run(&params, false, &root.join("fixed"), &pacing).await];
            if with_max {
                runs.push(adaptive::run(&params, true, &root.join("adaptive"), &pacing).await);
            }
            runs
        });
        let mut table = adaptive::table(&params, &runs);
        if !with_max {
            table += "\nThis build has no `poll_interval_max`: the fixed run only.\n";
        }
        println!("adaptive versus fixed\n{table}");
        sections.push(("Adaptive versus fixed intervals", table));
    }
    let took = started.elapsed();
    println!("took {:.0} s", took.as_secs_f64());
    if args.write_results {
        results::write(&sections, took, args.seed);
    }
}
