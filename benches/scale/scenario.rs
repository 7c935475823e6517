//! One scenario at one number of accounts: servers up, `popferry run`
//! spawned, mail trickling in, the figures taken, the checks made.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::daemon::{free_port, ledger_bytes, write_config, Daemon, Setup};
use crate::server::{ServerProcess, Stats};

/// What differs between scenarios.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub interval: Duration,
    pub pooled: bool,
    /// Wait for every account's first poll (and fail without it), and
    /// start the window no earlier than one interval after spawn, when
    /// re-polls are due: the steady state.
    pub steady: bool,
    pub reload: bool,
}

/// Durations and switches common to every scenario of a run.
#[derive(Debug, Clone)]
pub struct Run {
    pub binary: PathBuf,
    pub dir: PathBuf,
    pub window: Duration,
    /// After the window, wait an interval and a second without new mail,
    /// so every message is fetched and none may be left on the server.
    pub drain: bool,
    pub max_logins_per_second: Option<u32>,
}

/// The figures of one scenario; `None` where it did not measure that.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub startup: Option<Duration>,
    pub rss_kib: u64,
    pub peak_kib: u64,
    pub cpu_per_poll_ms: f64,
    pub cpu_percent: f64,
    pub polls_per_second: f64,
    pub busiest_second: u64,
    pub ledger_bytes: u64,
    pub commits_per_second: Option<f64>,
    pub metric_polls_per_second: Option<f64>,
    pub reload: Option<Duration>,
    pub delivered: u64,
    pub pending: u64,
    /// Why the run failed; empty when every check passed.
    pub failures: Vec<String>,
}

/// Adds a message to a random account's mailbox now and then: about one
/// account in a hundred gets one per interval, at least five.
struct Trickle {
    every: Duration,
    next: Instant,
    sent: u64,
    seed: u64,
    accounts: u64,
}

impl Trickle {
    fn new(accounts: usize, interval: Duration) -> Trickle {
        let per_interval = (accounts / 100).max(5) as u32;
        let every = interval / per_interval;
        Trickle {
            every,
            next: Instant::now() + every,
            sent: 0,
            seed: 0x9e37_79b9_7f4a_7c15,
            accounts: accounts as u64,
        }
    }

    fn due(&mut self, server: &mut ServerProcess) {
        while Instant::now() >= self.next {
            // xorshift: deterministic, and no dependency for it.
            self.seed ^= self.seed << 13;
            self.seed ^= self.seed >> 7;
            self.seed ^= self.seed << 17;
            let user = format!("u{}", self.seed % self.accounts);
            server.add(&user, &format!("t{}", self.sent));
            self.sent += 1;
            self.next += self.every;
        }
    }
}

fn wall_ms() -> u64 {
    (SystemTime::now().duration_since(UNIX_EPOCH)).map_or(0, |d| d.as_millis() as u64)
}

