//! The TOML configuration, validated into runtime types.
//!
//! Parsing happens in two steps. Serde fills a loose mirror of the file
//! (`raw`) that remembers where each value was written; `validate` then
//! checks it and builds the types below, in which every default is applied
//! and every invariant holds, so the rest of popferry never re-checks
//! configuration. All errors name the file and, where one exists, the line
//! to edit.
//!
//! See `config/example.toml` for every key with its default.

mod credentials;
mod daemon;
mod database;
mod hint;
mod oauth;
mod raw;
mod recipients;
mod secret;
mod units;
mod validate;
mod values;

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

pub use crate::multidrop::{Multidrop, RecipientHeader};
pub use crate::oauth::OAuth2;
use crate::sasl::Mechanism;
pub use crate::tls::{ClientIdentity, Trust};
pub use daemon::{peek_log_format, Daemon, LogFormat};
pub use database::{Database, DatabaseHost, Fleet, State};
pub(crate) use secret::exposed_mode;
pub use secret::{PasswordSource, Secret, SecretError};

/// A loaded configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file the configuration came from, absolute when it was read with
    /// [`Config::load`].
    pub path: PathBuf,
    /// Where the ledger lives: a SQLite file or a PostgreSQL database.
    pub state: State,
    pub daemon: Daemon,
    /// The accounts in file order; never empty, names are unique.
    pub accounts: Vec<Account>,
}

/// One POP3 mailbox and where its mail goes.
///
/// `Eq` lets a config reload tell an unchanged account (which keeps its
/// pooled connection) from a changed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Unique, made of `[A-Za-z0-9._-]`, so it is safe in logs, on the
    /// command line and as a ledger key.
    pub name: String,
    pub pop3: Pop3Server,
    pub username: String,
    pub credential: Credential,
    pub auth: AuthMethod,
    /// Envelope recipients; never empty, each a syntactically valid address.
    /// With `multidrop`, only for messages that name no local recipient.
    pub deliver_to: Vec<String>,
    /// A domain mailbox whose messages go to the recipients its provider
    /// named in an envelope header.
    pub multidrop: Option<Multidrop>,
    /// Leave delivered messages on the POP3 server instead of deleting them.
    pub keep: bool,
    /// Delete with DELI (at once, durably) where the server offers it,
    /// instead of DELE (at QUIT or SLEE).
    pub deli: bool,
    /// At least one second.
    pub poll_interval: Duration,
    /// When set (never below `poll_interval`), the interval adapts to the
    /// mailbox: `scheduler::interval` has the rule.
    pub poll_interval_max: Option<Duration>,
    /// Limit for each network read or write.
    pub timeout: Duration,
    /// Larger messages are not downloaded; in bytes, never zero.
    pub max_message_size: u64,
    /// Where undeliverable messages are written, resolved like `state`.
    pub quarantine_dir: Option<PathBuf>,
    /// Accounts without their own `[account.smtp]` share the top-level
    /// table's `Arc`.
    pub smtp: Arc<SmtpConfig>,
}

/// Where and how to reach a POP3 server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pop3Server {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// Which certificates the TLS modes accept.
    pub trust: Trust,
    /// `client_cert` and `client_key`, loaded and checked.
    pub client_identity: Option<ClientIdentity>,
}

impl Pop3Server {
    /// `host:port`, the name metrics give the server.
    pub fn address(&self) -> String {
        server_address(&self.host, self.port)
    }
}

/// `host:port` with the host in lower case: one spelling for one server in
/// every metric that names it (poll durations, parked connections).
pub fn server_address(host: &str, port: u16) -> String {
    format!("{}:{}", host.to_ascii_lowercase(), port)
}

