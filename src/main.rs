use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;
use popferry::cli::Cli;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(cli.log_filter()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only help a person at a terminal; in a journal or a
        // log file they are noise between every key and value.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    cli.run().await
}
