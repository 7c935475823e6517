//! How the PostgreSQL ledger reaches its server: one driver configuration
//! for the pool, the poller lock's session and `popferry status`.

use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::Failure;
use crate::config::{Database, DatabaseHost};
use crate::ledger::LedgerError;

/// How long to wait for the server to answer a new connection, so that a
/// poll against a database that is down fails instead of hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The settings of every session, given at connect so that no server,
/// database or role default overrides them. `synchronous_commit = on`
/// makes a commit return only once it is on disk. The idle timeout ends a
/// session that stalls inside a transaction (a process stopped or cut off
/// mid-write): popferry runs nothing but SQL inside one, and a stalled
/// write would otherwise hold its share of the writer lock, and with it
/// the next poller's start (`lock.rs`), for as long as the link stays up.
const SESSION_OPTIONS: &str = "-c synchronous_commit=on -c idle_in_transaction_session_timeout=30s";

/// Everything needed to open a connection.
#[derive(Clone)]
pub(super) struct Connector {
    pub config: Config,
    pub tls: MakeRustlsConnect,
}

impl Connector {
    /// The driver settings for `database`, its password fetched now.
    ///
    /// Over TCP, TLS is required (`SslMode::Require`: a server without it
    /// is refused, never used in plaintext) and verified by the same
    /// rustls configuration the POP3 and SMTP connections use, so
    /// `ca_file`, the system trust store and `tls_fingerprint` mean the
    /// same here. A Unix socket is local: PostgreSQL does not offer TLS on
    /// one, and the socket folder's permissions guard it.
    ///
    /// Every session starts with [`SESSION_OPTIONS`].
    pub async fn new(database: &Database, name: &str) -> Result<Self, LedgerError> {
        let mut config = Config::new();
        config
            .port(database.port)
            .user(&database.user)
            .dbname(&database.name)
            .application_name(application_name())
            .options(SESSION_OPTIONS)
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true);
        match &database.host {
            DatabaseHost::Tcp(host) => config.host(host).ssl_mode(SslMode::Require),
            DatabaseHost::Socket(dir) => config.host_path(dir).ssl_mode(SslMode::Disable),
        };
        if let Some(source) = &database.password {
            let secret = (source.fetch().await).map_err(|source| LedgerError::Password {
                path: PathBuf::from(name),
                source,
            })?;
            config.password(secret.expose());
        }
        let client = crate::tls::client_config(&database.trust, None).map_err(|source| {
            LedgerError::Tls {
                path: PathBuf::from(name),
                source,
            }
        })?;
        Ok(Self {
            config,
            tls: MakeRustlsConnect::new((*client).clone()),
        })
    }

    /// One connection outside the pool, its driver task spawned.
    pub async fn connect(&self) -> Result<Client, Failure> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "ledger database connection ended");
            }
        });
        Ok(client)
    }
}

/// What the server calls popferry's sessions (`pg_stat_activity`), so an
/// operator, and a second poller refused by the lock (`lock.rs`), can tell
/// which process holds them: `popferry HOST pid PID`, within PostgreSQL's
/// 63 bytes.
/// A fleet instance's name in `instance` and on its leases: the host, the
/// PID and random bits, so that a restarted process (or a PID reused in
/// another container) never passes for the one before it.
pub(super) fn instance_id() -> String {
    use std::hash::{BuildHasher as _, RandomState};
    let random = RandomState::new().hash_one(std::time::SystemTime::now());
    format!("{} {:08x}", application_name(), random as u32)
}

fn application_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    named(host.trim(), std::process::id())
}

fn named(host: &str, pid: u32) -> String {
    let pid = format!(" pid {pid}");
    let mut host = host.to_owned();
    while "popferry ".len() + host.len() + pid.len() > 63 {
        host.pop();
    }
    format!("popferry {host}{pid}")
}

/// Refuses a server on which a commit is not durable when it returns.
/// `fsync = off` is a server-wide setting no client can change; the
/// session's `synchronous_commit` is set at connect and checked here in
/// case something in between overrode it.
pub(super) async fn check_durable(client: &Client, name: &str) -> Result<(), Failure> {
    for setting in ["fsync", "synchronous_commit"] {
        let row = client.query_one(&format!("SHOW {setting}"), &[]).await?;
        let value: String = row.try_get(0)?;
        if !is_durable(&value) {
            return Err(Failure::Ledger(LedgerError::NotDurable {
                path: PathBuf::from(name),
                setting,
                value,
            }));
        }
    }
    Ok(())
}

/// Whether a setting's value leaves commits durable: `off` does not;
/// `on` does, as do `local`, `remote_write` and `remote_apply` for
/// `synchronous_commit`, which all flush locally first.
fn is_durable(value: &str) -> bool {
    !value.eq_ignore_ascii_case("off")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_fit_and_keep_the_pid() {
        assert_eq!(named("mx1", 42), "popferry mx1 pid 42");
        let long = named(&"h".repeat(100), 4_194_304);
        assert_eq!(long.len(), 63);
        assert!(long.ends_with(" pid 4194304"), "{long}");
        assert_eq!(named("héllo-ünïcode", 7), "popferry héllo-ünïcode pid 7");
    }

    #[test]
    fn off_is_the_only_value_refused() {
        assert!(!is_durable("off"));
        assert!(!is_durable("OFF"));
        for value in ["on", "local", "remote_write", "remote_apply"] {
            assert!(is_durable(value), "{value}");
        }
    }
}
