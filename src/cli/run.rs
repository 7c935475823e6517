//! `popferry run`: the daemon, see [`crate::daemon`].

use std::process::ExitCode;

use crate::config::Config;
use crate::daemon::{self, DaemonError};

pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    match daemon::run(config).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // A ledger that cannot be opened or is locked, a metrics_listen
        // address that cannot be bound: the daemon never started.
        Err(e @ (DaemonError::Ledger(_) | DaemonError::Metrics(_))) => Err(super::usage(e)),
        Err(e) => Err(e.into()),
    }
}
