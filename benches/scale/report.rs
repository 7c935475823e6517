//! The bench's options, its markdown table, and bench/SCALE.md.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::scenario::{Figures, Scenario};

pub const SCENARIOS: [&str; 5] = ["fresh", "idle", "pooled", "rate-fresh", "rate-pooled"];

#[derive(Debug, Clone)]
pub struct Options {
    pub smoke: bool,
    pub accounts: Vec<usize>,
    pub scenarios: Vec<&'static str>,
    pub window: Duration,
    pub max_logins_per_second: Option<u32>,
    pub write_results: bool,
}

impl Options {
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            smoke: false,
            accounts: vec![1000, 10_000],
            scenarios: SCENARIOS.to_vec(),
            window: Duration::from_secs(60),
            // 10,000 accounts polled every 2 minutes log in 83 times a
            // second: above popferry's default of 10, as for any provider
            // that agreed to a big host's traffic.
            max_logins_per_second: Some(200),
            write_results: false,
        };
        let (mut accounts, mut window) = (None, None);
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                // What cargo bench passes to every bench binary.
                "--bench" => {}
                "--smoke" => options.smoke = true,
                "--write-results" => options.write_results = true,
                "--accounts" => accounts = Some(numbers(&value()?)?),
                "--window" => window = Some(Duration::from_secs(number(&value()?)?)),
                "--max-logins-per-second" => {
                    options.max_logins_per_second = Some(number(&value()?)?);
                }
                "--scenarios" => {
                    let names = value()?;
                    options.scenarios = (names.split_whitespace())
                        .map(|name| {
                            SCENARIOS
                                .into_iter()
                                .find(|known| *known == name)
                                .ok_or(format!("no scenario {name:?}: {SCENARIOS:?}"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if options.smoke {
            options.accounts = vec![50];
            options.window = Duration::from_secs(1);
        }
        options.accounts = accounts.unwrap_or(options.accounts);
        options.window = window.unwrap_or(options.window);
        if options.scenarios.is_empty() || options.accounts.is_empty() {
            return Err("nothing to run".into());
        }
        Ok(options)
    }

    /// The intervals, or a few seconds for the smoke run.
    pub fn interval(&self, scenario: &str) -> Duration {
        let seconds = match (scenario, self.smoke) {
            ("idle", true) => 2,
            (_, true) => 1,
            ("fresh" | "pooled", false) => 120,
            ("idle", false) => 300,
            (_, false) => 10,
        };
        Duration::from_secs(seconds)
    }

    pub fn scenario(&self, name: &'static str) -> Scenario {
        crate::scenario_named(name, self.interval(name))
    }
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("not a number: {text:?}"))
}

fn numbers(text: &str) -> Result<Vec<usize>, String> {
    text.split_whitespace().map(number).collect()
}

type Result3<'a> = (Scenario, usize, Figures);

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn seconds(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}

/// One row: a figure of one scenario for each number of accounts.
struct Row {
    label: String,
    target: &'static str,
    scenario: &'static str,
    value: fn(&Figures) -> String,
}

fn rows(options: &Options) -> Vec<Row> {
    let every = |scenario: &'static str| {
        let interval = options.interval(scenario).as_secs();
        let row = move |label: &str, target: &'static str, value: fn(&Figures) -> String| Row {
            label: format!("{scenario} ({interval} s): {label}"),
            target,
            scenario,
            value,
        };
        row
    };
    let fresh = every("fresh");
    let idle = every("idle");
    let pooled = every("pooled");
    let rate_fresh = every("rate-fresh");
    let rate_pooled = every("rate-pooled");
    vec![
        fresh("start-up to every account's first poll", "", |f| {
            seconds(f.startup)
        }),
        fresh("RSS after start-up", "< 80 MiB", |f| mib(f.rss_kib)),
        fresh("RSS peak (VmHWM)", "< 80 MiB", |f| mib(f.peak_kib)),
        fresh("CPU per poll", "", |f| {
            format!("{:.2} ms", f.cpu_per_poll_ms)
        }),
        fresh("steady CPU", "< 10% of a core", |f| {
            format!("{:.1}%", f.cpu_percent)
        }),
        fresh("most logins in one second", "", |f| {
            f.busiest_second.to_string()
        }),
        fresh("ledger size (db + wal)", "", |f| {
            format!("{:.1} MiB", f.ledger_bytes as f64 / 1_048_576.0)
        }),
        fresh("ledger commits per second", "", |f| {
            f.commits_per_second
                .map_or("-".into(), |c| format!("{c:.1}"))
        }),
        fresh("SIGHUP reload, one account changed", "< 1 s", |f| {
            seconds(f.reload)
        }),
        fresh("mail delivered / still on server", "", |f| {
            format!("{} / {}", f.delivered, f.pending)
        }),
        idle("idle CPU", "", |f| format!("{:.2}%", f.cpu_percent)),
        idle("RSS", "< 80 MiB", |f| mib(f.peak_kib)),
        pooled("RSS peak (VmHWM)", "< 80 MiB", |f| mib(f.peak_kib)),
        pooled("CPU per poll", "", |f| {
            format!("{:.2} ms", f.cpu_per_poll_ms)
        }),
        pooled("steady CPU", "", |f| format!("{:.1}%", f.cpu_percent)),
        rate_fresh("polls per second achieved", "", |f| {
            format!("{:.0}", f.polls_per_second)
        }),
        rate_fresh("CPU", "", |f| format!("{:.0}%", f.cpu_percent)),
        rate_pooled("polls per second achieved", "", |f| {
            format!("{:.0}", f.polls_per_second)
        }),
        rate_pooled("CPU", "", |f| format!("{:.0}%", f.cpu_percent)),
    ]
}

