//! `popferry import fetchmail|mpop|getmail FILE`: another program's record
//! of fetched mail into the ledger, so moving to popferry with
//! `keep = true` delivers none of that mail again.

use std::path::PathBuf;
use std::process::ExitCode;

use super::EXIT_USAGE;
use crate::config::Config;
use crate::import::{self, Peer};
use crate::ledger::Ledger;
use crate::poll::line_with_causes;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The program that wrote FILE
    #[arg(value_enum)]
    pub tool: Tool,
    /// fetchmail: ~/.fetchids; mpop: ~/.mpop_uidls/USER_at_HOST;
    /// getmail: ~/.getmail/oldmail-SERVER-PORT-USER
    pub file: PathBuf,
    /// The account the unique-ids belong to [default: the one whose POP3
    /// user and server the file names]
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Tool {
    Fetchmail,
    Mpop,
    Getmail,
}

impl From<Tool> for Peer {
    fn from(tool: Tool) -> Peer {
        match tool {
            Tool::Fetchmail => Peer::Fetchmail,
            Tool::Mpop => Peer::Mpop,
            Tool::Getmail => Peer::Getmail,
        }
    }
}

pub async fn run(config: &Config, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let named = match args.account.as_deref() {
        Some(name) => match config.account(name) {
            Some(account) => Some(account),
            None => {
                return usage(format!(
                    "no account named {name:?} in {}",
                    config.path.display()
                ))
            }
        },
        None => None,
    };
    // Everything that can be wrong with the file is found before the
    // ledger is opened, so a bad file changes nothing.
    let assigned = match import::read(args.tool.into(), &args.file)
        .and_then(|lists| import::assign(&args.file, lists, &config.accounts, named))
    {
        Ok(assigned) => assigned,
        Err(e) => return usage(line_with_causes(&e)),
    };
    // The polling lock: a daemon polling while rows appear under it could
    // deliver a message in between, and one not yet stopped would keep
    // delivering by the ledger it read.
    let ledger = match Ledger::open_state(&config.state).await {
        Ok(ledger) => ledger,
        Err(e) => return usage(line_with_causes(&e)),
    };
    for import::Assigned { account, uids } in assigned {
        let uids = uids.into_iter().map(|uid| (uid, None)).collect();
        let adopted = ledger
            .record_delivered_elsewhere(&account.name, uids)
            .await?;
        println!(
            "imported {} unique-ids for account {} from {}; {} already known",
            adopted.added,
            account.name,
            args.file.display(),
            adopted.known
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn usage(message: String) -> anyhow::Result<ExitCode> {
    eprintln!("popferry: {message}");
    Ok(ExitCode::from(EXIT_USAGE))
}
