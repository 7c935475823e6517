//! Adaptive versus fixed intervals: many accounts on one server, a few of
//! them receiving mail at random times (a Poisson process per account,
//! the same seeded schedule for both runs), in scaled-down time.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::daemon::{self, Daemon, Setup};
use crate::pop3_server::{Options, Pop3Server};
use crate::sink::{message, Sink};
use crate::stats::{summary, Rng};

#[derive(Debug, Clone)]
pub struct Params {
    pub accounts: usize,
    /// How many of them receive mail.
    pub receiving: usize,
    /// Real time over bench time: 30 makes 1 minute 2 seconds.
    pub scale: f64,
    /// In bench time.
    pub interval: Duration,
    pub interval_max: Duration,
    /// The mean gap between two messages of one receiving account.
    pub mean_gap: Duration,
    /// How long mail arrives.
    pub arrivals: Duration,
    pub seed: u64,
    /// `[daemon]` lines: polls at once, connections per server.
    pub max_polls: usize,
}

/// One message of the schedule.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    at: Duration,
    account: usize,
    id: u64,
}

/// The same for both runs: which accounts get mail, and when.
fn schedule(params: &Params) -> Vec<Arrival> {
    let mut rng = Rng::new(params.seed);
    let mut arrivals = Vec::new();
    for account in rng.choose(params.accounts, params.receiving) {
        let mut at = 0.0;
        loop {
            at += rng.exponential(params.mean_gap.as_secs_f64());
            if at >= params.arrivals.as_secs_f64() {
                break;
            }
            arrivals.push((Duration::from_secs_f64(at), account));
        }
    }
    arrivals.sort_by_key(|&(at, _)| at);
    (arrivals.into_iter().enumerate())
        .map(|(id, (at, account))| Arrival {
            at,
            account,
            id: id as u64,
        })
        .collect()
}

#[derive(Debug)]
pub struct Run {
    pub label: &'static str,
    /// Logins over the whole arrival window, and over its second half,
    /// when the adaptive intervals have had time to grow.
    pub logins: usize,
    pub logins_late: usize,
    /// Arrival to delivery, bench seconds.
    pub delays: Vec<f64>,
    pub messages: usize,
}

fn user(account: usize) -> String {
    format!("u{account:04}")
}

/// One run: fixed intervals without `interval_max`, adaptive with it.
pub async fn run(params: &Params, adaptive: bool, dir: &Path, daemon_extra: &[String]) -> Run {
    let arrivals = schedule(params);
    let users: Vec<String> = (0..params.accounts).map(user).collect();
    let server = Pop3Server::start(Options {
        user: users[0].clone(),
        aliases: users[1..].to_vec(),
        ..Options::default()
    })
    .await;
    let sink = Sink::start().await;
    let accounts = users
        .iter()
        .map(|name| daemon::Account {
            name: name.clone(),
            port: server.port(),
            password: Options::default().password,
            poll_interval: params.interval,
            interval_max: adaptive.then_some(params.interval_max),
        })
        .collect();
    let mut lines = vec![
        format!("max_concurrent_polls = {}", params.max_polls),
        format!("max_connections_per_server = {}", params.max_polls),
    ];
    lines.extend_from_slice(daemon_extra);
    let setup = Setup {
        smtp_port: sink.port(),
        daemon: lines,
        accounts,
    };
    let mut popferry = Daemon::start(dir, &setup);
    // Mail starts once every account has had its first poll's chance.
    tokio::time::sleep(params.interval).await;
    let begin = Instant::now();
    let logins_at_begin = server.logins();
    let mut logins_at_half = None;
    let mut added = HashMap::new();
    for arrival in &arrivals {
        let due = begin + arrival.at;
        if logins_at_half.is_none() && due >= begin + params.arrivals / 2 {
            tokio::time::sleep_until((begin + params.arrivals / 2).into()).await;
            logins_at_half = Some(server.logins());
        }
        tokio::time::sleep_until(due.into()).await;
        let uid = format!("m{}", arrival.id);
        server.add_for(&user(arrival.account), &uid, &message(arrival.id));
        added.insert(arrival.id, Instant::now());
    }
    let logins_at_half = match logins_at_half {
        Some(logins) => logins,
        None => {
            tokio::time::sleep_until((begin + params.arrivals / 2).into()).await;
            server.logins()
        }
    };
    tokio::time::sleep_until((begin + params.arrivals).into()).await;
    let logins_at_end = server.logins();
    let drain = params.interval_max.mul_f64(1.2) + Duration::from_secs(30);
    let deadline = Instant::now() + drain;
    while sink.received().len() < arrivals.len() {
        popferry.assert_running();
        assert!(
            Instant::now() < deadline,
            "{} of {} messages delivered {drain:?} after the last arrival",
            sink.received().len(),
            arrivals.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    popferry.stop();
    let received = sink.received();
    check_once(&received, &added);
    for account in 0..params.accounts {
        let left = server.maildrop_of(&user(account));
        assert!(left.is_empty(), "{} still holds {left:?}", user(account));
    }
    Run {
        label: if adaptive { "adaptive" } else { "fixed" },
        logins: logins_at_end - logins_at_begin,
        logins_late: logins_at_end - logins_at_half,
        delays: received
            .iter()
            .map(|(id, at)| (*at - added[id]).as_secs_f64())
            .collect(),
        messages: arrivals.len(),
    }
}

/// Every message added came exactly once, and nothing else came.
fn check_once(received: &[(u64, Instant)], added: &HashMap<u64, Instant>) {
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for (id, _) in received {
        *counts.entry(*id).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let strangers: Vec<_> = counts.keys().filter(|id| !added.contains_key(id)).collect();
    assert!(
        strangers.is_empty(),
        "delivered but never added: {strangers:?}"
    );
    assert_eq!(counts.len(), added.len(), "not every message delivered");
}

/// Real-scale figures: logins per hour, delays in seconds.
pub fn table(params: &Params, runs: &[Run]) -> String {
    let scale = params.scale;
    let hours = params.arrivals.as_secs_f64() * scale / 3600.0;
    let real = |d: Duration| {
        humantime::format_duration(Duration::from_secs_f64((d.as_secs_f64() * scale).round()))
    };
    let mut text = format!(
        "{} accounts on one server, {} of them receiving mail (mean gap {} per account), \
         poll_interval {}, poll_interval_max {} (adaptive only), {:.1} h of arrivals; \
         time scaled down {scale}x (bench: interval {:?}, max {:?}, {:?} of arrivals); \
         figures in real-scale units\n\n\
         | intervals | messages | delivered once | logins/h | logins/h, second half | \
         delay median | delay p95 | delay max |\n|---|---|---|---|---|---|---|---|\n",
        params.accounts,
        params.receiving,
        real(params.mean_gap),
        real(params.interval),
        real(params.interval_max),
        hours,
        params.interval,
        params.interval_max,
        params.arrivals,
    );
    for run in runs {
        let [median, p95, max] = summary(&run.delays).unwrap_or([f64::NAN; 3]);
        writeln!(
            text,
            "| {} | {} | all | {:.0} | {:.0} | {:.1} s | {:.1} s | {:.1} s |",
            run.label,
            run.messages,
            run.logins as f64 / hours,
            run.logins_late as f64 / (hours / 2.0),
            median * scale,
            p95 * scale,
            max * scale,
        )
        .expect("write to a String");
    }
    text
}
