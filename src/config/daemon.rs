//! The `[daemon]` table: limits of `popferry run` that span accounts.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::validate::Scope;
use super::ConfigError;

/// How `popferry run` shares connections and time between accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Daemon {
    /// Polls running at the same moment, across all accounts.
    pub max_concurrent_polls: usize,
    /// Open POP3 connections to one host and port, awake or parked.
    pub max_connections_per_server: usize,
    /// Parked (sleeping) connections kept across all servers.
    pub max_idle_connections: usize,
    /// A parked connection whose account will not poll again within this
    /// long is closed instead (QUIT) and the next poll logs in afresh.
    pub idle_timeout: Duration,
    /// How often a parked connection is sent NOOP; well inside the
    /// ten-minute autologout RFC 1939 allows servers.
    pub keepalive: Duration,
    /// After SIGTERM, how long polls in flight may take to finish their
    /// current message and log out before the process exits anyway.
    pub shutdown_timeout: Duration,
    /// Longest wait between attempts of a failing account.
    pub max_backoff: Duration,
    /// The shortest gap between two fresh logins to one host and port
    /// (`max_logins_per_second` turned around). A login costs a server a
    /// password hash and often a TLS handshake, and providers throttle or
    /// block clients that log in in bursts; a pooled poll (WAKE, CORE) is
    /// no login and waits for nothing.
    pub login_gap: Duration,
    /// How often polls that found nothing are written to the
    /// ledger (they are counted in memory in between): the most `status`
    /// lags behind for an account whose polls find nothing.
    pub empty_poll_flush: Duration,
    /// Where `/metrics` and `/healthz` are served; none without the key,
    /// since an open port is not something to get by surprise.
    pub metrics_listen: Option<SocketAddr>,
    /// How `popferry run` writes its log, unless `--log-format` says.
    pub log_format: Option<LogFormat>,
}

/// The shape of each log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `key=value` text, which journald and a person read alike.
    #[default]
    Plain,
    /// One JSON object per line, span fields included, for log shippers.
    Json,
}

impl Default for Daemon {
    fn default() -> Self {
        Daemon {
            max_concurrent_polls: 16,
            max_connections_per_server: 8,
            max_idle_connections: 256,
            idle_timeout: Duration::from_secs(30 * 60),
            keepalive: Duration::from_secs(4 * 60),
            shutdown_timeout: Duration::from_secs(30),
            max_backoff: Duration::from_secs(30 * 60),
            login_gap: Duration::from_millis(1000 / DEFAULT_LOGINS_PER_SECOND),
            empty_poll_flush: Duration::from_secs(30),
            metrics_listen: None,
            log_format: None,
        }
    }
}

/// Ten fresh logins a second to one server: 36,000 an hour, enough for
/// 3,000 accounts polled every five minutes, while a server hashing
/// passwords with bcrypt or Argon2 (10 to 100 ms each) spends at most
/// about one core on them.
const DEFAULT_LOGINS_PER_SECOND: u64 = 10;

/// `[daemon] log_format` from the file at `path`, read before logging
/// starts and before the config is loaded (whose warnings need the log).
/// Any problem gives `None`: the full load that follows reports it.
pub fn peek_log_format(path: &std::path::Path) -> Option<LogFormat> {
    #[derive(Deserialize)]
    struct File {
        daemon: Option<Table>,
    }
    #[derive(Deserialize)]
    struct Table {
        log_format: Option<String>,
    }
    let text = std::fs::read_to_string(path).ok()?;
    let file: File = toml::from_str(&text).ok()?;
    match file.daemon?.log_format?.as_str() {
        "plain" => Some(LogFormat::Plain),
        "json" => Some(LogFormat::Json),
        _ => None,
    }
}

/// The table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    max_concurrent_polls: Option<Spanned<i64>>,
    max_connections_per_server: Option<Spanned<i64>>,
    max_idle_connections: Option<Spanned<i64>>,
    idle_timeout: Option<Spanned<String>>,
    keepalive: Option<Spanned<String>>,
    shutdown_timeout: Option<Spanned<String>>,
    max_backoff: Option<Spanned<String>>,
    max_logins_per_second: Option<Spanned<f64>>,
    empty_poll_flush: Option<Spanned<String>>,
    metrics_listen: Option<Spanned<String>>,
    log_format: Option<Spanned<String>>,
}

const SECOND: Duration = Duration::from_secs(1);

