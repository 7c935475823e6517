//! `popferry run`: the daemon, see [`crate::daemon`].

use std::process::ExitCode;

use crate::config::Config;
use crate::daemon;

pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    daemon::run(config).await?;
    Ok(ExitCode::SUCCESS)
}
