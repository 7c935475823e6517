//! Checks the serde mirror and builds the runtime types from it.
//!
//! Checks stop at the first problem: each message names the file, the line
//! and the key, which is enough to fix it and run again.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::raw::{PasswordKey, PasswordKeys, RawAccount, RawConfig, RawSmtp};
use super::{oauth, Daemon};
use super::{
    Account, AuthMethod, Config, ConfigError, Credential, PasswordSource, Pop3Server, Secret,
    SmtpAuth, SmtpConfig, SmtpCredentials, TlsMode,
};
use crate::oauth::Use;

const DEFAULT_STATE: &str = "popferry.db";
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Polling faster than this only hammers the POP3 server.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
const PASSWORD_KEYS_HINT: &str = "password, password_file, password_env or password_command";

/// A validated configuration plus what [`super::Config::load`] needs for
/// its permission check.
pub(super) struct Parsed {
    pub config: Config,
    pub has_inline_password: bool,
}

/// Parses and validates `source`, read from (or standing in for) `path`.
pub(super) fn parse(source: &str, path: &Path) -> Result<Parsed, ConfigError> {
    let doc = Document {
        source,
        path,
        base: path.parent().unwrap_or(Path::new("")),
    };
    let raw: RawConfig = toml::from_str(source).map_err(|err| doc.toml_error(err))?;
    let has_inline_password = holds_inline_password(&raw);
    let config = doc.config(&raw)?;
    Ok(Parsed {
        config,
        has_inline_password,
    })
}

fn holds_inline_password(raw: &RawConfig) -> bool {
    raw.smtp
        .as_ref()
        .is_some_and(|s| s.get_ref().password.is_some())
        || raw.account.iter().map(Spanned::get_ref).any(|account| {
            account.password.is_some()
                || (account.smtp.as_ref()).is_some_and(|s| s.get_ref().password.is_some())
        })
}

/// The text being validated and where it came from.
pub(super) struct Document<'a> {
    source: &'a str,
    path: &'a Path,
    /// The folder relative paths in the file are relative to.
    pub base: &'a Path,
}

impl Document<'_> {
    /// The 1-based line holding byte `offset`.
    fn line(&self, offset: usize) -> usize {
        let before = self
            .source
            .as_bytes()
            .get(..offset)
            .unwrap_or(self.source.as_bytes());
        before.iter().filter(|&&byte| byte == b'\n').count() + 1
    }

    fn error(&self, span: Range<usize>, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: self.line(span.start),
            message,
        }
    }

    fn toml_error(&self, mut err: toml::de::Error) -> ConfigError {
        let mut message = err.message().to_owned();
        let span = err.span();
        // toml keeps the dotted path of the offending key private and only
        // prints it, as a last "in `a.b`" line, when it has no source text to
        // quote; type errors do not name the key otherwise.
        err.set_input(None);
        let rendered = err.to_string();
        let keys = rendered
            .lines()
            .last()
            .and_then(|line| line.strip_prefix("in `")?.strip_suffix('`'));
        if let Some(keys) = keys {
            message = format!("in `{keys}`: {message}");
        }
        match span {
            Some(span) => self.error(span, message),
            None => ConfigError::Incomplete {
                path: self.path.to_path_buf(),
                message,
            },
        }
    }

    fn config(&self, raw: &RawConfig) -> Result<Config, ConfigError> {
        let top = Scope {
            doc: self,
            label: String::new(),
        };
        let state = match &raw.state {
            Some(state) => top.path("state", state)?,
            None => self.base.join(DEFAULT_STATE),
        };
        let smtp_scope = Scope {
            doc: self,
            label: "[smtp]: ".to_owned(),
        };
        let smtp = match &raw.smtp {
            Some(table) => Some(Arc::new(smtp_scope.smtp(table.get_ref())?)),
            None => None,
        };
        if raw.account.is_empty() {
            return Err(ConfigError::Incomplete {
                path: self.path.to_path_buf(),
                message: "no [[account]] table: at least one account is required".to_owned(),
            });
        }
        let mut lines_by_name = HashMap::new();
        let mut accounts = Vec::with_capacity(raw.account.len());
        for table in &raw.account {
            let name = top.account_name(&table.get_ref().name, &mut lines_by_name)?;
            let scope = Scope {
                doc: self,
                label: format!("account {name:?}: "),
            };
            accounts.push(scope.account(name, table, smtp.as_ref())?);
        }
        let daemon = match &raw.daemon {
            Some(table) => Scope {
                doc: self,
                label: "[daemon]: ".to_owned(),
            }
            .daemon(table)?,
            None => Daemon::default(),
        };
        let registrations = accounts.iter().flat_map(|account| {
            let own = match &account.credential {
                Credential::OAuth2(oauth2) => Some((oauth2, format!("account {:?}", account.name))),
                Credential::Password(_) => None,
            };
            let relay = account
                .smtp
                .credentials
                .as_ref()
                .and_then(|c| match &c.credential {
                    Credential::OAuth2(oauth2) => {
                        Some((oauth2, format!("the relay of account {:?}", account.name)))
                    }
                    Credential::Password(_) => None,
                });
            own.into_iter().chain(relay)
        });
        oauth::check_shared_files(registrations).map_err(|message| ConfigError::Incomplete {
            path: self.path.to_path_buf(),
            message,
        })?;
        Ok(Config {
            path: self.path.to_path_buf(),
            state,
            daemon,
            accounts,
        })
    }
}

