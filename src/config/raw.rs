//! The serde mirror of the TOML file, before validation.
//!
//! Every field that a semantic check looks at is wrapped in [`Spanned`] so
//! that a failed check can point at the line the administrator has to edit.
//! Nothing here is trusted: `validate` turns it into the runtime types.
//!
//! These types deliberately do not derive `Debug`: they hold inline passwords
//! as plain strings.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::daemon::RawDaemon;
use super::oauth::RawOAuth2;
use super::{AuthMethod, Protocol, SmtpAuth, TlsMode};

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub state: Option<Spanned<String>>,
    pub smtp: Option<Spanned<RawSmtp>>,
    pub daemon: Option<RawDaemon>,
    pub database: Option<Spanned<RawDatabase>>,
    pub fleet: Option<Spanned<RawFleet>>,
    /// `[[account]]` is singular in the file because each table describes
    /// one account.
    #[serde(default)]
    pub account: Vec<Spanned<RawAccount>>,
}

/// One `[[account]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccount {
    pub name: Spanned<String>,
    pub host: Spanned<String>,
    pub port: Option<Spanned<i64>>,
    pub tls: Option<TlsMode>,
    pub ca_file: Option<Spanned<String>>,
    pub tls_fingerprint: Option<Spanned<String>>,
    pub client_cert: Option<Spanned<String>>,
    pub client_key: Option<Spanned<String>>,
    pub username: Spanned<String>,
    pub password: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub password_command: Option<Spanned<String>>,
    pub auth: Option<AuthMethod>,
    /// Boxed, like `smtp`: most accounts have neither, and inline they
    /// would make each account's entry 2 KiB, which 10,000 accounts pay
    /// while the file is read.
    pub oauth2: Option<Box<Spanned<RawOAuth2>>>,
    /// Optional so that a multidrop account missing it is told that it is
    /// the fallback; every account needs it.
    pub deliver_to: Option<Spanned<Vec<Spanned<String>>>>,
    pub recipients_from: Option<Spanned<String>>,
    pub local_domains: Option<Spanned<Vec<Spanned<String>>>>,
    pub keep: Option<bool>,
    pub deli: Option<bool>,
    pub poll_interval: Option<Spanned<String>>,
    pub poll_interval_max: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub max_message_size: Option<Spanned<RawSize>>,
    pub quarantine_dir: Option<Spanned<String>>,
    pub smtp: Option<Box<Spanned<RawSmtp>>>,
}

/// A `[smtp]` or `[account.smtp]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    pub host: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub socket: Option<Spanned<String>>,
    pub protocol: Option<Protocol>,
    pub tls: Option<TlsMode>,
    pub username: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub password_command: Option<Spanned<String>>,
    pub oauth2: Option<Spanned<RawOAuth2>>,
    pub auth: Option<Spanned<SmtpAuth>>,
    pub ca_file: Option<Spanned<String>>,
    pub tls_fingerprint: Option<Spanned<String>>,
    pub client_cert: Option<Spanned<String>>,
    pub client_key: Option<Spanned<String>>,
    pub envelope_from: Option<Spanned<String>>,
    pub helo_name: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub max_connections: Option<Spanned<i64>>,
}

/// The `[database]` table of a PostgreSQL `state`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    pub password: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub password_command: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<String>>,
    pub tls_fingerprint: Option<Spanned<String>>,
    pub max_connections: Option<Spanned<i64>>,
}

/// The `[fleet]` table: how a `popferry run` of a fleet sharing a
/// PostgreSQL ledger takes its share of the accounts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFleet {
    pub lease: Option<Spanned<String>>,
    pub capacity: Option<Spanned<i64>>,
}

/// The four keys that can supply a password; a table may use at most one.
#[derive(Debug, Clone, Copy)]
pub(super) enum PasswordKey {
    Password,
    File,
    Env,
    Command,
}

impl PasswordKey {
    /// The key as written in the file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::File => "password_file",
            Self::Env => "password_env",
            Self::Command => "password_command",
        }
    }
}

/// Each password key of one table with its value, if the table sets it.
pub(super) type PasswordKeys<'a> = [(PasswordKey, Option<&'a Spanned<String>>); 4];

impl RawAccount {
    pub fn password_keys(&self) -> PasswordKeys<'_> {
        [
            (PasswordKey::Password, self.password.as_ref()),
            (PasswordKey::File, self.password_file.as_ref()),
            (PasswordKey::Env, self.password_env.as_ref()),
            (PasswordKey::Command, self.password_command.as_ref()),
        ]
    }
}

impl RawSmtp {
    pub fn password_keys(&self) -> PasswordKeys<'_> {
        [
            (PasswordKey::Password, self.password.as_ref()),
            (PasswordKey::File, self.password_file.as_ref()),
            (PasswordKey::Env, self.password_env.as_ref()),
            (PasswordKey::Command, self.password_command.as_ref()),
        ]
    }
}

/// `max_message_size` as written: a bare integer counts bytes, a string may
/// carry a unit. A hand-written visitor (rather than an untagged enum) keeps
/// toml's span and gives a readable "expected ..." message on a wrong type.
pub(super) enum RawSize {
    Bytes(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawSizeVisitor)
    }
}

struct RawSizeVisitor;

impl Visitor<'_> for RawSizeVisitor {
    type Value = RawSize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number of bytes or a string such as \"64MiB\"")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<RawSize, E> {
        Ok(RawSize::Bytes(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<RawSize, E> {
        i64::try_from(value)
            .map(RawSize::Bytes)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(value), &self))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<RawSize, E> {
        Ok(RawSize::Text(value.to_owned()))
    }
}
