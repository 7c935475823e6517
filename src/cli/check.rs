//! `popferry check`: is the configuration valid, which certificates does
//! each connection trust, and can we log in?

use std::collections::HashMap;
use std::process::ExitCode;

use super::EXIT_FAILED;
use crate::config::{ClientIdentity, Config, Protocol, SmtpConfig, TlsMode, Trust};
use crate::deliver::Relay;
use crate::session::Session;
use crate::tls;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Also connect to each account's server, log in and list its
    /// capabilities, and connect (and log in) to each relay
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
    let mut failed = false;
    for account in &config.accounts {
        let pop3 = &account.pop3;
        let smtp = &account.smtp;
        let relay = match smtp.protocol {
            Protocol::Smtp => "relay",
            Protocol::Lmtp => "LMTP relay",
        };
        let lines = [
            (
                "POP3",
                format!("{}:{}", pop3.host, pop3.port),
                pop3.tls,
                &pop3.trust,
                &pop3.client_identity,
            ),
            (
                relay,
                smtp.endpoint(),
                smtp.tls,
                &smtp.trust,
                &smtp.client_identity,
            ),
        ];
        for (what, address, mode, trust, identity) in lines {
            match security(mode, trust, identity.as_ref()) {
                Ok(security) => println!("{}: {what} {address}, {security}", account.name),
                Err(e) => {
                    failed = true;
                    println!("{}: {what} {address}: FAILED: {e}", account.name);
                }
            }
        }
        if let Some(multidrop) = &account.multidrop {
            println!(
                "{}: multidrop: to the addresses in {} (topmost) within {}; \
                 messages naming none go to {}",
                account.name,
                multidrop.header,
                multidrop.local_domains.join(", "),
                account.deliver_to.join(", ")
            );
        }
        for (what, oauth2, flag) in super::oauth::tables(account) {
            let state = super::oauth::describe(oauth2);
            if super::oauth::signed_in(oauth2) {
                println!("{}: OAuth2 ({what}): {state}", account.name);
            } else {
                failed = true;
                println!(
                    "{}: OAuth2 ({what}): FAILED: {state}; sign in with `popferry oauth login {}{flag}`",
                    account.name, account.name
                );
            }
        }
    }
    if args.connect {
        failed |= connect(config).await?;
    }
    Ok(if failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// How a connection is secured and what it trusts, in one phrase.
fn security(
    mode: TlsMode,
    trust: &Trust,
    identity: Option<&ClientIdentity>,
) -> Result<String, tls::TlsConfigError> {
    let mode = match mode {
        TlsMode::None => return Ok("no TLS".to_owned()),
        TlsMode::Implicit => "implicit TLS",
        TlsMode::StartTls => "STARTTLS",
    };
    let mut phrase = format!("{mode}, trusts {}", tls::trust_source(trust)?);
    if let Some(identity) = identity {
        phrase += &format!(", client certificate {}", identity.cert_path.display());
    }
    Ok(phrase)
}

/// Logs in to every account's server and sets up every relay once;
/// true if any failed.
async fn connect(config: &Config) -> anyhow::Result<bool> {
    let mut failed = false;
    let mut relays: HashMap<&SmtpConfig, bool> = HashMap::new();
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
                println!("{}: FAILED: {}", account.name, e.with_causes());
            }
        }
        let smtp = account.smtp.as_ref();
        if let Some(ok) = relays.get(smtp) {
            failed |= !ok;
            continue;
        }
        let relay = smtp.endpoint();
        let probed = match Relay::new(smtp, &account.name) {
            Ok(handle) => handle.probe().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match &probed {
            Ok(()) => println!("{}: relay {relay}: connected", account.name),
            Err(e) => println!("{}: relay {relay}: FAILED: {e}", account.name),
        }
        failed |= probed.is_err();
        relays.insert(smtp, probed.is_ok());
    }
    Ok(failed)
}
