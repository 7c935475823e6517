//! The matrix's summary: one row per fault, printed where CI logs show it
//! (straight to the process's stderr, which the test harness does not
//! capture) and written under `target/` for later reading.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

/// One fault and what the world looked like after the clean run.
#[derive(Debug, Clone)]
pub struct Row {
    pub fault: String,
    /// How the faulted run ended, briefly.
    pub faulted_run: String,
    pub messages: usize,
    /// Distinct messages the receiver (or the quarantine) has.
    pub delivered: usize,
    /// Deliveries beyond the first, all messages together.
    pub duplicates: usize,
    pub left_on_server: usize,
    /// What the operator was told about the fault, when worth showing.
    pub said: Option<String>,
    /// What went wrong; empty when the case passed.
    pub problems: Vec<String>,
}

impl Row {
    pub fn new(fault: impl Into<String>, messages: usize) -> Self {
        Self {
            fault: fault.into(),
            faulted_run: String::new(),
            messages,
            delivered: 0,
            duplicates: 0,
            left_on_server: 0,
            said: None,
            problems: Vec::new(),
        }
    }

    /// Notes a problem unless `ok`.
    pub fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.problems.push(problem());
        }
    }
}

/// Renders `rows` under `title`, prints the table and saves it as
/// `target/<file>`; returns every problem, each prefixed by its fault.
pub fn report(title: &str, file: &str, rows: &[Row]) -> Vec<String> {
    let mut text = format!("\n{title}\n");
    let width = rows.iter().map(|r| r.fault.len()).max().unwrap_or(5).max(5);
    let run_width = rows.iter().map(|r| r.faulted_run.len()).max().unwrap_or(0);
    let run_width = run_width.max(11);
    let _ = writeln!(
        text,
        "{:width$} | {:run_width$} | delivered | duplicates | left on server | result",
        "fault", "faulted run"
    );
    let _ = writeln!(text, "{}", "-".repeat(width + run_width + 55));
    for row in rows {
        let result = if row.problems.is_empty() {
            "ok"
        } else {
            "WRONG"
        };
        let _ = writeln!(
            text,
            "{:width$} | {:run_width$} | {:>5}/{:<3} | {:>10} | {:>14} | {result}",
            row.fault,
            row.faulted_run,
            row.delivered,
            row.messages,
            row.duplicates,
            row.left_on_server,
        );
    }
    for row in rows {
        if let Some(said) = &row.said {
            let _ = writeln!(text, "  {}: {said}", row.fault);
        }
    }
    let problems: Vec<String> = rows
        .iter()
        .flat_map(|r| r.problems.iter().map(move |p| format!("{}: {p}", r.fault)))
        .collect();
    for problem in &problems {
        let _ = writeln!(text, "  WRONG {problem}");
    }
    publish(file, &text);
    problems
}

/// Prints `text` uncaptured and saves it as `target/<file>`.
pub fn publish(file: &str, text: &str) {
    print_uncaptured(text);
    let path = target_dir().join(file);
    if let Err(err) = std::fs::write(&path, text) {
        print_uncaptured(&format!("cannot write {}: {err}\n", path.display()));
    }
}

/// Writes to the process's stderr itself: `eprintln!` output is captured
/// by the test harness and shown only for failing tests.
pub fn print_uncaptured(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

/// The cargo target folder: the test binary lives in `<target>/debug/deps`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}
