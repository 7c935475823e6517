//! `popferry status`: the ledger's view of each account, read-only.
//!
//! It reads the ledger with [`read_status`]: no lock (it reads beside a
//! running daemon), no migration and nothing created, so it is safe as any
//! user, on a SQLite file or a PostgreSQL database alike. What it prints is
//! one consistent [`Snapshot`](crate::ledger::Snapshot); `text.rs` and
//! `json.rs` render it for people and for scripts.

mod json;
mod text;

use std::process::ExitCode;

use crate::config::{Account, Config};
use crate::ledger::{read_status, Found};
use crate::poll::line_with_causes;

#[derive(Debug, Default, clap::Args)]
pub struct StatusArgs {
    /// Show these accounts in detail: the recent polls, the messages waiting
    /// for another attempt and when it comes, the refused recipients
    #[arg(value_name = "ACCOUNT")]
    pub accounts: Vec<String>,
    /// Print one JSON document on stdout instead (fields in the README)
    #[arg(long)]
    pub json: bool,
}

/// What the renderers need: the configuration's accounts to show, each
/// with its detail or not, and what the ledger holds.
pub(super) struct View<'a> {
    /// The ledger's path or URL.
    pub ledger: String,
    pub accounts: Vec<&'a Account>,
    pub detailed: bool,
    pub found: Found,
    /// Unix seconds, for "tried again at the next poll" versus later.
    pub now: i64,
}

pub async fn run(config: &Config, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let accounts = match chosen(config, &args.accounts) {
        Ok(accounts) => accounts,
        Err(message) => {
            eprintln!("popferry: {message}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let found = match read_status(&config.state, args.accounts.clone()).await {
        Ok(found) => found,
        Err(e) => {
            eprintln!("popferry: {}", line_with_causes(&e));
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let view = View {
        ledger: config.state.describe(),
        accounts,
        detailed: !args.accounts.is_empty(),
        found,
        now: now(),
    };
    if args.json {
        println!("{}", json::render(&view));
    } else {
        print!("{}", text::render(&view));
    }
    Ok(ExitCode::SUCCESS)
}

/// The accounts named on the command line, or every account; a name the
/// configuration does not have is a usage error that names the file.
fn chosen<'a>(config: &'a Config, names: &[String]) -> Result<Vec<&'a Account>, String> {
    if names.is_empty() {
        return Ok(config.accounts.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            config
                .accounts
                .iter()
                .find(|a| &a.name == name)
                .ok_or_else(|| {
                    let known: Vec<&str> =
                        config.accounts.iter().map(|a| a.name.as_str()).collect();
                    format!(
                        "no account named {name:?} in {} (its accounts: {})",
                        config.path.display(),
                        known.join(", ")
                    )
                })
        })
        .collect()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// RFC 3339 in UTC, or the bare number for a time out of range.
pub(super) fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}
