//! The command line. This is the edge of the program: library errors become
//! `anyhow` errors with context here, and nowhere else.

mod adopt;
mod check;
mod demo;
mod fetch;
mod import;
mod oauth;
mod progress;
mod reference;
mod run;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use progress::LogWriter;

use crate::config::{default_config_path, Config, ConfigError, LogFormat};

/// Moves mail from POP3 mailboxes to an SMTP relay, exactly once.
#[derive(Debug, Parser)]
#[command(name = "popferry", version, after_help = EXIT_STATUS)]
pub struct Cli {
    /// Configuration file [default: $POPFERRY_CONFIG, ./popferry.toml, /etc/popferry/popferry.toml]
    #[arg(short, long, global = true)]
    pub config: Option<PathBuf>,
    /// More log output (-v: debug, -vv: trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output (-q: errors only, -qq: nothing)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
    /// Log lines as plain text or one JSON object each [default: plain, or `[daemon] log_format` for run]
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Poll each account once: deliver new mail, then delete it from the server
    Fetch(fetch::FetchArgs),
    /// Run as a service: poll every account on its own interval until
    /// SIGTERM; SIGHUP reloads the configuration
    Run,
    /// Validate the configuration; with --connect also log in to each server
    Check(check::CheckArgs),
    /// Show what the ledger knows about each account (read-only); name
    /// accounts for their recent polls and waiting messages
    Status(status::StatusArgs),
    /// Sign in to OAuth2 providers (Microsoft 365, Gmail) and show token state
    #[command(name = "oauth")]
    OAuth(oauth::OAuthArgs),
    /// Record another program's fetched mail (its state FILE) as delivered
    Import(import::ImportArgs),
    /// Record everything the mailbox lists now as delivered, without fetching it
    Adopt(adopt::AdoptArgs),
    /// Move sample mail between a POP3 server and an SMTP receiver started
    /// on loopback for the occasion; needs no config and no network
    Demo(demo::DemoArgs),
    /// Print a completion script: `popferry completions bash >
    /// /etc/bash_completion.d/popferry` (zsh: a file named _popferry in
    /// $fpath; fish: ~/.config/fish/completions/popferry.fish)
    Completions(reference::CompletionsArgs),
    /// Print the manual page: `popferry man > /usr/local/share/man/man1/popferry.1`
    Man,
}

/// Exit status 1: some account could not poll, or could not hand
/// anything to its relay. See [`EXIT_STATUS`].
pub const EXIT_FAILED: u8 = 1;
/// Exit status 2: nothing ran, because of how popferry was invoked or
/// configured. See [`EXIT_STATUS`].
pub const EXIT_USAGE: u8 = 2;

/// The exit status table, as `--help` prints it (and the README repeats).
pub const EXIT_STATUS: &str = "\
Exit status:
  0  every account polled; any message still on a server waits only on a
     relay's temporary refusal or on a rejection the ledger recorded
  1  some account could not poll, or could not hand anything to its relay
     (server or relay unreachable, login refused, TLS failure)
  2  usage or configuration error: nothing ran (bad arguments, a config
     that does not load, a ledger that cannot be opened or is locked by
     another popferry, a metrics_listen address in use, a bad demo --dir)";

/// An error that means nothing ran because of how popferry was invoked or
/// configured (exit status 2), as opposed to a failure while running.
/// The same library error can be either: a ledger that cannot be opened
/// is a setup problem, one that fails mid-poll is not. So the command
/// that knows which wraps it.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct UsageError(Box<dyn std::error::Error + Send + Sync>);

/// Marks `error` as a usage error: see [`UsageError`].
pub fn usage(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> anyhow::Error {
    UsageError(error.into()).into()
}

impl Cli {
    /// The `tracing` filter the verbosity flags ask for; `RUST_LOG` wins.
    pub fn log_filter(&self) -> &'static str {
        match (self.verbose, self.quiet) {
            // The demo narrates on stdout; its INFO lines would land in the
            // middle of the story. Warnings still show, -v shows the rest.
            (0, 0) if matches!(self.command, Command::Demo(_)) => "warn",
            (0, 0) => "popferry=info,warn",
            (1, _) => "popferry=debug,info",
            (_, 0) => "popferry=trace,debug",
            (_, 1) => "error",
            _ => "off",
        }
    }

    /// The log format: the flag, else for `run` the config's key, which is
    /// read here on its own because logging starts before the config loads.
    pub fn log_format(&self) -> LogFormat {
        let from_config = || {
            let path = self.config.clone().or_else(default_config_path)?;
            crate::config::peek_log_format(&path)
        };
        match (self.log_format, &self.command) {
            (Some(format), _) => format,
            (None, Command::Run) => from_config().unwrap_or_default(),
            (None, _) => LogFormat::Plain,
        }
    }

    pub async fn run(self) -> ExitCode {
        let path = self.config.clone().or_else(default_config_path);
        let load = || Config::load(path.as_deref().ok_or(ConfigError::NotFound)?);
        let quiet = self.quiet > 0;
        let result = match self.command {
            Command::Fetch(args) => {
                let args = fetch::FetchArgs { quiet, ..args };
                async { fetch::run(&load()?, args).await }.await
            }
            Command::Run => async { run::run(load()?).await }.await,
            Command::Check(args) => async { check::run(&load()?, args).await }.await,
            Command::Status(args) => async { status::run(&load()?, args).await }.await,
            Command::OAuth(args) => async { oauth::run(&load()?, args).await }.await,
            Command::Import(args) => async { import::run(&load()?, args).await }.await,
            Command::Adopt(args) => async { adopt::run(&load()?, args).await }.await,
            Command::Demo(args) => demo::run(args).await,
            Command::Completions(args) => reference::completions(&args),
            Command::Man => reference::man(),
        };
        match result {
            Ok(code) => code,
            // A config that cannot be loaded is a usage error: nothing ran.
            Err(e) if e.is::<ConfigError>() => {
                eprintln!("popferry: {e}");
                ExitCode::from(EXIT_USAGE)
            }
            Err(e) if e.is::<UsageError>() => {
                eprintln!("popferry: {}", crate::poll::line_with_causes(e.as_ref()));
                ExitCode::from(EXIT_USAGE)
            }
            Err(e) => {
                eprintln!("popferry: {}", crate::poll::line_with_causes(e.as_ref()));
                ExitCode::from(EXIT_FAILED)
            }
        }
    }
}
