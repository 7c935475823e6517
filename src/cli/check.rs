//! `popferry check`: is the configuration valid, and can we log in?

use std::process::ExitCode;

use super::EXIT_FAILED;
use crate::config::Config;
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Also connect to each account's server, log in and list its capabilities
    #[arg(long)]
    pub connect: bool,
}

pub async fn run(config: &Config, args: CheckArgs) -> anyhow::Result<ExitCode> {
    println!(
        "{}: ok, {} account(s), ledger {}",
        config.path.display(),
        config.accounts.len(),
        config.state.display()
    );
    if !args.connect {
        return Ok(ExitCode::SUCCESS);
    }
    let mut failed = false;
    for account in &config.accounts {
        let peer = format!("{}:{}", account.pop3.host, account.pop3.port);
        match Session::open(account).await {
            Ok(mut session) => {
                let caps = session.client().capa().await?.unwrap_or_default();
                let listed: Vec<String> = caps
                    .iter()
                    .map(|(k, args)| {
                        std::iter::once(k.to_owned())
                            .chain(args.iter().cloned())
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect();
                println!(
                    "{}: logged in to {peer}; capabilities: {}",
                    account.name,
                    listed.join(", ")
                );
                session.quit().await?;
            }
            Err(e) => {
                failed = true;
                println!("{}: FAILED: {e}", account.name);
            }
        }
    }
    Ok(if failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}
