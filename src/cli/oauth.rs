//! `popferry oauth login ACCOUNT` and `popferry oauth status`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use super::EXIT_USAGE;

use crate::config::{Account, Config, Credential};
use crate::oauth::login::{sign_in, Flow};
use crate::oauth::{OAuth2, Registration};

#[derive(Debug, Args)]
pub struct OAuthArgs {
    #[command(subcommand)]
    command: OAuthCommand,
}

#[derive(Debug, Subcommand)]
enum OAuthCommand {
    /// Sign in once so popferry can refresh tokens on its own: writes the
    /// account's refresh_token_file
    Login {
        /// The account (its [account.oauth2] table, or its relay's
        /// [smtp.oauth2] with --smtp)
        account: String,
        /// Sign in for the account's SMTP relay instead of its mailbox
        #[arg(long)]
        smtp: bool,
        /// The sign-in flow [default: device where the provider has one,
        /// else browser]
        #[arg(long, value_enum)]
        flow: Option<FlowArg>,
    },
    /// Per account: where tokens come from, expiry, last refresh, last error
    Status,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FlowArg {
    /// Show a URL and a code to enter on any device (RFC 8628)
    Device,
    /// Open a URL in a browser on this machine (authorization code + PKCE)
    Browser,
}

pub async fn run(config: &Config, args: OAuthArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        OAuthCommand::Login {
            account,
            smtp,
            flow,
        } => login(config, &account, smtp, flow).await,
        OAuthCommand::Status => {
            status(config);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn login(
    config: &Config,
    name: &str,
    smtp: bool,
    flow: Option<FlowArg>,
) -> anyhow::Result<ExitCode> {
    // Nothing was tried: like an unknown account for `fetch`, a usage error.
    let usage = |problem: String| {
        eprintln!("popferry: {problem}");
        Ok(ExitCode::from(EXIT_USAGE))
    };
    let Some(account) = config.account(name) else {
        let names: Vec<_> = config.accounts.iter().map(|a| a.name.as_str()).collect();
        return usage(format!(
            "no account {name:?} in {} (it has: {})",
            config.path.display(),
            names.join(", ")
        ));
    };
    let credential = if smtp {
        account.smtp.credentials.as_ref().map(|c| &c.credential)
    } else {
        Some(&account.credential)
    };
    let registration = match credential {
        Some(Credential::OAuth2(OAuth2::Refresh(registration))) => registration,
        Some(Credential::OAuth2(OAuth2::Command(_))) => {
            return usage(format!(
                "{} of account {name:?} gets its tokens from access_token_command: sign in \
                 with that tool instead",
                table(smtp)
            ))
        }
        _ => {
            return usage(format!(
                "account {name:?} has no {} table, so there is nothing to sign in to; see \
                 the README's Microsoft 365 and Gmail sections",
                table(smtp)
            ))
        }
    };
    let flow = match flow {
        Some(FlowArg::Device) => Flow::Device,
        Some(FlowArg::Browser) => Flow::Browser,
        None => match Flow::preferred(registration) {
            Some(flow) => flow,
            None => {
                return usage(format!(
                    "{} of account {name:?} has neither device_authorization_url nor \
                     authorization_url (a provider preset sets them)",
                    table(smtp)
                ))
            }
        },
    };
    let tell = |text: String| println!("{text}");
    sign_in(registration, name, flow, &tell)
        .await
        .with_context(|| format!("signing in for account {name:?}"))?;
    println!(
        "Signed in: the refresh token is in {}",
        registration.refresh_token_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn table(smtp: bool) -> &'static str {
    if smtp {
        "[smtp.oauth2]"
    } else {
        "[account.oauth2]"
    }
}

fn status(config: &Config) {
    let mut any = false;
    for account in &config.accounts {
        for (what, oauth2, flag) in tables(account) {
            any = true;
            let mut line = describe(oauth2);
            if !signed_in(oauth2) {
                line += &format!(
                    "; sign in with `popferry oauth login {}{flag}`",
                    account.name
                );
            }
            println!("{} ({what}): {line}", account.name);
        }
    }
    if !any {
        println!(
            "no account in {} logs in with OAuth2 (an [account.oauth2] or [smtp.oauth2] table)",
            config.path.display()
        );
    }
}

/// False while the refresh-token file is missing or empty.
pub(super) fn signed_in(oauth2: &OAuth2) -> bool {
    match oauth2 {
        OAuth2::Refresh(registration) => crate::oauth::status(registration).signed_in,
        OAuth2::Command(_) => true,
    }
}

/// The account's `oauth2` tables: what each is for, and the flag that
/// picks it for `popferry oauth login`.
pub(super) fn tables(account: &Account) -> Vec<(&'static str, &OAuth2, &'static str)> {
    let relay = account.smtp.credentials.as_ref().map(|c| &c.credential);
    [
        ("mailbox", Some(&account.credential), ""),
        ("relay", relay, " --smtp"),
    ]
    .into_iter()
    .filter_map(|(what, credential, flag)| match credential {
        Some(Credential::OAuth2(oauth2)) => Some((what, oauth2, flag)),
        _ => None,
    })
    .collect()
}

pub(super) fn describe(oauth2: &OAuth2) -> String {
    match oauth2 {
        OAuth2::Command(command) => format!("tokens from access_token_command `{command}`"),
        OAuth2::Refresh(registration) => describe_file(registration),
    }
}

fn describe_file(registration: &Arc<Registration>) -> String {
    let status = crate::oauth::status(registration);
    let file = registration.refresh_token_file.display();
    if !status.signed_in {
        return format!("not signed in ({file} is missing or empty)");
    }
    let now = SystemTime::now();
    let mut line = match registration.provider {
        Some(provider) => format!("{}, refresh token in {file}", provider.name()),
        None => format!("refresh token in {file}"),
    };
    match status.expires_at {
        Some(at) if at > now => line += &format!(", access token valid until {}", stamp(at)),
        Some(at) => line += &format!(", access token expired at {}", stamp(at)),
        None => line += ", no access token cached",
    }
    if let Some(at) = status.refreshed_at {
        line += &format!(", last refresh {} ({} so far)", stamp(at), status.refreshes);
    }
    if let Some((at, error)) = status.last_error {
        line += &format!("\n    last error at {}: {error}", stamp(at));
    }
    line
}

fn stamp(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}
