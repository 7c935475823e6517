//! The figures of a run, printed, and the bounds they must keep.

use std::path::Path;

use popferry::config::Daemon;

use super::{Mailbox, Sample, Trend, ACCOUNTS, SAMPLE_EVERY};

/// Resident memory may end at most this much above the first reading.
/// Between polls the daemon holds no per-message state (parked sessions
/// give back their buffers), so what legitimately varies is what is in
/// flight at a reading: up to 16 polls, each with a message of at most
/// 256 KiB and its SMTP copy (8 MiB in the worst case, about 1 MiB in
/// practice), plus the ledger's blocking threads, whose number and malloc
/// arenas follow the peak of concurrent ledger calls (measured: 2 to 5 MiB
/// over the first minutes, then flat). A leak of 1 KiB per poll (200 polls
/// a second) passes this bound within 45 seconds, one of 100 bytes within
/// seven minutes.
const RSS_GROWTH_LIMIT_KIB: u64 = 8 * 1024;
/// The mean of the last third of the readings may exceed that of the first
/// third by at most this: a steady leak shows up as a slope between them.
const RSS_TREND_LIMIT_KIB: u64 = 4 * 1024;

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub struct Report<'a> {
    pub seed: u64,
    pub load_secs: f64,
    pub delivered: usize,
    pub start: Sample,
    pub end: Sample,
    pub samples: &'a [Sample],
    pub rates: &'a [f64],
    pub mailboxes: &'a [Mailbox],
    pub log: &'a Path,
    pub limits: Daemon,
}

/// Prints the figures, then asserts the memory, descriptor and timing
/// bounds (printed first, so a failing run still shows them all).
pub fn report(r: &Report<'_>) {
    let trend = Trend::of(r.samples);
    let fd_max = r.samples.iter().map(|s| s.fds).max().expect("samples");
    let cpu = r.end.cpu - r.start.cpu;
    let mean = r.rates.iter().sum::<f64>() / r.rates.len() as f64;
    let (min, max) = r
        .rates
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let pooled: Vec<f64> = r
        .rates
        .iter()
        .zip(r.mailboxes)
        .filter(|(_, m)| m.pooled)
        .map(|(x, _)| *x)
        .collect();
    let plain: Vec<f64> = r
        .rates
        .iter()
        .zip(r.mailboxes)
        .filter(|(_, m)| !m.pooled)
        .map(|(x, _)| *x)
        .collect();
    let avg = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let failed_lines = std::fs::read_to_string(r.log)
        .unwrap_or_default()
        .matches("poll failed")
        .count();
    println!(
        "seed {:#x}: {ACCOUNTS} accounts ({} pooled), {:.0} s of arrivals, {} messages delivered",
        r.seed,
        pooled.len(),
        r.load_secs,
        r.delivered
    );
    println!(
        "RSS: start {} (after {:.0} s), end {} (at {:.0} s), min {}, max {}, first third {}, last third {}",
        mib(r.start.rss_kib), r.start.at.as_secs_f64(), mib(r.end.rss_kib), r.end.at.as_secs_f64(),
        mib(trend.min_kib), mib(trend.max_kib), mib(trend.first_third_kib), mib(trend.last_third_kib),
    );
    for (what, s) in [("start", r.start), ("end", r.end)] {
        println!(
            "RSS at the {what}: anonymous {}, files {}, shared {}; {} threads",
            mib(s.anon_kib),
            mib(s.file_kib),
            mib(s.shmem_kib),
            s.threads
        );
    }
    let series: Vec<String> = r
        .samples
        .iter()
        .map(|s| format!("{:.1}", s.rss_kib as f64 / 1024.0))
        .collect();
    println!("RSS every {SAMPLE_EVERY:?} (MiB): {}", series.join(" "));
    println!(
        "fds: start {}, end {}, max {fd_max}",
        r.start.fds, r.end.fds
    );
    println!(
        "CPU: {:.1} s over the {:.0} s measured ({:.0}% of one core), {:.1} s in all",
        cpu.as_secs_f64(),
        (r.end.at - r.start.at).as_secs_f64(),
        100.0 * cpu.as_secs_f64() / (r.end.at - r.start.at).as_secs_f64(),
        r.end.cpu.as_secs_f64(),
    );
    println!(
        "polls/account/s: mean {mean:.3}, min {min:.3}, max {max:.3}; pooled {:.3}, plain {:.3}",
        avg(&pooled),
        avg(&plain)
    );
    println!("'poll failed' lines in the log: {failed_lines}");

    assert!(
        r.end.rss_kib <= r.start.rss_kib + RSS_GROWTH_LIMIT_KIB,
        "RSS grew from {} to {}",
        mib(r.start.rss_kib),
        mib(r.end.rss_kib)
    );
    assert!(
        trend.last_third_kib <= trend.first_third_kib + RSS_TREND_LIMIT_KIB,
        "RSS climbs: first third {}, last third {}",
        mib(trend.first_third_kib),
        mib(trend.last_third_kib)
    );
    // Between two readings the descriptors that come and go are those of
    // polls in flight: at most one POP3 and one SMTP socket each.
    let fd_slack = 2 * r.limits.max_concurrent_polls;
    assert!(
        r.end.fds <= r.start.fds + fd_slack,
        "descriptors grew from {} to {}",
        r.start.fds,
        r.end.fds
    );
    assert!(
        min >= 0.8,
        "an account was polled only {min:.3} times a second"
    );
    assert!(max <= 1.2, "an account was polled {max:.3} times a second");
    assert_eq!(failed_lines, 0, "failed polls in the log");
}
