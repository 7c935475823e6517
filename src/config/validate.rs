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

use super::raw::{RawAccount, RawConfig, RawSmtp};
use super::{hint, oauth, Daemon};
use super::{
    Account, AuthMethod, Config, ConfigError, Credential, Pop3Server, Protocol, SmtpConfig, TlsMode,
};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Polling faster than this only hammers the POP3 server.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

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
        || (raw.database.as_ref()).is_some_and(|d| d.get_ref().password.is_some())
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

    /// The whole line holding byte `offset`.
    fn line_text(&self, offset: usize) -> &str {
        let before = self.source.get(..offset).unwrap_or(self.source);
        let start = before.rfind('\n').map_or(0, |i| i + 1);
        self.source[start..].lines().next().unwrap_or("")
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
        let line = span.as_ref().map(|span| self.line_text(span.start));
        match keys {
            Some(keys) => {
                let plain = hint::type_error(keys, &message);
                message = format!("in `{keys}`: {}", plain.unwrap_or(message));
            }
            None => {
                if let Some(plain) = line.and_then(|line| hint::unquoted(&message, line)) {
                    message = plain;
                }
            }
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
        let database = Scope {
            doc: self,
            label: "[database]: ".to_owned(),
        };
        let fleet = Scope {
            doc: self,
            label: "[fleet]: ".to_owned(),
        };
        let state = top.state(raw, &database, &fleet)?;
        let smtp_scope = Scope {
            doc: self,
            label: "[smtp]: ".to_owned(),
        };
        let smtp = match &raw.smtp {
            Some(table) => Some(Arc::new(smtp_scope.smtp(table)?)),
            None => None,
        };
        if raw.account.is_empty() {
            return Err(ConfigError::Incomplete {
                path: self.path.to_path_buf(),
                message: "no [[account]] table: at least one account is required".to_owned(),
            });
        }
        let mut offsets_by_name = HashMap::new();
        let mut accounts = Vec::with_capacity(raw.account.len());
        for table in &raw.account {
            let name = top.account_name(&table.get_ref().name, &mut offsets_by_name)?;
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
        offsets_by_name: &mut HashMap<String, usize>,
    ) -> Result<String, ConfigError> {
        let name = raw.get_ref();
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if name.is_empty() || !name.chars().all(allowed) {
            let problem = format!(
                "{name:?} is not a valid account name (use letters, digits, '.', '_' and '-')"
            );
            return Err(self.error(raw.span(), "name", problem));
        }
        // The offset, not the line: counting lines for every account would
        // read the file once per account: seconds for 10,000 of them.
        if let Some(first) = offsets_by_name.insert(name.clone(), raw.span().start) {
            let first = self.doc.line(first);
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
                Arc::new(scope.smtp(own)?)
            }
            None => Arc::clone(shared_smtp.ok_or_else(|| {
                let problem = "no SMTP relay: add a top-level [smtp] table \
                               or an [account.smtp] table for this account";
                self.table_error(table.span(), problem)
            })?),
        };
        let multidrop = self.multidrop(raw)?;
        let deliver_to = self.deliver_to(raw, table.span(), multidrop.as_ref())?;
        let poll_interval = self.duration(
            "poll_interval",
            raw.poll_interval.as_ref(),
            DEFAULT_INTERVAL,
            MIN_INTERVAL,
        )?;
        Ok(Account {
            name,
            pop3,
            username,
            credential,
            auth,
            deliver_to,
            multidrop,
            keep: raw.keep.unwrap_or(false),
            deli: raw.deli.unwrap_or(true),
            poll_interval,
            poll_interval_max: self.interval_max(raw.poll_interval_max.as_ref(), poll_interval)?,
            timeout: self.timeout(raw.timeout.as_ref())?,
            max_message_size: self.size(raw.max_message_size.as_ref())?,
            quarantine_dir: self.optional_path("quarantine_dir", raw.quarantine_dir.as_ref())?,
            smtp,
        })
    }

    fn smtp(&self, table: &Spanned<RawSmtp>) -> Result<SmtpConfig, ConfigError> {
        let raw = table.get_ref();
        let protocol = raw.protocol.unwrap_or_default();
        let socket = self.optional_path("socket", raw.socket.as_ref())?;
        let (host, tls) = match (&raw.host, &socket) {
            (Some(host), None) => (
                self.host("host", host)?,
                raw.tls.unwrap_or(TlsMode::StartTls),
            ),
            (None, Some(_)) => ("localhost".to_owned(), self.socket_tls(raw)?),
            (Some(host), Some(_)) => {
                let problem = "set either host (and port) or socket, not both".to_owned();
                return Err(self.error(host.span(), "host", problem));
            }
            (None, None) => {
                let problem = "no relay address: set host = \"smtp.example.org\" (and port), \
                               or socket = \"/run/dovecot/lmtp\" for a Unix socket";
                return Err(self.table_error(table.span(), problem));
            }
        };
        let default_port = match (protocol, tls) {
            // LMTP has no port of its own; 24 is what Dovecot and Cyrus use.
            (Protocol::Lmtp, _) => 24,
            (Protocol::Smtp, TlsMode::Implicit) => 465,
            (Protocol::Smtp, _) => 25,
        };
        let credentials = self.smtp_credentials(raw)?;
        Ok(SmtpConfig {
            host,
            port: self.port(raw.port.as_ref(), default_port)?,
            socket,
            protocol,
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
            max_connections: self.count(
                "max_connections",
                raw.max_connections.as_ref(),
                crate::deliver::MAX_CONNECTIONS,
                1,
            )?,
        })
    }

    /// A Unix socket is a local connection: there is no one on the path
    /// to encrypt against, and no host name a certificate could prove.
    fn socket_tls(&self, raw: &RawSmtp) -> Result<TlsMode, ConfigError> {
        if let Some(port) = &raw.port {
            let problem = "has no meaning with socket: remove it".to_owned();
            return Err(self.error(port.span(), "port", problem));
        }
        match raw.tls {
            None | Some(TlsMode::None) => Ok(TlsMode::None),
            Some(_) => {
                let span = raw.socket.as_ref().map_or(0..0, Spanned::span);
                let problem = "a Unix socket is local, so TLS does not apply: \
                               remove tls or set tls = \"none\""
                    .to_owned();
                Err(self.error(span, "socket", problem))
            }
        }
    }
}