/// The SMTP relay that receives forwarded mail.
///
/// `Eq` and `Hash` let the delivery side open one transport per distinct
/// relay, however many accounts name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SmtpConfig {
    /// With `socket`, unused: the socket's path names the relay instead.
    pub host: String,
    pub port: u16,
    /// A Unix socket to connect to instead of `host` and `port`.
    pub socket: Option<PathBuf>,
    pub protocol: Protocol,
    pub tls: TlsMode,
    pub credentials: Option<SmtpCredentials>,
    /// Which certificates the TLS modes accept.
    pub trust: Trust,
    /// `client_cert` and `client_key`, loaded and checked.
    pub client_identity: Option<ClientIdentity>,
    /// Fixed envelope sender; `None` means the message's `Return-Path`.
    pub envelope_from: Option<String>,
    pub helo_name: Option<String>,
    pub timeout: Duration,
    /// SMTP connections open to this relay at once, idle ones included,
    /// across every account that shares the table; at least 1.
    pub max_connections: usize,
}

impl SmtpConfig {
    /// Where the relay is, as logs and errors name it: the socket's path,
    /// or `host:port`.
    pub fn endpoint(&self) -> String {
        crate::smtp::peer_name(self.socket.as_deref(), &self.host, self.port)
    }
}

/// SMTP AUTH login; the file can only give a username and a password (or
/// an `oauth2` table) together.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SmtpCredentials {
    pub username: String,
    pub credential: Credential,
    pub auth: SmtpAuth,
}

/// What an account or a relay logs in with: a password, or OAuth2 bearer
/// tokens (the only way into Microsoft 365 and Gmail).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Credential {
    Password(PasswordSource),
    OAuth2(OAuth2),
}

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (POP3S on 995, SMTPS on 465).
    Implicit,
    /// Plain text upgraded with STLS / STARTTLS before logging in.
    StartTls,
    /// No encryption at all; for relays on the loopback interface.
    None,
}

/// What the relay speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// SMTP (RFC 5321): one answer for the whole message after the data.
    #[default]
    Smtp,
    /// LMTP (RFC 2033), for a local delivery agent such as Dovecot's:
    /// LHLO instead of EHLO, and one answer per recipient after the data.
    Lmtp,
}

/// How to log in to a POP3 server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// The strongest SASL mechanism the server offers (see
    /// [`crate::sasl::choose`]), USER/PASS if it offers none of them.
    Auto,
    /// USER/PASS.
    User,
    /// SASL PLAIN.
    Plain,
    /// SASL CRAM-MD5.
    #[serde(rename = "cram-md5")]
    CramMd5,
    /// SASL SCRAM-SHA-256.
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    /// APOP, for old servers that offer nothing else.
    Apop,
    /// SASL XOAUTH2 (Google's and Microsoft's bearer-token format).
    #[serde(rename = "xoauth2")]
    XOAuth2,
    /// SASL OAUTHBEARER (RFC 7628).
    #[serde(rename = "oauthbearer")]
    OAuthBearer,
}

impl AuthMethod {
    /// Whether the method logs in with an OAuth2 token (else a password).
    pub fn uses_oauth2(self) -> bool {
        matches!(self, AuthMethod::XOAuth2 | AuthMethod::OAuthBearer)
    }
}

/// How to log in to the SMTP relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpAuth {
    /// The strongest mechanism the relay offers (see [`crate::sasl::choose`]).
    #[default]
    Auto,
    Plain,
    Login,
    #[serde(rename = "cram-md5")]
    CramMd5,
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    #[serde(rename = "xoauth2")]
    XOAuth2,
    #[serde(rename = "oauthbearer")]
    OAuthBearer,
}

impl SmtpAuth {
    /// The configured mechanism; `None` for `auto`.
    pub fn mechanism(self) -> Option<Mechanism> {
        match self {
            SmtpAuth::Auto => None,
            SmtpAuth::Plain => Some(Mechanism::Plain),
            SmtpAuth::Login => Some(Mechanism::Login),
            SmtpAuth::CramMd5 => Some(Mechanism::CramMd5),
            SmtpAuth::ScramSha256 => Some(Mechanism::ScramSha256),
            SmtpAuth::XOAuth2 => Some(Mechanism::XOAuth2),
            SmtpAuth::OAuthBearer => Some(Mechanism::OAuthBearer),
        }
    }

