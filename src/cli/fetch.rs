//! `popferry fetch`: one poll of each account, as many at once as the
//! `[daemon]` limits let `popferry run` poll: `max_concurrent_polls`,
//! `max_connections_per_server` and `max_logins_per_second` hold here too,
//! so a one-shot fetch of many accounts is no burst either.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;
use tracing::Instrument as _;

use super::progress::Progress;
use super::{EXIT_FAILED, EXIT_USAGE};
use crate::config::Config;
use crate::deliver::Relays;
use crate::ledger::{Ledger, PollReport};
use crate::poll::{PollError, PollOptions};
use crate::scheduler::Shared;

#[derive(Debug, Default, clap::Args)]
pub struct FetchArgs {
    /// Accounts to poll [default: all]
    pub accounts: Vec<String>,
    /// Try messages the relay rejected now, instead of at their retry time
    #[arg(long)]
    pub retry_rejected: bool,
    /// Deliver everything a kept mailbox holds even on a first poll with
    /// more than 50 messages (see `popferry adopt` and `popferry import`)
    #[arg(long)]
    pub deliver_existing: bool,
    /// No progress display (set from the global -q).
    #[arg(skip)]
    pub quiet: bool,
}

pub async fn run(config: &Config, args: FetchArgs) -> anyhow::Result<ExitCode> {
    if let Some(unknown) = args.accounts.iter().find(|a| config.account(a).is_none()) {
        eprintln!(
            "popferry: no account named {unknown:?} in {}",
            config.path.display()
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let ledger = Ledger::open_state(&config.state)
        .await
        .map_err(super::usage)?;
    let options = PollOptions {
        retry_rejected: args.retry_rejected,
        deliver_existing: args.deliver_existing,
        ..PollOptions::default()
    };
    let shared = Arc::new(Shared::new(ledger, config.daemon));
    let progress = Progress::on_terminal(args.quiet);
    let mut relays = Relays::default();
    let mut polls = JoinSet::new();
    for account in &config.accounts {
        if !args.accounts.is_empty() && !args.accounts.contains(&account.name) {
            continue;
        }
        let relay = relays.get(&account.smtp, &account.name)?;
        let (account, shared, mut options) =
            (account.clone(), Arc::clone(&shared), options.clone());
        if let Some(progress) = &progress {
            options.events = progress.account(&account.name);
        }
        let span = tracing::info_span!("account", account = %account.name);
        polls.spawn(
            async move {
                let started = Instant::now();
                let turn = shared.turn(&account).await;
                let result = turn.poll_once(&account, &relay, &options).await;
                (account.name, started.elapsed(), result)
            }
            .instrument(span),
        );
    }
    let mut results = polls.join_all().await;
    // Polls that found nothing are only counted until now (`poll/history.rs`).
    crate::daemon::flush_empty_polls(&shared.ledger).await;
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let mut failed = false;
    for (name, elapsed, result) in &results {
        failed |= result.is_err();
        println!("{}", summary(name, elapsed.as_secs_f64(), result));
    }
    Ok(if failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn summary(name: &str, seconds: f64, result: &Result<PollReport, PollError>) -> String {
    match result {
        Ok(r) => format!(
            "{name}: ok in {seconds:.2}s: {} listed, {} delivered, {} deleted, {} deferred, {} rejected",
            r.listed, r.delivered, r.deleted, r.deferred, r.rejected
        ),
        Err(e) => format!("{name}: FAILED after {seconds:.2}s: {}", e.with_causes()),
    }
}
