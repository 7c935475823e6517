use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;
use popferry::cli::{Cli, LogWriter};
use popferry::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Threads for blocking work: every ledger call runs there, and they all
/// queue on the ledger's one connection, so beyond a few, threads only add
/// stacks and malloc arenas. (tokio's default of 512 let a daemon with 200
/// accounts grow from 18 to 40 threads and a few MiB of RSS under load.)
const BLOCKING_THREADS: usize = 8;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(cli.log_filter()));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter);
    match cli.log_format() {
        // Colour codes only help a person at a terminal; in a journal or a
        // log file they are noise between every key and value.
        LogFormat::Plain => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        // Every span's fields (the account, the poll id) on every line, so
        // a line read alone says which poll wrote it.
        LogFormat::Json => logs.json().with_span_list(true).init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(cli.run()),
        Err(e) => {
            eprintln!("popferry: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
