//! Checks of single values: ports, host names, paths, addresses, durations
//! and sizes. Each reports the key and the line it was written on.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::raw::RawSize;
use super::units::parse_size;
use super::validate::Scope;
use super::{ConfigError, TlsMode, Trust};
use crate::tls::{BadFingerprint, ClientIdentity, IdentityError};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MAX_SIZE: u64 = 64 << 20;
/// A zero timeout would fail every read; anything positive is the
/// administrator's call.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

impl Scope<'_> {
    /// Rejects values that are empty or only whitespace, which are always
    /// a mistake for the keys this is used on.
    pub(super) fn non_empty(
        &self,
        key: &str,
        raw: &Spanned<String>,
    ) -> Result<String, ConfigError> {
        if raw.get_ref().trim().is_empty() {
            return Err(self.error(raw.span(), key, "must not be empty".to_owned()));
        }
        Ok(raw.get_ref().clone())
    }

    /// A host name or IP address; only blatant mistakes are caught here, the
    /// resolver reports the rest when connecting.
    pub(super) fn host(&self, key: &str, raw: &Spanned<String>) -> Result<String, ConfigError> {
        let host = self.non_empty(key, raw)?;
        if host.chars().any(char::is_whitespace) {
            let problem = format!("{host:?} is not a host name: it contains whitespace");
            return Err(self.error(raw.span(), key, problem));
        }
        Ok(host)
    }

    pub(super) fn port(
        &self,
        raw: Option<&Spanned<i64>>,
        default: u16,
    ) -> Result<u16, ConfigError> {
        let Some(raw) = raw else { return Ok(default) };
        match u16::try_from(*raw.get_ref()) {
            Ok(port) if port != 0 => Ok(port),
            _ => {
                let problem = format!("{} is not a port number (1-65535)", raw.get_ref());
                Err(self.error(raw.span(), "port", problem))
            }
        }
    }

    /// Resolves a path against the configuration file's folder rather than
    /// the working directory, which for a daemon is arbitrary.
    pub(super) fn path(&self, key: &str, raw: &Spanned<String>) -> Result<PathBuf, ConfigError> {
        if raw.get_ref().is_empty() {
            return Err(self.error(raw.span(), key, "must not be empty".to_owned()));
        }
        Ok(self.doc.base.join(raw.get_ref()))
    }

    pub(super) fn optional_path(
        &self,
        key: &str,
        raw: Option<&Spanned<String>>,
    ) -> Result<Option<PathBuf>, ConfigError> {
        raw.map(|raw| self.path(key, raw)).transpose()
    }

    /// `ca_file` replaces the trust anchors and `tls_fingerprint` replaces them with
    /// one certificate; both at once would leave it unclear which applies.
    pub(super) fn trust(
        &self,
        tls: TlsMode,
        ca_file: Option<&Spanned<String>>,
        fingerprint: Option<&Spanned<String>>,
    ) -> Result<Trust, ConfigError> {
        let Some(raw) = fingerprint else {
            let ca_file = self.optional_path("ca_file", ca_file)?;
            return Ok(Trust::Roots { ca_file });
        };
        let key = "tls_fingerprint";
        if ca_file.is_some() {
            let problem = "set either ca_file or tls_fingerprint, not both \
                           (a pinned certificate needs no CA)"
                .to_owned();
            return Err(self.error(raw.span(), key, problem));
        }
        if tls == TlsMode::None {
            let problem = "has no effect with tls = \"none\": \
                           set tls = \"implicit\" or \"starttls\""
                .to_owned();
            return Err(self.error(raw.span(), key, problem));
        }
        let fingerprint = raw
            .get_ref()
            .parse()
            .map_err(|e: BadFingerprint| self.error(raw.span(), key, e.to_string()))?;
        Ok(Trust::Pinned(fingerprint))
    }

    /// `client_cert` and `client_key` come as a pair; both files are read
    /// and matched now, so a mistake is reported with its line.
    pub(super) fn identity(
        &self,
        tls: TlsMode,
        cert: Option<&Spanned<String>>,
        key: Option<&Spanned<String>>,
    ) -> Result<Option<ClientIdentity>, ConfigError> {
        let (cert, key) = match (cert, key) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            (Some(cert), None) => {
                let problem = "needs client_key, the file with its private key".to_owned();
                return Err(self.error(cert.span(), "client_cert", problem));
            }
            (None, Some(key)) => {
                let problem = "needs client_cert, the file with its certificate".to_owned();
                return Err(self.error(key.span(), "client_key", problem));
            }
        };
        if tls == TlsMode::None {
            let problem = "has no effect with tls = \"none\": \
                           set tls = \"implicit\" or \"starttls\""
                .to_owned();
            return Err(self.error(cert.span(), "client_cert", problem));
        }
        let cert_path = self.path("client_cert", cert)?;
        let key_path = self.path("client_key", key)?;
        ClientIdentity::load(&cert_path, &key_path)
            .map(Some)
            .map_err(|e| {
                let (span, key_name) = match e {
                    IdentityError::ReadCert { .. } => (cert.span(), "client_cert"),
                    _ => (key.span(), "client_key"),
                };
                self.error(span, key_name, e.to_string())
            })
    }

    /// Uses the same parser as delivery, so that an address accepted here is
    /// never refused later when the message is sent.
    pub(super) fn address(&self, key: &str, raw: &Spanned<String>) -> Result<String, ConfigError> {
        let text = raw.get_ref();
        if !crate::smtp::is_address(text) {
            let problem = format!("{text:?} is not a mail address (expected local@domain)");
            return Err(self.error(raw.span(), key, problem));
        }
        Ok(text.clone())
    }

    pub(super) fn timeout(&self, raw: Option<&Spanned<String>>) -> Result<Duration, ConfigError> {
        self.duration("timeout", raw, DEFAULT_TIMEOUT, MIN_TIMEOUT)
    }

    pub(super) fn duration(
        &self,
        key: &str,
        raw: Option<&Spanned<String>>,
        default: Duration,
        minimum: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(raw) = raw else { return Ok(default) };
        let text = raw.get_ref();
        let Ok(duration) = humantime::parse_duration(text) else {
            let problem = format!("{text:?} is not a duration (examples: \"90s\", \"5m\", \"1h\")");
            return Err(self.error(raw.span(), key, problem));
        };
        if duration < minimum {
            let problem = format!(
                "{text:?} is too short: the minimum is {}",
                humantime::format_duration(minimum)
            );
            return Err(self.error(raw.span(), key, problem));
        }
        Ok(duration)
    }

    /// `poll_interval_max`, which an adaptive interval grows towards from
    /// `interval`, so it cannot be shorter.
    pub(super) fn interval_max(
        &self,
        raw: Option<&Spanned<String>>,
        interval: Duration,
    ) -> Result<Option<Duration>, ConfigError> {
        const KEY: &str = "poll_interval_max";
        let Some(raw) = raw else { return Ok(None) };
        let max = self.duration(KEY, Some(raw), interval, Duration::ZERO)?;
        if max < interval {
            let problem = format!(
                "{:?} is shorter than poll_interval ({}): the interval grows from \
                 poll_interval up to poll_interval_max, so set it to at least {}, or remove \
                 it to poll at a fixed interval",
                raw.get_ref(),
                humantime::format_duration(interval),
                humantime::format_duration(interval)
            );
            return Err(self.error(raw.span(), KEY, problem));
        }
        Ok(Some(max))
    }

    pub(super) fn size(&self, raw: Option<&Spanned<RawSize>>) -> Result<u64, ConfigError> {
        const KEY: &str = "max_message_size";
        let Some(raw) = raw else {
            return Ok(DEFAULT_MAX_SIZE);
        };
        let (size, shown) = match raw.get_ref() {
            RawSize::Bytes(bytes) => (u64::try_from(*bytes).ok(), bytes.to_string()),
            RawSize::Text(text) => (parse_size(text), format!("{text:?}")),
        };
        match size {
            Some(0) => Err(self.error(raw.span(), KEY, "must not be zero".to_owned())),
            Some(size) => Ok(size),
            None => {
                let problem = format!(
                    "{shown} is not a size (examples: 1048576, \"512KiB\", \"64MiB\", \"1GB\")"
                );
                Err(self.error(raw.span(), KEY, problem))
            }
        }
    }
}