    /// Whether the mechanism logs in with an OAuth2 token.
    pub fn uses_oauth2(self) -> bool {
        matches!(self, SmtpAuth::XOAuth2 | SmtpAuth::OAuthBearer)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be opened or is not UTF-8.
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// A syntax error or a failed check that points at one line.
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A failed check about the file as a whole, such as having no accounts.
    #[error("{}: {message}", path.display())]
    Incomplete { path: PathBuf, message: String },
    /// Refused rather than warned about: other local users could already
    /// have read the password, and a daemon's warnings go unread.
    #[error(
        "{} holds an inline password but is readable by group/others (mode {mode:04o}): \
         run `chmod 600 {}`, or move the password to password_file",
        path.display(),
        path.display()
    )]
    InlinePasswordExposed { path: PathBuf, mode: u32 },
    /// No `-c`, no `$POPFERRY_CONFIG`, and neither default file exists.
    #[error(
        "no configuration file: -c FILE was not given, $POPFERRY_CONFIG is not set, and neither \
         ./popferry.toml nor /etc/popferry/popferry.toml exists; write one from \
         config/example.toml, or name yours with -c FILE"
    )]
    NotFound,
}

impl Config {
    /// Reads and validates the file at `path`.
    ///
    /// Unlike [`Config::from_toml`], this refuses a file that holds an
    /// inline password when group or others may read it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        // Absolute, so that error messages in a daemon's log and relative
        // paths inside the file do not depend on its working directory.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let read_error = |source| ConfigError::Read {
            path: path.clone(),
            source,
        };
        let mut file = File::open(&path).map_err(read_error)?;
        let metadata = file.metadata().map_err(read_error)?;
        let mut source = String::new();
        file.read_to_string(&mut source).map_err(read_error)?;
        let parsed = validate::parse(&source, &path)?;
        if parsed.has_inline_password {
            if let Some(mode) = secret::exposed_mode(&metadata) {
                return Err(ConfigError::InlinePasswordExposed { path, mode });
            }
        }
        Ok(parsed.config)
    }

    /// Validates TOML text that did not come from a file on disk, so no
    /// permission check is made. `path` appears in error messages and is
    /// the base for relative paths in the text.
    pub fn from_toml(source: &str, path: &Path) -> Result<Config, ConfigError> {
        validate::parse(source, path).map(|parsed| parsed.config)
    }

    /// The account called `name`.
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|account| account.name == name)
    }
}

/// Where to look for the configuration when none is given:
/// `$POPFERRY_CONFIG`, else `./popferry.toml` if it exists, else
/// `/etc/popferry/popferry.toml` if it exists; else none
/// ([`ConfigError::NotFound`] names every place looked at).
pub fn default_config_path() -> Option<PathBuf> {
    pick_config_path(std::env::var_os("POPFERRY_CONFIG"), |path| path.exists())
}

/// The decision behind [`default_config_path`], apart from the process
/// environment and the file system so it can be tested.
fn pick_config_path(from_env: Option<OsString>, exists: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    if let Some(path) = from_env.filter(|path| !path.is_empty()) {
        // Named explicitly: a missing file is reported as such on reading.
        return Some(PathBuf::from(path));
    }
    ["popferry.toml", "/etc/popferry/popferry.toml"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| exists(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_path_precedence() {
        let all = |_: &Path| true;
        let env = Some(OsString::from("/srv/p.toml"));
        assert_eq!(
            pick_config_path(env, all).unwrap(),
            Path::new("/srv/p.toml")
        );
        assert_eq!(
            pick_config_path(None, all).unwrap(),
            Path::new("popferry.toml")
        );
        let only_etc = |path: &Path| path.is_absolute();
        assert_eq!(
            pick_config_path(Some(OsString::new()), only_etc).unwrap(),
            Path::new("/etc/popferry/popferry.toml")
        );
        assert_eq!(pick_config_path(None, |_: &Path| false), None);
    }
}
