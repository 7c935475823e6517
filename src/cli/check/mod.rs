//! `popferry check`: can every account work as configured? Without the
//! network it looks at everything on this machine an account needs (see
//! [`offline`]); with `--connect` it also logs in to every POP3 server and
//! relay and shows what each offers (see [`connect`]).
//!
//! Every item is one line, `WHO: WHAT: DETAIL` or `WHO: WHAT: FAILED:
//! WHAT TO DO`, and the last line says `ok` only when no item failed, so
//! the exit code and the words agree.

mod connect;
mod offline;
mod paths;
mod serverinfo;

use std::process::ExitCode;

use super::EXIT_FAILED;
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Also connect to each account's server and to each relay: TLS,
    /// capabilities and login, then QUIT without fetching or sending mail
    #[arg(long)]
    pub connect: bool,
}

pub async fn run(config: &Config, args: CheckArgs) -> anyhow::Result<ExitCode> {
    let mut report = Report::default();
    offline::check(config, &mut report);
    if args.connect {
        connect::check(config, &mut report).await;
    }
    let path = config.path.display();
    if report.problems == 0 {
        println!(
            "{path}: ok, {} account(s), ledger {}",
            config.accounts.len(),
            config.state.describe()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{path}: FAILED: {} problem(s), each on a line above",
            report.problems
        );
        Ok(ExitCode::from(EXIT_FAILED))
    }
}

/// The lines printed so far and how many of them failed.
#[derive(Debug, Default)]
struct Report {
    problems: usize,
}

impl Report {
    /// One item: what was found, or what to do about it.
    fn item(&mut self, who: &str, what: &str, outcome: Result<String, String>) {
        match outcome {
            Ok(detail) => println!("{who}: {what}: {detail}"),
            Err(problem) => self.fail(who, what, &problem),
        }
    }

    fn fail(&mut self, who: &str, what: &str, problem: &str) {
        self.problems += 1;
        println!("{who}: {what}: FAILED: {problem}");
    }

    /// A detail under an item, never a failure.
    fn detail(&self, who: &str, line: &str) {
        println!("{who}:   {line}");
    }
}
