//! `popferry adopt ACCOUNT`: record everything the mailbox lists now as
//! delivered, without fetching it, for a mailbox whose mail another
//! program already delivered and whose state file is lost.

use std::process::ExitCode;

use anyhow::Context as _;

use super::{EXIT_FAILED, EXIT_USAGE};
use crate::config::Config;
use crate::ledger::Ledger;
use crate::poll::line_with_causes;
use crate::session::{Listing, Session};

#[derive(Debug, clap::Args)]
pub struct AdoptArgs {
    /// The account whose listed messages are recorded as delivered
    pub account: String,
}

pub async fn run(config: &Config, args: AdoptArgs) -> anyhow::Result<ExitCode> {
    let Some(account) = config.account(&args.account) else {
        eprintln!(
            "popferry: no account named {:?} in {}",
            args.account,
            config.path.display()
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    // The polling lock, as for fetch: a poll running meanwhile could
    // deliver what is being recorded here.
    let ledger = match Ledger::open_state(&config.state).await {
        Ok(ledger) => ledger,
        Err(e) => {
            eprintln!("popferry: {}", line_with_causes(&e));
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let listed = async {
        let mut session = Session::open(account).await?;
        let listing = session.listing().await?;
        session.quit().await?;
        Ok::<_, crate::poll::PollError>(listing)
    };
    let Listing { uids, sizes } = match listed.await {
        Ok(listing) => listing,
        Err(e) => {
            eprintln!("popferry: account {}: {}", account.name, e.with_causes());
            return Ok(ExitCode::from(EXIT_FAILED));
        }
    };
    // The QUIT came first: nothing was deleted, so the listing stands
    // whatever the ledger write does.
    let uids = uids
        .into_iter()
        .map(|(n, uid)| (uid, sizes.get(&n).copied()))
        .collect();
    let adopted = ledger
        .record_delivered_elsewhere(&account.name, uids)
        .await
        .with_context(|| format!("recording the messages of account {}", account.name))?;
    println!(
        "adopted {} messages of account {} as delivered, without fetching them; {} already known",
        adopted.added, account.name, adopted.known
    );
    if !account.keep {
        println!(
            "account {} has keep = false: the next poll deletes them from the server",
            account.name
        );
    }
    Ok(ExitCode::SUCCESS)
}
