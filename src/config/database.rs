//! `state` and `[database]`: where the ledger lives. A path is a SQLite
//! file; a `postgresql://` URL is a PostgreSQL database, whose password and
//! TLS trust come from `[database]` as a relay's do from `[smtp]`.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::raw::{PasswordKey, PasswordKeys, RawConfig, RawDatabase, RawFleet};
use super::validate::Scope;
use super::{ConfigError, PasswordSource, TlsMode, Trust};

/// Pooled connections to the database, unless `max_connections` says
/// otherwise: a poll holds one only while it commits, so a few serve many
/// accounts.
const DEFAULT_CONNECTIONS: usize = 4;
const DEFAULT_PORT: u16 = 5432;
/// The SQLite file when the configuration names no `state`.
const DEFAULT_STATE: &str = "popferry.db";
/// How long an instance's claim on an account holds without renewal:
/// the takeover time after a crash, less one poll interval. Long enough
/// to ride out a database failover; renewed every third of it.
const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// Below this, a renewal every third of the lease is a load on the
/// database for nothing and one slow query loses every lease.
const MIN_LEASE: Duration = Duration::from_secs(2);
/// Accounts an instance holds at most unless `[fleet] capacity` says
/// otherwise: in effect no limit, so that one instance alone polls them
/// all and equal instances take equal shares.
const DEFAULT_CAPACITY: usize = 1_000_000;

/// Where the ledger lives (`state` in the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// A SQLite file; a relative `state` has been joined to the
    /// configuration file's folder.
    File(PathBuf),
    /// A PostgreSQL database.
    Postgres(Database),
}

impl State {
    /// The ledger as logs, errors and `popferry check` name it: the path,
    /// or the URL (which never holds a password).
    pub fn describe(&self) -> String {
        match self {
            State::File(path) => path.display().to_string(),
            State::Postgres(database) => database.url(),
        }
    }
}

/// A PostgreSQL ledger: the URL's parts and the `[database]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    pub host: DatabaseHost,
    pub port: u16,
    pub user: String,
    /// The database's name; the user's when the URL names none, as with
    /// libpq.
    pub name: String,
    /// `None`: the server asks for none (peer or certificate login).
    pub password: Option<PasswordSource>,
    /// Which server certificates a TCP connection accepts; TLS is always
    /// used over TCP.
    pub trust: Trust,
    /// Connections in the pool; at least 1.
    pub max_connections: usize,
    /// How `popferry run` shares the accounts with other instances.
    pub fleet: Fleet,
}

/// The `[fleet]` table: the lease terms of a `popferry run` on a
/// PostgreSQL ledger, alone or beside other instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fleet {
    /// How long a claim on an account holds without renewal.
    pub lease: Duration,
    /// The most accounts this instance holds; the accounts are shared out
    /// in proportion to the live instances' capacities.
    pub capacity: usize,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet {
            lease: DEFAULT_LEASE,
            capacity: DEFAULT_CAPACITY,
        }
    }
}

/// Where the database server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseHost {
    /// A host name or address, reached over TCP with verified TLS.
    Tcp(String),
    /// The folder of the server's Unix socket (the URL's host, percent-
    /// encoded, starting with `/`): local, so no TLS.
    Socket(PathBuf),
}

impl Database {
    /// `postgresql://user@host:port/name`, the form `state` takes.
    pub fn url(&self) -> String {
        let host = match &self.host {
            DatabaseHost::Tcp(host) if host.contains(':') => format!("[{host}]"),
            DatabaseHost::Tcp(host) => host.clone(),
            DatabaseHost::Socket(dir) => dir.display().to_string().replace('/', "%2F"),
        };
        format!(
            "postgresql://{}@{host}:{}/{}",
            self.user, self.port, self.name
        )
    }
}

/// The parts of a `postgresql://` URL.
#[derive(Debug, PartialEq, Eq)]
struct Url {
    user: String,
    host: DatabaseHost,
    port: u16,
    name: String,
}

/// Whether `state` names a database rather than a file.
fn is_url(state: &str) -> bool {
    state.starts_with("postgresql://") || state.starts_with("postgres://")
}

/// Parses `postgresql://user@host[:port][/name]`. A password in it is
/// refused, since the URL is shown by `check` and `status` and in logs;
/// query parameters are refused, since TLS and the password are set in
/// `[database]` and nothing else is needed.
fn parse_url(text: &str) -> Result<Url, String> {
    let rest = text
        .strip_prefix("postgresql://")
        .or_else(|| text.strip_prefix("postgres://"))
        .ok_or("is not a postgresql:// URL")?;
    if rest.contains('?') || rest.contains('#') {
        return Err(
            "takes no parameters after `?`: TLS and the password are set in the \
                    [database] table"
                .to_owned(),
        );
    }
    let (authority, name) = rest.split_once('/').unwrap_or((rest, ""));
    let Some((user, host_port)) = authority.rsplit_once('@') else {
        return Err("names no user: write postgresql://USER@HOST/DATABASE".to_owned());
    };
    if user.contains(':') {
        return Err(
            "holds a password: remove it from the URL and set password_file, \
                    password_env or password_command in a [database] table instead"
                .to_owned(),
        );
    }
    let user = decode(user)?;
    if user.is_empty() {
        return Err("names no user: write postgresql://USER@HOST/DATABASE".to_owned());
    }
    let (host, port) = match host_port.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']').ok_or("has an unclosed `[`")?;
            (host.to_owned(), after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (decode(host)?, Some(port)),
            None => (decode(host_port)?, None),
        },
    };
    if host.is_empty() {
        return Err("names no host: write postgresql://USER@HOST/DATABASE".to_owned());
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(format!("has {port:?} as its port, not a number 1-65535")),
        },
    };
    let host = if host.starts_with('/') {
        DatabaseHost::Socket(PathBuf::from(host))
    } else {
        DatabaseHost::Tcp(host)
    };
    let name = if name.is_empty() {
        user.clone()
    } else {
        decode(name)?
    };
    Ok(Url {
        user,
        host,
        port,
        name,
    })
}

