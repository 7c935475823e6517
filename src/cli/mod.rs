//! The command line. This is the edge of the program: library errors become
//! `anyhow` errors with context here, and nowhere else.

mod check;
mod demo;
mod fetch;
mod oauth;
mod progress;
mod run;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use progress::LogWriter;

use crate::config::{default_config_path, Config, ConfigError, LogFormat};

/// Moves mail from POP3 mailboxes to an SMTP relay, exactly once.
#[derive(Debug, Parser)]
#[command(name = "popferry", version)]
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
    /// Show what the ledger knows about each account
    Status,
    /// Sign in to OAuth2 providers (Microsoft 365, Gmail) and show token state
    #[command(name = "oauth")]
    OAuth(oauth::OAuthArgs),
    /// Move sample mail between a POP3 server and an SMTP receiver started
    /// on loopback for the occasion; needs no config and no network
    Demo(demo::DemoArgs),
}

/// Exit status: 0 all well, 1 some account failed, 2 usage or config error.
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

impl Cli {
    /// The `tracing` filter the verbosity flags ask for; `RUST_LOG` wins.
    pub fn log_filter(&self) -> &'static str {
        match (self.verbose, self.quiet) {
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
            Command::Status => async { status::run(&load()?).await }.await,
            Command::OAuth(args) => async { oauth::run(&load()?, args).await }.await,
            Command::Demo(args) => demo::run(args).await,
        };
        match result {
            Ok(code) => code,
            // A config that cannot be loaded is a usage error: nothing ran.
            Err(e) if e.is::<ConfigError>() => {
                eprintln!("popferry: {e}");
                ExitCode::from(EXIT_USAGE)
            }
            Err(e) => {
                eprintln!("popferry: {}", crate::poll::line_with_causes(e.as_ref()));
                ExitCode::from(EXIT_FAILED)
            }
        }
    }
}
