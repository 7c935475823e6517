//! The checks that need no network: every secret source, the ledger and
//! quarantine folders, every TLS file and the OAuth2 sign-ins.

use super::{paths, Report};
use crate::config::{
    Account, ClientIdentity, Config, Credential, Database, DatabaseHost, PasswordSource, Protocol,
    State, TlsMode, Trust,
};
use crate::oauth::OAuth2;
use crate::tls;

pub(super) fn check(config: &Config, report: &mut Report) {
    match &config.state {
        State::File(path) => {
            report.item("ledger", &path.display().to_string(), paths::ledger(path))
        }
        State::Postgres(database) => self::database(report, database),
    }
    for account in &config.accounts {
        check_account(account, report);
    }
}

/// A PostgreSQL ledger: how it is reached and its password. Whether the
/// server answers, and takes the password, is for `check --connect`'s
/// first poll to find; this only reads the local settings.
fn database(report: &mut Report, database: &Database) {
    let link = match &database.host {
        DatabaseHost::Tcp(_) => security(TlsMode::Implicit, &database.trust, None)
            .map(|phrase| phrase.replace("implicit TLS", "TLS required"))
            .map_err(|e| e.to_string()),
        DatabaseHost::Socket(dir) => Ok(format!("Unix socket in {}, no TLS", dir.display())),
    };
    let link = link.map(|phrase| {
        format!(
            "{phrase}; pool of {} connection(s); `run` shares the accounts with other \
             instances under {} leases, and each server's connection cap",
            database.max_connections,
            humantime::format_duration(database.fleet.lease)
        )
    });
    report.item("ledger", &format!("PostgreSQL {}", database.url()), link);
    if let DatabaseHost::Tcp(_) = database.host {
        ca_file(report, "ledger", &database.trust);
    }
    if let Some(source) = &database.password {
        secret(report, "ledger", "[database] ", source);
    }
}

fn check_account(account: &Account, report: &mut Report) {
    let name = account.name.as_str();
    let (pop3, smtp) = (&account.pop3, &account.smtp);
    let relay = match smtp.protocol {
        Protocol::Smtp => "relay",
        Protocol::Lmtp => "LMTP relay",
    };
    let pop3_address = format!("POP3 {}:{}", pop3.host, pop3.port);
    let relay_address = format!("{relay} {}", smtp.endpoint());
    let links = [
        (pop3_address, pop3.tls, &pop3.trust, &pop3.client_identity),
        (relay_address, smtp.tls, &smtp.trust, &smtp.client_identity),
    ];
    for (what, mode, trust, identity) in links {
        report.item(
            name,
            &what,
            security(mode, trust, identity.as_ref()).map_err(|e| e.to_string()),
        );
        if mode != TlsMode::None {
            ca_file(report, name, trust);
            if let Some(identity) = identity {
                client_certificate(report, name, identity);
            }
        }
    }
    match &account.credential {
        Credential::Password(source) => secret(report, name, "", source),
        Credential::OAuth2(_) => {}
    }
    if let Some(credentials) = &smtp.credentials {
        if let Credential::Password(source) = &credentials.credential {
            secret(report, name, "relay ", source);
        }
    }
    for (what, oauth2, flag) in super::super::oauth::tables(account) {
        oauth(report, account, what, oauth2, flag);
    }
    if let Some(dir) = &account.quarantine_dir {
        let what = format!("quarantine_dir {}", dir.display());
        report.item(name, &what, paths::folder(dir));
    }
    if let Some(multidrop) = &account.multidrop {
        let detail = format!(
            "to the addresses in {} (topmost) within {}; messages naming none go to {}",
            multidrop.header,
            multidrop.local_domains.join(", "),
            account.deliver_to.join(", ")
        );
        report.item(name, "multidrop", Ok(detail));
    }
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

/// Each certificate of a `ca_file`, failing on one that is out of date. A
/// file that does not load was already reported by [`security`].
fn ca_file(report: &mut Report, name: &str, trust: &Trust) {
    let Trust::Roots {
        ca_file: Some(path),
    } = trust
    else {
        return;
    };
    let Ok(certificates) = tls::ca_file_certificates(path) else {
        return;
    };
    let what = format!("ca_file {}", path.display());
    for certificate in certificates {
        if certificate.is_valid() {
            report.detail(name, &format!("ca_file certificate: {certificate}"));
        } else {
            let problem = format!(
                "certificate {} {}: replace it with a current one",
                certificate.subject,
                certificate.period()
            );
            report.fail(name, &what, &problem);
        }
    }
}

/// The client certificate's dates: its key was matched to it when the
/// configuration loaded.
fn client_certificate(report: &mut Report, name: &str, identity: &ClientIdentity) {
    let what = format!("client_cert {}", identity.cert_path.display());
    let outcome = match identity.certificate() {
        None => Err("is not an X.509 certificate".to_owned()),
        Some(cert) if cert.is_valid() => Ok(format!(
            "{cert}; client_key {} matches it",
            identity.key_path.display()
        )),
        Some(cert) => Err(format!(
            "{} {}: renew it (the server will refuse it)",
            cert.subject,
            cert.period()
        )),
    };
    report.item(name, &what, outcome);
}

/// One password source; `prefix` says whose (`"relay "` for the relay's).
fn secret(report: &mut Report, name: &str, prefix: &str, source: &PasswordSource) {
    let (key, value, outcome) = match source {
        PasswordSource::Inline(_) => (
            "password",
            String::new(),
            Ok("written in the configuration file".to_owned()),
        ),
        PasswordSource::File(path) => (
            "password_file",
            format!(" {}", path.display()),
            paths::secret_file(path),
        ),
        PasswordSource::Env(variable) => ("password_env", format!(" {variable}"), env(variable)),
        PasswordSource::Command(command) => {
            ("password_command", String::new(), paths::command(command))
        }
    };
    report.item(name, &format!("{prefix}{key}{value}"), outcome);
}

fn env(variable: &str) -> Result<String, String> {
    match std::env::var_os(variable) {
        None => Err(format!(
            "{variable} is not set: set it in the environment popferry runs in (for the \
             service, an Environment= or EnvironmentFile= line)"
        )),
        Some(value) if value.is_empty() => Err(format!("{variable} is set but empty")),
        Some(value) if value.to_str().is_none() => Err(format!("{variable} is not valid UTF-8")),
        Some(_) => Ok("set (not shown)".to_owned()),
    }
}

fn oauth(report: &mut Report, account: &Account, what: &str, oauth2: &OAuth2, flag: &str) {
    let name = account.name.as_str();
    let item = format!("OAuth2 ({what})");
    let state = super::super::oauth::describe(oauth2);
    if super::super::oauth::signed_in(oauth2) {
        report.item(name, &item, Ok(state));
    } else {
        let problem = format!("{state}; sign in with `popferry oauth login {name}{flag}`");
        report.fail(name, &item, &problem);
    }
    match oauth2 {
        OAuth2::Command(command) => {
            report.item(
                name,
                &format!("{item} access_token_command"),
                paths::command(command),
            );
        }
        OAuth2::Refresh(registration) => {
            if let Some(source) = &registration.client_secret {
                secret(report, name, &format!("{item} client_secret "), source);
            }
        }
    }
}
