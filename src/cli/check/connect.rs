//! `check --connect`: a PostgreSQL ledger, and every account's POP3 server
//! and every distinct relay, connected to, secured and logged in to
//! exactly as `fetch` would, then left before any mail is fetched or sent.

use std::collections::HashSet;

use super::{serverinfo, Report};
use crate::config::{Account, Database, SmtpConfig, State, TlsMode};
use crate::deliver::Relay;
use crate::ledger::{read_status, Found};
use crate::poll::line_with_causes;
use crate::session::Session;

pub(super) async fn check(config: &crate::config::Config, report: &mut Report) {
    if let State::Postgres(database) = &config.state {
        ledger(&config.state, database, report).await;
    }
    let mut relays: HashSet<&SmtpConfig> = HashSet::new();
    for account in &config.accounts {
        pop3(account, report).await;
        if relays.insert(account.smtp.as_ref()) {
            relay(account, report).await;
        }
    }
}

/// A PostgreSQL ledger, connected to and read as `status` reads it: TLS,
/// the password and the schema, with no lock taken and nothing written.
async fn ledger(state: &State, database: &Database, report: &mut Report) {
    let what = format!("PostgreSQL {}", database.url());
    let outcome = match read_status(state, Vec::new()).await {
        Ok(Found::Ledger(snapshot)) => Ok(format!(
            "logged in; the ledger knows {} account(s)",
            snapshot.accounts.len()
        )),
        Ok(Found::Empty) => Ok("logged in; no tables yet, the first poller creates them".into()),
        Ok(Found::Missing) => Err(format!(
            "the database {} does not exist: create it, owned by {} \
             (CREATE DATABASE {} OWNER {})",
            database.name, database.user, database.name, database.user
        )),
        Err(e) => Err(line_with_causes(&e)),
    };
    report.item("ledger", &what, outcome);
}

async fn pop3(account: &Account, report: &mut Report) {
    let name = account.name.as_str();
    let peer = format!("{}:{}", account.pop3.host, account.pop3.port);
    let what = format!("POP3 {peer}");
    let mut session = match Session::open(account).await {
        Ok(session) => session,
        Err(e) => return report.fail(name, &what, &e.with_causes()),
    };
    println!(
        "{name}: logged in to {peer} ({})",
        tls_mode(account.pop3.tls)
    );
    serverinfo::tls(report, name, &what, session.client().tls_info());
    let capabilities: Vec<String> = (session.capabilities().iter())
        .map(|(keyword, args)| {
            std::iter::once(keyword.to_owned())
                .chain(args.iter().cloned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let sasl = session.capabilities().args("SASL").unwrap_or_default();
    serverinfo::offers(report, name, &capabilities, sasl);
    report.detail(
        name,
        &format!("popferry logs in with: {}", session.login_method()),
    );
    if let Err(e) = session.quit().await {
        report.fail(name, &what, &format!("QUIT: {}", line_with_causes(&e)));
    }
}

async fn relay(account: &Account, report: &mut Report) {
    let name = account.name.as_str();
    let smtp = account.smtp.as_ref();
    let what = format!("relay {}", smtp.endpoint());
    let connection = match Relay::new(smtp, name) {
        Ok(relay) => relay.probe().await.map_err(|e| line_with_causes(&e)),
        Err(e) => Err(line_with_causes(&e)),
    };
    let connection = match connection {
        Ok(connection) => connection,
        Err(problem) => return report.fail(name, &what, &problem),
    };
    let login = match (&smtp.credentials, connection.mechanism()) {
        (Some(credentials), Some(_)) => format!("logged in as {}", credentials.username),
        _ => "no login configured".to_owned(),
    };
    report.item(
        name,
        &what,
        Ok(format!("connected ({}), {login}", tls_mode(smtp.tls))),
    );
    serverinfo::tls(report, name, &what, connection.tls_info());
    serverinfo::offers(
        report,
        name,
        connection.capabilities(),
        connection.auth_mechanisms(),
    );
    let chosen = connection.mechanism().map_or_else(
        || "no AUTH (no username configured)".to_owned(),
        |mechanism| format!("SASL {mechanism}"),
    );
    report.detail(name, &format!("popferry logs in with: {chosen}"));
    connection.quit().await;
}

fn tls_mode(mode: TlsMode) -> &'static str {
    match mode {
        TlsMode::Implicit => "implicit TLS",
        TlsMode::StartTls => "STARTTLS",
        TlsMode::None => "no TLS",
    }
}
