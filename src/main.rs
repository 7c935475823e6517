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

/// Makes glibc's allocator use one arena for every thread. By default each
/// thread that allocates may get an arena of its own (up to eight per
/// core), and what is freed into one arena serves only later allocations
/// from it: a session is set up on one runtime thread and its buffers are
/// freed on whichever thread polls it next, so every arena grows to its
/// own high-water mark. With 10,000 parked SLEE sessions RSS peaked at
/// 107.9 MiB with glibc's default, 90.7 with two arenas and 78.6 with one,
/// at the same CPU per poll (`cargo bench --bench scale`, pooled; the
/// heap itself never passed 51 MiB). Small allocations still come from
/// each thread's own cache, without the arena's lock. An administrator's
/// `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` is left to glibc.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn one_malloc_arena() {
    let tuned = std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
    if !tuned {
        // SAFETY: mallopt only sets one of the allocator's tunables, and
        // this runs first in main, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    one_malloc_arena();
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
