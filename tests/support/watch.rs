//! Watching a running popferry from outside: its log file and its memory
//! high-water mark.
//!
//! A process that is still running after the event of interest (a daemon
//! that logged a failed poll and backs off) gives an exact peak: `VmHWM`
//! only ever grows and is read while the process lives, so nothing that
//! happened before the log line can be missed, however briefly it lasted.

use std::path::Path;
use std::process::{Child, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

/// The peak resident set size of a live process, in KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits until `log` holds `count` lines containing `needle` and returns
/// those lines; panics with the log after `limit`.
pub fn wait_for_lines(log: &Path, needle: &str, count: usize, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect();
        if lines.len() >= count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "no {count} lines with {needle:?} within {limit:?}; log:\n{text}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// The number logged as `key=<n>` in a tracing line, e.g. `ms=2003`.
pub fn logged_number(line: &str, key: &str) -> Option<u64> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let digits: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Waits for `child` to exit, reading its `VmHWM` every few milliseconds;
/// returns how it ended and the last (so the highest) reading, in KiB.
/// Kills it and panics after `limit`.
pub fn peak_until_exit(mut child: Child, limit: Duration) -> (ExitStatus, u64) {
    let deadline = Instant::now() + limit;
    let mut peak = 0;
    loop {
        if let Some(hwm) = vm_hwm_kib(child.id()) {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            return (status, peak);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("popferry did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}