/// Undoes the URL's percent-encoding (`%2F` for the `/` of a socket
/// folder, `%40` for an `@` in a user name).
fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).unwrap_or("");
            let byte = u8::from_str_radix(hex, 16)
                .map_err(|_| format!("has a `%` not followed by two hex digits in {text:?}"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} is not UTF-8 once decoded"))
}

impl RawDatabase {
    pub fn password_keys(&self) -> PasswordKeys<'_> {
        [
            (PasswordKey::Password, self.password.as_ref()),
            (PasswordKey::File, self.password_file.as_ref()),
            (PasswordKey::Env, self.password_env.as_ref()),
            (PasswordKey::Command, self.password_command.as_ref()),
        ]
    }
}

impl Scope<'_> {
    /// The ledger `state` names, with the `[database]` table (scoped by
    /// `database`) that only a PostgreSQL URL may have.
    pub(super) fn state(
        &self,
        raw: &RawConfig,
        database: &Scope<'_>,
        fleet: &Scope<'_>,
    ) -> Result<State, ConfigError> {
        match &raw.state {
            Some(state) if is_url(state.get_ref()) => {
                let mut found = self.database(state, raw.database.as_ref(), database)?;
                if let Some(table) = &raw.fleet {
                    found.fleet = fleet.fleet(table.get_ref())?;
                }
                Ok(State::Postgres(found))
            }
            state => {
                if let Some(table) = &raw.database {
                    let problem = "is for a PostgreSQL ledger, but `state` names a SQLite \
                                   file: remove the table, or set state = \
                                   \"postgresql://USER@HOST/DATABASE\"";
                    return Err(database.table_error(table.span(), problem));
                }
                if let Some(table) = &raw.fleet {
                    let problem = "is for instances sharing a PostgreSQL ledger, but `state` \
                                   names a SQLite file, which one instance alone may use: \
                                   remove the table, or set state = \
                                   \"postgresql://USER@HOST/DATABASE\"";
                    return Err(fleet.table_error(table.span(), problem));
                }
                Ok(State::File(match state {
                    Some(state) => self.path("state", state)?,
                    None => self.doc.base.join(DEFAULT_STATE),
                }))
            }
        }
    }

    /// The PostgreSQL ledger that `state` (a URL) and `[database]` describe.
    pub(super) fn database(
        &self,
        state: &Spanned<String>,
        table: Option<&Spanned<RawDatabase>>,
        database: &Scope<'_>,
    ) -> Result<Database, ConfigError> {
        let url = parse_url(state.get_ref())
            .map_err(|problem| self.error(state.span(), "state", problem))?;
        let Some(table) = table else {
            return Ok(Database {
                host: url.host,
                port: url.port,
                user: url.user,
                name: url.name,
                password: None,
                trust: Trust::default(),
                max_connections: DEFAULT_CONNECTIONS,
                fleet: Fleet::default(),
            });
        };
        let raw = table.get_ref();
        let trust = match &url.host {
            DatabaseHost::Tcp(_) => database.trust(
                TlsMode::Implicit,
                raw.ca_file.as_ref(),
                raw.tls_fingerprint.as_ref(),
            )?,
            DatabaseHost::Socket(_) => {
                if let Some(key) = (raw.ca_file.as_ref()).or(raw.tls_fingerprint.as_ref()) {
                    let problem = "a Unix socket is local, so TLS does not apply: remove it, \
                                   or name a host in `state` to connect over TCP with TLS"
                        .to_owned();
                    let name = if raw.ca_file.is_some() {
                        "ca_file"
                    } else {
                        "tls_fingerprint"
                    };
                    return Err(database.error(key.span(), name, problem));
                }
                Trust::default()
            }
        };
        Ok(Database {
            host: url.host,
            port: url.port,
            user: url.user,
            name: url.name,
            password: database
                .password(raw.password_keys())?
                .map(Spanned::into_inner),
            trust,
            max_connections: database.count(
                "max_connections",
                raw.max_connections.as_ref(),
                DEFAULT_CONNECTIONS,
                1,
            )?,
            fleet: Fleet::default(),
        })
    }

    /// The `[fleet]` table's lease terms.
    fn fleet(&self, raw: &RawFleet) -> Result<Fleet, ConfigError> {
        Ok(Fleet {
            lease: self.duration("lease", raw.lease.as_ref(), DEFAULT_LEASE, MIN_LEASE)?,
            capacity: self.count("capacity", raw.capacity.as_ref(), DEFAULT_CAPACITY, 1)?,
        })
    }
}

#[cfg(test)]
#[path = "database_tests.rs"]
mod tests;