/// Sleeps `until`, trickling; stops early when `done` says so.
fn wait(
    until: Instant,
    server: &mut ServerProcess,
    trickle: &mut Trickle,
    daemon: &mut Daemon,
    mut done: impl FnMut(&Stats) -> bool,
) -> Result<Stats, String> {
    loop {
        trickle.due(server);
        let stats = server.stats();
        if done(&stats) || Instant::now() >= until {
            return Ok(stats);
        }
        if !daemon.running() {
            return Err(format!("popferry exited early:\n{}", daemon.tail()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn run(scenario: &Scenario, accounts: usize, run: &Run) -> Figures {
    let dir = run.dir.join(format!("{}-{accounts}", scenario.name));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("create the scenario's folder");
    let mut server = ServerProcess::start(&dir, scenario.pooled);
    let setup = Setup {
        accounts,
        interval: scenario.interval,
        pooled: scenario.pooled,
        pop3s_port: server.pop3s_port,
        pop3_port: server.pop3_port,
        smtp_port: server.smtp_port,
        metrics_port: free_port(),
        max_logins_per_second: run.max_logins_per_second,
    };
    let config = write_config(&dir, &setup, false);
    let mut daemon = Daemon::spawn(&run.binary, &config, setup.metrics_port);
    let measured = measure(
        scenario,
        accounts,
        run,
        &dir,
        &setup,
        &mut server,
        &mut daemon,
    );
    let mut figures = measured.unwrap_or_else(|failure| Figures {
        failures: vec![failure],
        ..Figures::default()
    });
    let tail = daemon.tail();
    match daemon.stop(Duration::from_secs(60)) {
        Some(status) if status.success() => {}
        Some(status) => figures
            .failures
            .push(format!("popferry exited with {status} on SIGTERM:\n{tail}")),
        None => figures
            .failures
            .push("popferry did not exit within 60 s of SIGTERM".into()),
    }
    let check = server.check();
    figures.delivered = check.delivered;
    figures.pending = check.pending;
    if check.duplicates > 0 || check.lost > 0 {
        figures.failures.push(format!(
            "of {} messages, {} delivered twice and {} lost",
            check.added, check.duplicates, check.lost
        ));
    }
    // Only a run that outlasts one interval must have re-polled an
    // account after mail arrived; idle at 5 minutes may not have.
    if scenario.steady && check.delivered == 0 {
        figures
            .failures
            .push("no trickled message was delivered".into());
    }
    if run.drain && check.pending > 0 {
        figures.failures.push(format!(
            "{} of {} messages still on the server after the drain",
            check.pending, check.added
        ));
    }
    server.stop();
    figures
}

fn measure(
    scenario: &Scenario,
    accounts: usize,
    run: &Run,
    dir: &Path,
    setup: &Setup,
    server: &mut ServerProcess,
    daemon: &mut Daemon,
) -> Result<Figures, String> {
    let spawned_wall = wall_ms();
    let mut trickle = Trickle::new(accounts, scenario.interval);
    let mut figures = Figures::default();
    let all = accounts as u64;
    // Idle is measured a minute in at most, not after a whole round of
    // 5-minute polls: with first polls spread, that rate is the steady one.
    let limit = daemon.spawned
        + if scenario.steady {
            scenario.interval * 2 + Duration::from_secs(30)
        } else {
            Duration::from_secs(60).min(scenario.interval * 2)
        };
    let first = wait(limit, server, &mut trickle, daemon, |s| s.users == all)?;
    if first.users == all {
        figures.startup = Some(Duration::from_millis(
            first.last_first_ms.saturating_sub(spawned_wall),
        ));
    } else if scenario.steady {
        return Err(format!(
            "only {} of {all} accounts were polled",
            first.users
        ));
    }
    if scenario.steady {
        let due = daemon.spawned + scenario.interval;
        wait(due, server, &mut trickle, daemon, |_| false)?;
    }
    figures.rss_kib = daemon.status_kib("VmRSS");
    let (ticks, before, metrics) = (daemon.cpu_ticks(), server.stats(), daemon.metrics());
    let started = Instant::now();
    let after = wait(started + run.window, server, &mut trickle, daemon, |_| {
        false
    })?;
    let (ticks, metrics_after) = (daemon.cpu_ticks() - ticks, daemon.metrics());
    let seconds = started.elapsed().as_secs_f64();
    let polls = after.polls() - before.polls();
    let cpu = ticks as f64 / 100.0;
    figures.cpu_percent = 100.0 * cpu / seconds;
    figures.cpu_per_poll_ms = if polls == 0 {
        0.0
    } else {
        1000.0 * cpu / polls as f64
    };
    figures.polls_per_second = polls as f64 / seconds;
    figures.busiest_second = after.busiest_second;
    figures.peak_kib = daemon.status_kib("VmHWM");
    figures.ledger_bytes = ledger_bytes(dir);
    if let (Some((p0, c0)), Some((p1, c1))) = (metrics, metrics_after) {
        figures.metric_polls_per_second = Some((p1 - p0) / seconds);
        figures.commits_per_second = Some((c1 - c0) / seconds);
    }
    if scenario.reload {
        write_config(dir, setup, true);
        figures.reload = Some(
            daemon
                .reload(Duration::from_secs(60))
                .ok_or("no \"configuration reloaded\" within 60 s of SIGHUP")?,
        );
    }
    if run.drain {
        let until = Instant::now() + scenario.interval + Duration::from_secs(1);
        while Instant::now() < until && daemon.running() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(figures)
}