/// One table of the file; `label` prefixes its error messages so that keys
/// which appear in several tables (`host`, `timeout`, ...) are unambiguous.
pub(super) struct Scope<'a> {
    pub doc: &'a Document<'a>,
    label: String,
}

impl Scope<'_> {
    /// An error about one key, at the line where its value is written.
    pub(super) fn error(&self, span: Range<usize>, key: &str, problem: String) -> ConfigError {
        let message = format!("{}key `{key}`: {problem}", self.label);
        self.doc.error(span, message)
    }

    /// An error about the table as a whole, at its header line.
    pub(super) fn table_error(&self, span: Range<usize>, problem: &str) -> ConfigError {
        let message = format!("{}{problem}", self.label);
        self.doc.error(span, message)
    }

    fn account_name(
        &self,
        raw: &Spanned<String>,
        lines_by_name: &mut HashMap<String, usize>,
    ) -> Result<String, ConfigError> {
        let name = raw.get_ref();
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if name.is_empty() || !name.chars().all(allowed) {
            let problem = format!(
                "{name:?} is not a valid account name (use letters, digits, '.', '_' and '-')"
            );
            return Err(self.error(raw.span(), "name", problem));
        }
        let line = self.doc.line(raw.span().start);
        if let Some(first) = lines_by_name.insert(name.clone(), line) {
            let problem = format!("account {name:?} is already defined on line {first}");
            return Err(self.error(raw.span(), "name", problem));
        }
        Ok(name.clone())
    }

    fn account(
        &self,
        name: String,
        table: &Spanned<RawAccount>,
        shared_smtp: Option<&Arc<SmtpConfig>>,
    ) -> Result<Account, ConfigError> {
        let raw = table.get_ref();
        let tls = raw.tls.unwrap_or(TlsMode::Implicit);
        let default_port = if tls == TlsMode::Implicit { 995 } else { 110 };
        let pop3 = Pop3Server {
            host: self.host("host", &raw.host)?,
            port: self.port(raw.port.as_ref(), default_port)?,
            tls,
            trust: self.trust(tls, raw.ca_file.as_ref(), raw.tls_fingerprint.as_ref())?,
            client_identity: self.identity(
                tls,
                raw.client_cert.as_ref(),
                raw.client_key.as_ref(),
            )?,
        };
        let username = self.non_empty("username", &raw.username)?;
        let auth = raw.auth.unwrap_or(AuthMethod::Auto);
        let credential = self.account_credential(raw, table.span(), auth)?;
        let smtp = match &raw.smtp {
            Some(own) => {
                let scope = Scope {
                    doc: self.doc,
                    label: format!("{}[account.smtp]: ", self.label),
                };
                Arc::new(scope.smtp(own.get_ref())?)
            }
            None => Arc::clone(shared_smtp.ok_or_else(|| {
                let problem = "no SMTP relay: add a top-level [smtp] table \
                               or an [account.smtp] table for this account";
                self.table_error(table.span(), problem)
            })?),
        };
        Ok(Account {
            name,
            pop3,
            username,
            credential,
            auth,
            deliver_to: self.deliver_to(&raw.deliver_to)?,
            keep: raw.keep.unwrap_or(false),
            deli: raw.deli.unwrap_or(true),
            poll_interval: self.duration(
                "poll_interval",
                raw.poll_interval.as_ref(),
                DEFAULT_INTERVAL,
                MIN_INTERVAL,
            )?,
            timeout: self.timeout(raw.timeout.as_ref())?,
            max_message_size: self.size(raw.max_message_size.as_ref())?,
            quarantine_dir: self.optional_path("quarantine_dir", raw.quarantine_dir.as_ref())?,
            smtp,
        })
    }

    fn smtp(&self, raw: &RawSmtp) -> Result<SmtpConfig, ConfigError> {
        let tls = raw.tls.unwrap_or(TlsMode::StartTls);
        let default_port = if tls == TlsMode::Implicit { 465 } else { 25 };
        let password = self.password(raw.password_keys())?;
        let credential = match (password, &raw.oauth2) {
            (Some(password), Some(_)) => {
                let problem = "set either a password or an [smtp.oauth2] table, not both";
                return Err(self.table_error(password.span(), problem));
            }
            (Some(password), None) => {
                Some((password.span(), Credential::Password(password.into_inner())))
            }
            (None, Some(table)) => Some((
                table.span(),
                Credential::OAuth2(self.oauth2(table, Use::Smtp)?),
            )),
            (None, None) => None,
        };
        let auth = raw
            .auth
            .as_ref()
            .map_or(SmtpAuth::Auto, |auth| *auth.get_ref());
        if let (Some(raw_auth), Some((_, credential))) = (&raw.auth, &credential) {
            let oauth = matches!(credential, Credential::OAuth2(_));
            let problem = match (auth.uses_oauth2(), oauth) {
                (true, false) => Some(
                    "logs in with OAuth2 tokens: replace the password with an [smtp.oauth2] table",
                ),
                (false, true) if auth != SmtpAuth::Auto => {
                    Some("an [smtp.oauth2] table needs auth = \"xoauth2\" or \"oauthbearer\"")
                }
                _ => None,
            };
            if let Some(problem) = problem {
                return Err(self.error(raw_auth.span(), "auth", problem.to_owned()));
            }
        }
        let credentials = match (&raw.username, credential) {
            (Some(username), Some((_, credential))) => Some(SmtpCredentials {
                username: self.non_empty("username", username)?,
                credential,
                auth,
            }),
            (None, None) => {
                if let Some(auth) = &raw.auth {
                    let problem = "is set but there is no `username` and password to log in with";
                    return Err(self.error(auth.span(), "auth", problem.to_owned()));
                }
                None
            }
            (Some(username), None) => {
                let problem = format!(
                    "needs a password: set one of {PASSWORD_KEYS_HINT}, or an [smtp.oauth2] table"
                );
                return Err(self.error(username.span(), "username", problem));
            }
            (None, Some((span, credential))) => {
                let problem = match credential {
                    Credential::Password(_) => "a password is set but `username` is missing",
                    Credential::OAuth2(_) => {
                        "an [smtp.oauth2] table is set but `username` (the address to log in \
                         as) is missing"
                    }
                };
                return Err(self.table_error(span, problem));
            }
        };
        Ok(SmtpConfig {
            host: self.host("host", &raw.host)?,
            port: self.port(raw.port.as_ref(), default_port)?,
            tls,
            credentials,
            trust: self.trust(tls, raw.ca_file.as_ref(), raw.tls_fingerprint.as_ref())?,
            client_identity: self.identity(
                tls,
                raw.client_cert.as_ref(),
                raw.client_key.as_ref(),
            )?,
            envelope_from: (raw.envelope_from.as_ref())
                .map(|from| self.address("envelope_from", from))
                .transpose()?,
            helo_name: (raw.helo_name.as_ref())
                .map(|helo| self.host("helo_name", helo))
                .transpose()?,
            timeout: self.timeout(raw.timeout.as_ref())?,
        })
    }

    /// A password or an OAuth2 table, whichever the account has, and in
    /// agreement with its `auth`.
    fn account_credential(
        &self,
        raw: &RawAccount,
        table: Range<usize>,
        auth: AuthMethod,
    ) -> Result<Credential, ConfigError> {
        let password = self.password(raw.password_keys())?;
        match (password, &raw.oauth2) {
            (Some(password), Some(_)) => {
                let problem = "set either a password or an [account.oauth2] table, not both";
                Err(self.table_error(password.span(), problem))
            }
            (Some(password), None) if auth.uses_oauth2() => {
                let problem = "this auth method logs in with OAuth2 tokens: replace the \
                               password with an [account.oauth2] table";
                Err(self.table_error(password.span(), problem))
            }
            (Some(password), None) => Ok(Credential::Password(password.into_inner())),
            (None, Some(oauth2)) if auth.uses_oauth2() || auth == AuthMethod::Auto => {
                Ok(Credential::OAuth2(self.oauth2(oauth2, Use::Pop3)?))
            }
            (None, Some(oauth2)) => {
                let problem = "an [account.oauth2] table needs auth = \"xoauth2\" or \
                               \"oauthbearer\"";
                Err(self.table_error(oauth2.span(), problem))
            }
            (None, None) if auth.uses_oauth2() => {
                let problem = "auth = \"xoauth2\" and \"oauthbearer\" need an \
                               [account.oauth2] table (see the README's Microsoft 365 and \
                               Gmail sections)";
                Err(self.table_error(table, problem))
            }
            (None, None) => {
                let problem = format!(
                    "no password: set one of {PASSWORD_KEYS_HINT}, or an [account.oauth2] table"
                );
                Err(self.table_error(table, &problem))
            }
        }
    }

    /// The one password source a table sets, if any, spanned so a caller
    /// can point at it.
    fn password(
        &self,
        keys: PasswordKeys<'_>,
    ) -> Result<Option<Spanned<PasswordSource>>, ConfigError> {
        let mut set: Vec<(PasswordKey, &Spanned<String>)> = (keys.into_iter())
            .filter_map(|(key, value)| Some((key, value?)))
            .collect();
        // Point at the second key in file order: reading from the top, that
        // is where the conflict appears.
        set.sort_by_key(|(_, value)| value.span().start);
        let (key, value) = match set.as_slice() {
            [] => return Ok(None),
            [only] => *only,
            [(first, _), (second, value), ..] => {
                let problem = format!(
                    "`{}` is already set: use only one of {PASSWORD_KEYS_HINT}",
                    first.name()
                );
                return Err(self.error(value.span(), second.name(), problem));
            }
        };
        let text = self.non_empty(key.name(), value)?;
        let source = match key {
            PasswordKey::Password => PasswordSource::Inline(Secret::new(text)),
            PasswordKey::File => PasswordSource::File(self.doc.base.join(text)),
            PasswordKey::Env => PasswordSource::Env(text),
            PasswordKey::Command => PasswordSource::Command(text),
        };
        Ok(Some(Spanned::new(value.span(), source)))
    }
}
