//! `popferry run` under load: 200 accounts, each on its own test POP3
//! server, polled every second while mail keeps arriving at random
//! mailboxes. Every message reaches the relay exactly once and the ledger
//! agrees; the daemon's memory stays flat, it leaks no descriptors or
//! connections, and every account really is polled about once a second.
//!
//! Most servers offer SLEE-WAKE, so their sessions stay parked in the pool
//! between polls; every fifth offers nothing beyond RFC 1939 and costs a
//! fresh login per poll. The run lasts `POPFERRY_LOAD_SECS` (default 120)
//! after a warm-up; `POPFERRY_LOAD_SEED` replays a different arrival
//! pattern. The figures are printed (`--nocapture` shows them).

mod harness;
mod load;
mod pop3_server;
mod smtp_receiver;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use load::checks::{check_connections, check_delivered_once, check_ledger};
use load::report::{report, Report};
use load::{account_name, Mailbox, Probe, Rng, Sample, ACCOUNTS, SAMPLE_EVERY};
use pop3_server::{Extensions, Options, Pop3Server};
use popferry::config::Config;
use smtp_receiver::SmtpReceiver;
use support::popferry::{spawn_popferry, AccountConfig, TestConfig};

/// Every fifth account's server offers no SLEE-WAKE.
const PLAIN_EVERY: usize = 5;
/// Arrivals before the first reading, so that it sees the steady state.
const WARM_UP: Duration = Duration::from_secs(20);
/// Mean gap between two arrivals (about 25 events a second).
const MEAN_GAP_MS: u64 = 40;
/// How long the last messages may take to be moved after arrivals stop.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

async fn start_mailboxes() -> Vec<Mailbox> {
    let mut mailboxes = Vec::with_capacity(ACCOUNTS);
    for index in 0..ACCOUNTS {
        let pooled = index % PLAIN_EVERY != PLAIN_EVERY - 1;
        let options = Options {
            user: format!("user{index}"),
            password: format!("password-{index}"),
            extensions: if pooled {
                Extensions::all()
            } else {
                Extensions::default()
            },
            ..Options::default()
        };
        mailboxes.push(Mailbox {
            server: Pop3Server::start(options).await,
            pooled,
            added: Vec::new(),
        });
    }
    mailboxes
}

fn config_for(mailboxes: &[Mailbox], smtp: &SmtpReceiver) -> TestConfig {
    let accounts = mailboxes
        .iter()
        .enumerate()
        .map(|(index, mailbox)| {
            let name = account_name(index);
            let (user, password) = (format!("user{index}"), format!("password-{index}"));
            AccountConfig {
                timeout: "10s".into(),
                ..AccountConfig::plain(&name, mailbox.server.port(), &user, &password)
            }
        })
        .collect();
    TestConfig {
        dir: tempfile::tempdir().expect("temp dir"),
        smtp_port: smtp.port(),
        smtp_table: None,
        daemon: String::new(),
        accounts,
    }
}

/// Waits for `done`, checking every 50 ms; panics with the daemon's log
/// tail after `limit`.
async fn wait_until(what: &str, limit: Duration, log: &Path, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            panic!(
                "{what}: not within {limit:?}; log tail (newest first):\n{}",
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_accounts_polled_every_second_move_each_message_once_in_flat_memory() {
    let load_time = Duration::from_secs(env_or("POPFERRY_LOAD_SECS", 120));
    let seed = env_or("POPFERRY_LOAD_SEED", 0x10AD);
    let mut rng = Rng::new(seed);
    let smtp = SmtpReceiver::start().await;
    let mut mailboxes = start_mailboxes().await;
    let config = config_for(&mailboxes, &smtp);
    let path = config.write();
    let limits = Config::load(&path).expect("the test config loads").daemon;
    let log = config.dir.path().join("daemon.log");
    let daemon = spawn_popferry(&path, &["run"], &log);
    let born = Instant::now();
    let probe = Probe::new(daemon.0.id());
    let read = |probe: &Probe| probe.sample(born.elapsed()).expect("the daemon is running");

    wait_until(
        "every account logged in once",
        Duration::from_secs(30),
        &log,
        || mailboxes.iter().all(|m| m.server.logins() >= 1),
    )
    .await;
    // Arrivals: mostly one message, sometimes a burst, at random mailboxes.
    // They begin with the warm-up, so the first reading is taken with mail
    // already flowing: the ledger's threads and the allocator's arenas have
    // grown to what moving mail needs, and what follows is the steady state.
    let mut next_uid = 0usize;
    let arrivals = Instant::now();
    let mut measured: Option<(Sample, Vec<usize>, Instant)> = None;
    let mut samples: Vec<Sample> = Vec::new();
    while arrivals.elapsed() < WARM_UP + load_time {
        tokio::time::sleep(Duration::from_millis(rng.between(0, 2 * MEAN_GAP_MS))).await;
        let index = usize::try_from(rng.between(0, ACCOUNTS as u64)).expect("index");
        let burst = if rng.chance(10) { rng.between(2, 9) } else { 1 };
        for _ in 0..burst {
            let uid = format!("m{next_uid}");
            next_uid += 1;
            let size = rng.message_size();
            mailboxes[index]
                .server
                .add(&uid, &load::message(&uid, size));
            mailboxes[index].added.push(uid);
        }
        if measured.is_none() && arrivals.elapsed() >= WARM_UP {
            let start = read(&probe);
            let polls = mailboxes.iter().map(Mailbox::polls).collect();
            measured = Some((start, polls, Instant::now()));
            samples.push(start);
        } else if samples
            .last()
            .is_some_and(|last| born.elapsed() >= last.at + SAMPLE_EVERY)
        {
            samples.push(read(&probe));
        }
    }
    let (start, polls_at_start, load_started) = measured.expect("the warm-up ended");
    let load_secs = load_started.elapsed().as_secs_f64();
    let polls_at_end: Vec<usize> = mailboxes.iter().map(Mailbox::polls).collect();
    let total = next_uid;

    wait_until("every mailbox emptied", DRAIN_LIMIT, &log, || {
        mailboxes.iter().all(|m| m.server.maildrop().is_empty()) && smtp.offers().len() >= total
    })
    .await;
    let end = read(&probe);
    samples.push(end);

    check_connections(&mailboxes, &limits);
    let quitting = Instant::now();
    daemon.signal("TERM");
    let mut daemon = daemon;
    let status = loop {
        if let Some(status) = daemon.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            quitting.elapsed() < limits.shutdown_timeout + Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status}");
    wait_until(
        "every connection closed",
        Duration::from_secs(10),
        &log,
        || mailboxes.iter().all(|m| m.server.open_connections() == 0),
    )
    .await;
    for (index, mailbox) in mailboxes.iter().enumerate().filter(|(_, m)| m.pooled) {
        assert!(
            mailbox.server.commands("QUIT") >= 1,
            "{}: the parked session was logged out at shutdown",
            account_name(index)
        );
    }

    let delivered = check_delivered_once(&mailboxes, &smtp);
    check_ledger(&mailboxes, &config.dir.path().join("popferry.db")).await;
    let rates: Vec<f64> = polls_at_start
        .iter()
        .zip(&polls_at_end)
        .map(|(a, b)| (b - a) as f64 / load_secs)
        .collect();
    report(&Report {
        seed,
        load_secs,
        delivered,
        start,
        end,
        samples: &samples,
        rates: &rates,
        mailboxes: &mailboxes,
        log: &log,
        limits,
    });
}
