//! Fair under load: two POP3 servers with the same number of accounts,
//! more accounts due than `max_concurrent_polls` allows, one server slow.
//! Each account's lag is the time between its consecutive poll starts
//! (logins seen by the proxy in front of its server) minus its interval.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::daemon::{self, Daemon, Setup};
use crate::pop3_server::{Options, Pop3Server};
use crate::proxy::{Proxy, Session};
use crate::sink::Sink;
use crate::stats::{quantile, summary};

#[derive(Debug, Clone)]
pub struct Params {
    pub accounts: usize,
    pub interval: Duration,
    pub slow_delay: Duration,
    pub run: Duration,
    pub max_polls: usize,
    pub per_server: usize,
}

/// What one server's accounts saw in one run.
#[derive(Debug)]
pub struct Server {
    pub name: &'static str,
    pub delay: Duration,
    pub polls: usize,
    pub fewest_polls: usize,
    /// Seconds each, over all accounts: consecutive gaps minus the
    /// interval, and for an account still waiting at the end, how far
    /// past its interval it already was.
    pub lags: Vec<f64>,
    /// Seconds from accept to close of each finished poll.
    pub durations: Vec<f64>,
}

#[derive(Debug)]
pub struct Run {
    pub label: &'static str,
    pub servers: Vec<Server>,
}

fn names(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i:04}")).collect()
}

/// Runs the daemon against server "A" (always fast) and "B" (slow when
/// `slow`) for `params.run`.
pub async fn run(params: &Params, slow: bool, dir: &Path, daemon_extra: &[String]) -> Run {
    let sink = Sink::start().await;
    let delays = [
        Duration::ZERO,
        if slow {
            params.slow_delay
        } else {
            Duration::ZERO
        },
    ];
    let mut fronts = Vec::new();
    let mut accounts = Vec::new();
    for (prefix, delay) in ["a", "b"].into_iter().zip(delays) {
        let users = names(prefix, params.accounts);
        let server = Pop3Server::start(Options {
            user: users[0].clone(),
            aliases: users[1..].to_vec(),
            ..Options::default()
        })
        .await;
        let proxy = Proxy::start(server.port(), delay).await;
        accounts.extend(users.iter().map(|name| daemon::Account {
            name: name.clone(),
            port: proxy.port,
            password: Options::default().password,
            poll_interval: params.interval,
            interval_max: None,
        }));
        fronts.push((server, proxy, users, delay));
    }
    let mut lines = vec![
        format!("max_concurrent_polls = {}", params.max_polls),
        format!("max_connections_per_server = {}", params.per_server),
    ];
    lines.extend_from_slice(daemon_extra);
    let setup = Setup {
        smtp_port: sink.port(),
        daemon: lines,
        accounts,
    };
    let mut popferry = Daemon::start(dir, &setup);
    let started = popferry.started;
    tokio::time::sleep(params.run).await;
    popferry.assert_running();
    let end = Instant::now();
    popferry.stop();
    let servers = fronts
        .into_iter()
        .zip(["A", "B"])
        .map(|((_server, proxy, users, delay), name)| {
            figures(
                name,
                delay,
                &users,
                &proxy.sessions(),
                started,
                end,
                params.interval,
            )
        })
        .collect();
    Run {
        label: if slow { "B slow" } else { "both fast" },
        servers,
    }
}

fn figures(
    name: &'static str,
    delay: Duration,
    users: &[String],
    sessions: &[Session],
    started: Instant,
    end: Instant,
    interval: Duration,
) -> Server {
    let in_window: Vec<&Session> = sessions.iter().filter(|s| s.start <= end).collect();
    let mut starts: HashMap<&str, Vec<Instant>> = HashMap::new();
    for session in &in_window {
        starts
            .entry(session.user.as_str())
            .or_default()
            .push(session.start);
    }
    let mut lags = Vec::new();
    let mut fewest = usize::MAX;
    for user in users {
        let mut times = starts.remove(user.as_str()).unwrap_or_default();
        times.sort();
        fewest = fewest.min(times.len());
        lags.extend(
            times
                .windows(2)
                .map(|pair| (pair[1] - pair[0]).as_secs_f64() - interval.as_secs_f64()),
        );
        let last = times.last().copied().unwrap_or(started);
        let waiting = (end - last).as_secs_f64() - interval.as_secs_f64();
        if waiting > 0.0 {
            lags.push(waiting);
        }
    }
    let strangers: usize = starts
        .iter()
        .filter(|(user, _)| !user.is_empty())
        .map(|(_, times)| times.len())
        .sum();
    assert_eq!(
        strangers, 0,
        "server {name}: logins as users it does not have"
    );
    let durations = in_window
        .iter()
        .filter_map(|s| Some((s.end? - s.start).as_secs_f64()))
        .collect();
    Server {
        name,
        delay,
        polls: in_window.len(),
        fewest_polls: fewest,
        lags,
        durations,
    }
}

/// The README's bound ("Fair under load"): a due account waits for at
/// most one poll of each account due before it, and one server holds at
/// most `max_connections_per_server` of the poll slots; so at worst every
/// other account of its server is ahead of it, ceil(accounts / slots)
/// polls of the server's median duration, plus the scheduler's jitter (a
/// tenth of the interval, at most 5 s).
pub fn bound(params: &Params, server: &Server) -> Option<f64> {
    let slots = params.per_server.min(params.max_polls).max(1);
    let rounds = params.accounts.div_ceil(slots) as f64;
    let jitter = (params.interval.as_secs_f64() / 10.0).min(5.0);
    Some(rounds * quantile(&server.durations, 0.5)? + jitter)
}

/// The table of both runs, Markdown.
pub fn table(params: &Params, runs: &[Run]) -> String {
    let mut text = format!(
        "{} + {} accounts, poll_interval {:?}, max_concurrent_polls = {}, \
         max_connections_per_server = {}, {:?} per run; lags in seconds\n\n\
         | run | server | reply delay | polls | fewest per account | poll duration median | \
         lag median | lag p95 | lag max | bound |\n|---|---|---|---|---|---|---|---|---|---|\n",
        params.accounts,
        params.accounts,
        params.interval,
        params.max_polls,
        params.per_server,
        params.run,
    );
    for run in runs {
        for server in &run.servers {
            let [median, p95, max] = summary(&server.lags).unwrap_or([f64::NAN; 3]);
            let duration = quantile(&server.durations, 0.5).unwrap_or(f64::NAN);
            let bound = bound(params, server).unwrap_or(f64::NAN);
            writeln!(
                text,
                "| {} | {} | {} ms | {} | {} | {duration:.3} s | {median:.2} | {p95:.2} | {max:.2} | {bound:.2} |",
                run.label,
                server.name,
                server.delay.as_millis(),
                server.polls,
                server.fewest_polls,
            )
            .expect("write to a String");
        }
    }
    text
}

/// The check that holds on any machine: every account of a fast server
/// was polled at least once, even beside a slow one (accounts of an
/// overloaded slow server may not be, in a short run).
pub fn check(runs: &[Run]) {
    for run in runs {
        for server in run.servers.iter().filter(|s| s.delay.is_zero()) {
            assert!(
                server.fewest_polls >= 1,
                "{}: an account of the fast server {} was never polled: starved",
                run.label,
                server.name
            );
        }
    }
}