impl Scope<'_> {
    pub(super) fn daemon(&self, raw: &RawDaemon) -> Result<Daemon, ConfigError> {
        let d = Daemon::default();
        Ok(Daemon {
            max_concurrent_polls: self.count(
                "max_concurrent_polls",
                raw.max_concurrent_polls.as_ref(),
                d.max_concurrent_polls,
                1,
            )?,
            max_connections_per_server: self.count(
                "max_connections_per_server",
                raw.max_connections_per_server.as_ref(),
                d.max_connections_per_server,
                1,
            )?,
            max_idle_connections: self.count(
                "max_idle_connections",
                raw.max_idle_connections.as_ref(),
                d.max_idle_connections,
                0,
            )?,
            idle_timeout: self.duration(
                "idle_timeout",
                raw.idle_timeout.as_ref(),
                d.idle_timeout,
                SECOND,
            )?,
            keepalive: self.duration("keepalive", raw.keepalive.as_ref(), d.keepalive, SECOND)?,
            shutdown_timeout: self.duration(
                "shutdown_timeout",
                raw.shutdown_timeout.as_ref(),
                d.shutdown_timeout,
                SECOND,
            )?,
            max_backoff: self.duration(
                "max_backoff",
                raw.max_backoff.as_ref(),
                d.max_backoff,
                SECOND,
            )?,
            login_gap: match &raw.max_logins_per_second {
                Some(raw) => self.login_gap(raw)?,
                None => d.login_gap,
            },
            empty_poll_flush: self.duration(
                "empty_poll_flush",
                raw.empty_poll_flush.as_ref(),
                d.empty_poll_flush,
                SECOND,
            )?,
            metrics_listen: raw
                .metrics_listen
                .as_ref()
                .map(|raw| self.listen_address(raw))
                .transpose()?,
            log_format: raw
                .log_format
                .as_ref()
                .map(|raw| self.log_format(raw))
                .transpose()?,
        })
    }

    fn listen_address(&self, raw: &Spanned<String>) -> Result<SocketAddr, ConfigError> {
        raw.get_ref().parse().map_err(|_| {
            let problem = format!(
                "{:?} is not an IP address and port, like \"127.0.0.1:9187\" or \"[::1]:9187\"",
                raw.get_ref()
            );
            self.error(raw.span(), "metrics_listen", problem)
        })
    }

    /// At most one login a millisecond: a faster cap is no cap.
    fn login_gap(&self, raw: &Spanned<f64>) -> Result<Duration, ConfigError> {
        let rate = *raw.get_ref();
        if rate.is_finite() && (0.001..=1000.0).contains(&rate) {
            return Ok(Duration::from_secs_f64(1.0 / rate));
        }
        let problem = format!(
            "{rate} is not a number of logins a second between 0.001 and 1000 \
             (0.5 is one login every 2 seconds)"
        );
        Err(self.error(raw.span(), "max_logins_per_second", problem))
    }

    fn log_format(&self, raw: &Spanned<String>) -> Result<LogFormat, ConfigError> {
        match raw.get_ref().as_str() {
            "plain" => Ok(LogFormat::Plain),
            "json" => Ok(LogFormat::Json),
            other => {
                let problem = format!("{other:?} is not \"plain\" or \"json\"");
                Err(self.error(raw.span(), "log_format", problem))
            }
        }
    }

    pub(super) fn count(
        &self,
        key: &str,
        raw: Option<&Spanned<i64>>,
        default: usize,
        minimum: usize,
    ) -> Result<usize, ConfigError> {
        let Some(raw) = raw else { return Ok(default) };
        match usize::try_from(*raw.get_ref()) {
            Ok(n) if n >= minimum => Ok(n),
            _ => {
                let problem = format!("{} is not a count of at least {minimum}", raw.get_ref());
                Err(self.error(raw.span(), key, problem))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn daemon(table: &str) -> Result<Daemon, ConfigError> {
        let toml = format!(
            "[daemon]\n{table}\n[smtp]\nhost = \"h\"\n[[account]]\nname = \"a\"\n\
             host = \"h\"\nusername = \"u\"\npassword_env = \"P\"\n\
             deliver_to = [\"u@example.org\"]\n"
        );
        Config::from_toml(&toml, Path::new("/nonexistent/popferry.toml")).map(|c| c.daemon)
    }

    #[test]
    fn metrics_listen_takes_an_address_and_port_and_is_off_without_it() {
        assert_eq!(daemon("").unwrap().metrics_listen, None);
        let v4 = daemon("metrics_listen = \"127.0.0.1:9187\"").unwrap();
        assert_eq!(v4.metrics_listen, Some("127.0.0.1:9187".parse().unwrap()));
        let v6 = daemon("metrics_listen = \"[::1]:9187\"").unwrap();
        assert_eq!(v6.metrics_listen, Some("[::1]:9187".parse().unwrap()));
        for bad in ["localhost:9187", "127.0.0.1", "127.0.0.1:99999"] {
            let error = daemon(&format!("metrics_listen = \"{bad}\"")).unwrap_err();
            let text = error.to_string();
            assert!(text.contains("metrics_listen"), "{text}");
            assert!(text.contains("like \"127.0.0.1:9187\""), "{text}");
        }
    }

    #[test]
    fn max_logins_per_second_is_a_rate_turned_into_a_gap() {
        assert_eq!(daemon("").unwrap().login_gap, Duration::from_millis(100));
        let whole = daemon("max_logins_per_second = 50").unwrap();
        assert_eq!(whole.login_gap, Duration::from_millis(20));
        let slow = daemon("max_logins_per_second = 0.5").unwrap();
        assert_eq!(slow.login_gap, Duration::from_secs(2));
        for bad in ["0", "-3", "5000", "\"10\""] {
            let error = daemon(&format!("max_logins_per_second = {bad}")).unwrap_err();
            let text = error.to_string();
            assert!(text.contains("max_logins_per_second"), "{bad}: {text}");
        }
    }

    #[test]
    fn log_format_is_plain_or_json() {
        assert_eq!(daemon("").unwrap().log_format, None);
        let json = daemon("log_format = \"json\"").unwrap();
        assert_eq!(json.log_format, Some(LogFormat::Json));
        let text = daemon("log_format = \"xml\"").unwrap_err().to_string();
        assert!(
            text.contains("log_format") && text.contains("\"plain\" or \"json\""),
            "{text}"
        );
    }

    #[test]
    fn the_log_format_is_read_ahead_of_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("popferry.toml");
        std::fs::write(&path, "[daemon]\nlog_format = \"json\"\n[smtp]\nhost = 1\n").unwrap();
        assert_eq!(
            peek_log_format(&path),
            Some(LogFormat::Json),
            "the rest need not be valid"
        );
        std::fs::write(&path, "[daemon]\nkeepalive = \"1m\"\n").unwrap();
        assert_eq!(peek_log_format(&path), None);
        assert_eq!(peek_log_format(&dir.path().join("missing.toml")), None);
    }
}
