//! Where the relay is and how to greet it and log in, resolved once from
//! the `[smtp]` table and shared by every connection to it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use crate::config::{Credential, Protocol, TlsMode};
use crate::sasl::Mechanism;

/// How to reach and greet the relay, resolved once from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    /// Connect here instead of `host` and `port`.
    pub socket: Option<PathBuf>,
    pub protocol: Protocol,
    pub tls: TlsMode,
    /// Present unless `tls` is [`TlsMode::None`].
    pub tls_config: Option<Arc<ClientConfig>>,
    pub helo: String,
    pub login: Option<Login>,
    /// The configured mechanism; `None` for the strongest offered.
    pub auth: Option<Mechanism>,
    pub timeout: Duration,
}

impl Settings {
    /// The relay as logs and errors name it.
    pub fn peer(&self) -> String {
        peer_name(self.socket.as_deref(), &self.host, self.port)
    }
}

/// A relay's name in logs and errors: its socket's path, or `host:port`.
pub fn peer_name(socket: Option<&Path>, host: &str, port: u16) -> String {
    match socket {
        Some(path) => path.display().to_string(),
        None => format!("{host}:{port}"),
    }
}

/// Who logs in to the relay, and with what.
#[derive(Debug, Clone)]
pub struct Login {
    pub username: String,
    pub credential: Credential,
    /// The `popferry oauth login` arguments that renew an OAuth2 sign-in.
    pub sign_in: String,
}
