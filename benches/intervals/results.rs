//! `--write-results`: bench/INTERVALS.md, with what the figures were
//! measured on, so a later run on another machine or build can be told
//! apart.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::daemon::binary;

/// The first line of a command's output, or "unknown".
fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map_or("unknown", |rest| rest.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("unknown")
        .to_owned();
    format!(
        "- machine: {model}, {cores} cores, {memory}; {}\n",
        first_line("uname", &["-sr"])
    )
}

fn build() -> String {
    let binary = binary();
    let path = binary.display().to_string();
    let sum = first_line("sha256sum", &[&path]);
    let sum = sum.split_whitespace().next().unwrap_or("unknown");
    let commit = first_line(
        "git",
        &[
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "log",
            "-1",
            "--format=%h %s",
        ],
    );
    let version = first_line(&path, &["--version"]);
    format!("- build: `{version}`, sha256 {sum}; source at commit {commit}\n")
}

pub fn write(sections: &[(&str, String)], took: Duration, seed: u64) {
    let mut text = String::from(
        "# Intervals: fair under load, adaptive versus fixed\n\n\
         Written by `cargo bench --bench intervals -- --write-results`; bench/README.md says what \
         each figure means. One run on a shared machine: timings are noisy.\n\n",
    );
    text += &machine();
    text += &build();
    writeln!(
        text,
        "- date: {}; seed {seed}; the whole run took {:.0} s",
        first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        took.as_secs_f64()
    )
    .expect("write to a String");
    for (title, table) in sections {
        write!(text, "\n## {title}\n\n{table}").expect("write to a String");
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/INTERVALS.md");
    std::fs::write(&path, text).expect("write bench/INTERVALS.md");
    println!("wrote {}", path.display());
}
