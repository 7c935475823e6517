//! `state` and `[database]`: where the ledger lives. A path is a SQLite
//! file; a `postgresql://` URL is a PostgreSQL database, whose password and
//! TLS trust come from `[database]` as a relay's do from `[smtp]`.

use std::path::PathBuf;

use toml::Spanned;

use super::raw::{PasswordKey, PasswordKeys, RawDatabase};
use super::validate::Scope;
use super::{ConfigError, PasswordSource, TlsMode, Trust};

/// Pooled connections to the database, unless `max_connections` says
/// otherwise: a poll holds one only while it commits, so a few serve many
/// accounts.
const DEFAULT_CONNECTIONS: usize = 4;
const DEFAULT_PORT: u16 = 5432;

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
pub(super) fn is_url(state: &str) -> bool {
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
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    const ACCOUNT: &str = "[smtp]\nhost = \"relay\"\n[[account]]\nname = \"a\"\n\
        host = \"pop\"\nusername = \"u\"\npassword_env = \"P\"\ndeliver_to = [\"a@b.c\"]\n";

    fn load(head: &str) -> Result<Config, String> {
        Config::from_toml(
            &format!("{head}\n{ACCOUNT}"),
            Path::new("/etc/popferry/p.toml"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn a_url_state_with_its_table_is_a_database() {
        let config = load(
            "state = \"postgresql://popferry@db.example.org/mail\"\n[database]\n\
             password_file = \"db.pass\"\nca_file = \"ca.pem\"\nmax_connections = 8",
        )
        .unwrap();
        let State::Postgres(database) = config.state else {
            panic!("{:?}", config.state);
        };
        assert_eq!(database.host, DatabaseHost::Tcp("db.example.org".into()));
        assert_eq!((database.port, database.name.as_str()), (5432, "mail"));
        assert_eq!(
            database.password,
            Some(PasswordSource::File("/etc/popferry/db.pass".into()))
        );
        let ca_file = Some(PathBuf::from("/etc/popferry/ca.pem"));
        assert_eq!(database.trust, Trust::Roots { ca_file });
        assert_eq!(database.max_connections, 8);
        let plain = load("state = \"postgres://popferry@db\"").unwrap();
        let State::Postgres(database) = plain.state else {
            panic!("a database");
        };
        assert_eq!((database.password, database.max_connections), (None, 4));
    }

    #[test]
    fn database_mistakes_name_the_line_and_the_fix() {
        let err = load("state = \"ledger.db\"\n[database]\npassword_env = \"X\"").unwrap_err();
        assert!(
            err.contains(":2: [database]: is for a PostgreSQL ledger"),
            "{err}"
        );
        let err = load("state = \"postgresql://u:secret@db/x\"").unwrap_err();
        assert!(err.contains(":1: key `state`: holds a password"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        let err =
            load("state = \"postgresql://u@db/x\"\n[database]\nsslmode = \"disable\"").unwrap_err();
        assert!(err.contains("unknown field `sslmode`"), "{err}");
        let err = load("state = \"postgresql://u@%2Frun%2Fpg/x\"\n[database]\nca_file = \"c\"")
            .unwrap_err();
        assert!(err.contains("a Unix socket is local"), "{err}");
        let err =
            load("state = \"postgresql://u@db/x\"\n[database]\nmax_connections = 0").unwrap_err();
        assert!(err.contains("max_connections"), "{err}");
    }

    fn tcp(user: &str, host: &str, port: u16, name: &str) -> Url {
        Url {
            user: user.into(),
            host: DatabaseHost::Tcp(host.into()),
            port,
            name: name.into(),
        }
    }

    #[test]
    fn urls_name_user_host_port_and_database() {
        assert_eq!(
            parse_url("postgresql://popferry@db.example.org/mail"),
            Ok(tcp("popferry", "db.example.org", 5432, "mail"))
        );
        assert_eq!(
            parse_url("postgres://p%40x@[::1]:6432"),
            Ok(tcp("p@x", "::1", 6432, "p@x")),
            "the database defaults to the user's name"
        );
        assert_eq!(
            parse_url("postgresql://popferry@%2Frun%2Fpostgresql/popferry"),
            Ok(Url {
                user: "popferry".into(),
                host: DatabaseHost::Socket("/run/postgresql".into()),
                port: 5432,
                name: "popferry".into(),
            })
        );
    }

    #[test]
    fn a_password_or_parameters_in_the_url_are_refused() {
        let err = parse_url("postgresql://popferry:hunter2@db/popferry").unwrap_err();
        assert!(err.contains("password_file"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse_url("postgresql://popferry@db/popferry?sslmode=disable").unwrap_err();
        assert!(err.contains("[database]"), "{err}");
        assert!(parse_url("postgresql://db/popferry").is_err(), "no user");
        assert!(parse_url("postgresql://u@db:0/x").is_err(), "port 0");
    }

    #[test]
    fn the_url_shown_is_the_one_written() {
        let database = Database {
            host: DatabaseHost::Socket("/run/postgresql".into()),
            port: 5432,
            user: "popferry".into(),
            name: "mail".into(),
            password: None,
            trust: Trust::default(),
            max_connections: 4,
        };
        let url = database.url();
        assert_eq!(url, "postgresql://popferry@%2Frun%2Fpostgresql:5432/mail");
        let again = parse_url(&url).unwrap();
        assert_eq!(again.host, database.host);
    }
}
