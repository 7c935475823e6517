//! What the load test needs besides servers: readings of a process from
//! /proc, a seeded random source (a failing run can be replayed with its
//! seed), and the messages it feeds the mailboxes.

pub mod checks;
pub mod report;

use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::pop3_server::Pop3Server;

pub const ACCOUNTS: usize = 200;
/// How often the daemon is read.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// One account's mailbox: its server and what the test put in it.
pub struct Mailbox {
    pub server: Pop3Server,
    pub pooled: bool,
    pub added: Vec<String>,
}

impl Mailbox {
    /// Polls the server saw: fresh logins plus WAKEs of the parked session.
    pub fn polls(&self) -> usize {
        self.server.logins() + self.server.commands("WAKE")
    }
}

pub fn account_name(index: usize) -> String {
    format!("load{index:03}")
}

/// One reading of the daemon.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Since the daemon started.
    pub at: Duration,
    /// `VmRSS`: resident memory now, not the high-water mark.
    pub rss_kib: u64,
    /// Its parts: the heap and stacks, mapped files (the binary, SQLite's
    /// `-shm` index), and shared memory.
    pub anon_kib: u64,
    pub file_kib: u64,
    pub shmem_kib: u64,
    pub threads: u64,
    /// Open file descriptors.
    pub fds: usize,
    /// User plus system CPU time so far.
    pub cpu: Duration,
}

/// Reads a process's memory, descriptors and CPU time from /proc.
#[derive(Debug)]
pub struct Probe {
    pid: u32,
    ticks_per_second: u64,
}

impl Probe {
    pub fn new(pid: u32) -> Probe {
        let output = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .expect("run getconf CLK_TCK");
        let ticks_per_second = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("CLK_TCK is a number");
        Probe {
            pid,
            ticks_per_second,
        }
    }

    /// `None` once the process is gone.
    pub fn sample(&self, at: Duration) -> Option<Sample> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let field = |name: &str| -> Option<u64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        let fds = fs::read_dir(format!("/proc/{}/fd", self.pid)).ok()?.count();
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // The command name in parentheses may contain spaces; the fields
        // after it are plain numbers. utime and stime are fields 14 and 15
        // of proc(5), the 12th and 13th after the closing parenthesis.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let cpu = Duration::from_millis(ticks * 1000 / self.ticks_per_second);
        Some(Sample {
            at,
            rss_kib: field("VmRSS")?,
            anon_kib: field("RssAnon")?,
            file_kib: field("RssFile")?,
            shmem_kib: field("RssShmem")?,
            threads: field("Threads")?,
            fds,
            cpu,
        })
    }
}

/// splitmix64: small, seedable, and good enough to pick mailboxes.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[low, high)`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// A message size: mostly small, some tens of KiB, a few of a few
    /// hundred KiB, as a personal mailbox sees them.
    pub fn message_size(&mut self) -> usize {
        let size = match self.next() % 100 {
            0..=79 => self.between(300, 4 * 1024),
            80..=97 => self.between(4 * 1024, 64 * 1024),
            _ => self.between(64 * 1024, 256 * 1024),
        };
        usize::try_from(size).expect("sizes fit")
    }
}

/// A message of about `size` bytes (CRLF lines) that names its uid in the
/// `X-Test-Uid` header the harness reads back at the relay.
pub fn message(uid: &str, size: usize) -> Vec<u8> {
    let mut bytes = format!(
        "Return-Path: <sender@example.net>\r\nFrom: sender@example.net\r\n\
         To: load@example.org\r\nSubject: load {uid}\r\nX-Test-Uid: {uid}\r\n\r\n"
    )
    .into_bytes();
    let mut line = 0usize;
    while bytes.len() < size {
        // Every 50th line starts with a dot, so stuffing is exercised.
        let lead = if line.is_multiple_of(50) { "." } else { "" };
        bytes.extend_from_slice(
            format!("{lead}{uid} line {line:>8} {}\r\n", "z".repeat(48)).as_bytes(),
        );
        line += 1;
    }
    bytes
}

/// Memory over a run: the extremes and the mean of the first and last
/// thirds of the samples, which a slow leak pulls apart.
#[derive(Debug, Clone, Copy)]
pub struct Trend {
    pub min_kib: u64,
    pub max_kib: u64,
    pub first_third_kib: u64,
    pub last_third_kib: u64,
}

impl Trend {
    pub fn of(samples: &[Sample]) -> Trend {
        assert!(samples.len() >= 3, "{} samples", samples.len());
        let third = samples.len() / 3;
        let mean =
            |part: &[Sample]| part.iter().map(|s| s.rss_kib).sum::<u64>() / part.len() as u64;
        Trend {
            min_kib: samples.iter().map(|s| s.rss_kib).min().expect("samples"),
            max_kib: samples.iter().map(|s| s.rss_kib).max().expect("samples"),
            first_third_kib: mean(&samples[..third]),
            last_third_kib: mean(&samples[samples.len() - third..]),
        }
    }
}