/// The markdown table: one row per figure, one column per account count.
pub fn table(options: &Options, results: &[Result3<'_>]) -> String {
    let mut out = String::from("| figure |");
    for accounts in &options.accounts {
        write!(out, " {accounts} accounts |").expect("format");
    }
    out.push_str(" target |\n|---|");
    for _ in &options.accounts {
        out.push_str("---|");
    }
    out.push_str("---|\n");
    for row in rows(options) {
        if !options.scenarios.contains(&row.scenario) {
            continue;
        }
        write!(out, "| {} |", row.label).expect("format");
        for accounts in &options.accounts {
            let found = (results.iter())
                .find(|(s, n, _)| s.name == row.scenario && n == accounts)
                .map_or("-".into(), |(_, _, figures)| {
                    let value = (row.value)(figures);
                    if figures.failures.is_empty() {
                        value
                    } else {
                        format!("{value} (FAILED)")
                    }
                });
            write!(out, " {found} |").expect("format");
        }
        writeln!(out, " {} |", row.target).expect("format");
    }
    out
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// bench/SCALE.md: the machine, the build and the table.
pub fn write_results(root: &Path, binary: &Path, table: &str, elapsed: Duration) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = (cpuinfo.lines())
        .find_map(|line| line.strip_prefix("model name")?.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_owned();
    let text = format!(
        "# Scale benchmark results\n\nWritten by `cargo bench --bench scale -- --write-results` \
         (bench/README.md says what each figure means).\n\n\
         - machine: {cores} cores ({model}), {memory}, {kernel}\n\
         - build: `{version}` ({binary}), commit {commit}\n\
         - date: {date}\n- whole run: {minutes:.1} minutes\n\n\
         The machine is shared with other builds: CPU figures are noisy.\n\n{table}",
        cores = std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory = command_line("sh", &["-c", "free -h | awk '/^Mem/ {print $2}'"]),
        kernel = command_line("uname", &["-sr"]),
        version = command_line(&binary.display().to_string(), &["--version"]),
        binary = binary.display(),
        commit = command_line(
            "git",
            &[
                "-C",
                &root.display().to_string(),
                "rev-parse",
                "--short",
                "HEAD"
            ]
        ),
        date = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        minutes = elapsed.as_secs_f64() / 60.0,
    );
    std::fs::write(root.join("bench/SCALE.md"), text).expect("write bench/SCALE.md");
}
