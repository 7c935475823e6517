//! `popferry status`: the ledger's view of each account.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::Config;
use crate::ledger::{Ledger, PollOutcome, PollSummary, RecipientState};

pub async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let ledger = Ledger::open_shared(&config.state)
        .with_context(|| format!("opening the ledger {}", config.state.display()))?;
    let statuses = ledger.status().await?;
    let refusals = ledger.refused_recipients().await?;
    for account in &config.accounts {
        let status = statuses.iter().find(|s| s.account == account.name);
        println!("{}:", account.name);
        let Some(status) = status else {
            println!("  never polled");
            continue;
        };
        println!("  last poll: {}", last_poll(status.last_poll.as_ref()));
        // The ledger forgets a message once a complete listing no longer
        // shows it, so these counts cover the last listing and what was
        // delivered since.
        println!(
            "  messages in the last listing: delivered {} (not yet deleted {}), rejected {}, quarantined {}",
            status.delivered, status.awaiting_delete, status.rejected, status.quarantined
        );
        let refused: Vec<_> = refusals
            .iter()
            .filter(|r| r.account == account.name)
            .collect();
        if !refused.is_empty() {
            println!("  recipients the relay refused:");
        }
        for r in refused {
            let how = match r.state {
                RecipientState::Deferred => "for now, tried again at the next poll",
                _ => "for good",
            };
            println!(
                "    message {}, {}: {how} ({}): {}",
                r.uid,
                r.address,
                format_time(r.at),
                r.reply
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn last_poll(poll: Option<&PollSummary>) -> String {
    let Some(poll) = poll else {
        return "never".into();
    };
    let when = format_time(poll.started_at);
    match (poll.outcome, &poll.error) {
        (None, _) => format!("{when}, did not finish (still running, or the process was stopped)"),
        (Some(PollOutcome::Ok), _) => format!(
            "{when}, ok: {} listed, {} delivered, {} deleted, {} deferred, {} rejected",
            poll.listed, poll.delivered, poll.deleted, poll.deferred, poll.rejected
        ),
        (Some(PollOutcome::Failed), error) => {
            format!(
                "{when}, FAILED: {}",
                error.as_deref().unwrap_or("unknown error")
            )
        }
    }
}

fn format_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}
