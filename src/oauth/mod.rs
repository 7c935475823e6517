//! OAuth2 access tokens for XOAUTH2 and OAUTHBEARER logins.
//!
//! Microsoft 365 and Gmail take only bearer tokens for POP3 and SMTP
//! submission. An access token lives about an hour (Microsoft: a random 60
//! to 90 minutes), so popferry keeps the long-lived refresh token in a file
//! and trades it at the provider's token endpoint (RFC 6749 §6) for a new
//! access token shortly before the current one expires.
//!
//! * [`OAuth2`]: one `[account.oauth2]` or `[smtp.oauth2]` table.
//! * [`tokens`]: the process-wide registry. Every refresh-token file has one
//!   [`TokenFile`], so accounts sharing a refresh token share its access
//!   token and never refresh it twice.
//! * `store`: the files beside the refresh token: the rotated token itself
//!   (replaced atomically), the access-token cache and the lock that keeps
//!   two processes from refreshing at once.
//! * `exchange`: the token endpoint, through the `oauth2` crate.
//! * `http`: reqwest with popferry's own rustls configuration.
//! * [`login`]: the first consent, for `popferry oauth login`.

mod error;
mod exchange;
mod http;
pub mod login;
mod provider;
mod store;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use crate::config::{PasswordSource, Secret};

pub use error::OAuthError;
pub use provider::{Provider, Use};
pub use store::Status;

/// Where an account's access tokens come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OAuth2 {
    /// popferry refreshes them itself.
    Refresh(Arc<Registration>),
    /// An outside tool (oama, mutt_oauth2.py, a vault agent) prints a valid
    /// access token; it does its own caching and refreshing.
    Command(String),
}

/// The app registration and the refresh token of one `oauth2` table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Registration {
    pub provider: Option<Provider>,
    pub token_url: String,
    pub client_id: String,
    /// Public clients (the usual case for a tool like popferry) have none.
    pub client_secret: Option<PasswordSource>,
    pub refresh_token_file: PathBuf,
    pub scopes: Vec<String>,
    /// For the device flow (RFC 8628) of `popferry oauth login`.
    pub device_authorization_url: Option<String>,
    /// For the browser flow with PKCE (RFC 7636) of `popferry oauth login`.
    pub authorization_url: Option<String>,
}

/// An access token and whether it came straight from the token endpoint.
///
/// A server that refuses a cached token may only have seen it go stale or
/// revoked early, so it is worth one refresh; refusing a fresh one means
/// the account, its scopes or the server's policy is wrong.
#[derive(Clone)]
pub struct AccessToken {
    pub secret: Secret,
    pub fresh: bool,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccessToken(fresh: {})", self.fresh)
    }
}

impl OAuth2 {
    /// A token to log in with now. `account` names who asks, for the
    /// hints in error messages.
    pub async fn access_token(&self, account: &str) -> Result<AccessToken, OAuthError> {
        match self {
            OAuth2::Refresh(registration) => {
                tokens().file(registration, account).access_token().await
            }
            OAuth2::Command(command) => {
                let source = PasswordSource::Command(command.clone());
                let secret = source.fetch().await.map_err(OAuthError::Command)?;
                Ok(AccessToken {
                    secret,
                    fresh: true,
                })
            }
        }
    }

    /// The server refused `token`: the next [`OAuth2::access_token`] must
    /// not hand it out again.
    pub async fn refused(&self, token: &AccessToken, account: &str) {
        if let OAuth2::Refresh(registration) = self {
            tokens().file(registration, account).refused(token).await;
        }
    }
}

/// Every refresh-token file this process uses.
#[derive(Debug, Default)]
pub struct Tokens {
    files: Mutex<HashMap<PathBuf, Arc<TokenFile>>>,
}

/// The registry of this process.
pub fn tokens() -> &'static Tokens {
    static TOKENS: OnceLock<Tokens> = OnceLock::new();
    TOKENS.get_or_init(Tokens::default)
}

impl Tokens {
    /// The one [`TokenFile`] for `registration`'s refresh token. The
    /// configuration makes sure every table naming a file agrees on the
    /// rest of the registration; a reloaded configuration that changed it
    /// (a new client_id, other scopes) starts the file afresh.
    pub fn file(&self, registration: &Arc<Registration>, account: &str) -> Arc<TokenFile> {
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        let path = &registration.refresh_token_file;
        match files.get(path) {
            Some(file) if file.registration == *registration => file.clone(),
            _ => {
                let file = Arc::new(TokenFile {
                    store: store::Store::new(path),
                    registration: registration.clone(),
                    login: account.to_owned(),
                    current: tokio::sync::Mutex::default(),
                });
                files.insert(path.clone(), file.clone());
                file
            }
        }
    }
}

/// One refresh token and the access token last obtained with it.
#[derive(Debug)]
pub struct TokenFile {
    registration: Arc<Registration>,
    /// The refresh token's file and the two beside it.
    store: store::Store,
    /// The account named in "sign in again with `popferry oauth login`".
    login: String,
    /// Held across a refresh, so a second caller waits for its result
    /// instead of refreshing too.
    current: tokio::sync::Mutex<Current>,
}

/// What a [`TokenFile`] holds in memory.
#[derive(Debug, Default)]
struct Current {
    access: Option<store::Cached>,
    /// A rotated refresh token not yet written to the file.
    unsaved: Option<Secret>,
}

impl TokenFile {
    /// The cached access token while it has a safe margin left, else a new
    /// one from the token endpoint.
    pub async fn access_token(&self) -> Result<AccessToken, OAuthError> {
        let mut current = self.current.lock().await;
        let now = SystemTime::now();
        if let Some(cached) = current.access.as_ref().filter(|c| c.usable(now)) {
            return Ok(cached.token(false));
        }
        let Current { access, unsaved } = &mut *current;
        let cached =
            exchange::obtain(&self.registration, &self.store, &self.login, unsaved).await?;
        let token = cached.token(cached.fresh);
        *access = Some(cached.settled());
        Ok(token)
    }

    async fn refused(&self, token: &AccessToken) {
        let mut current = self.current.lock().await;
        if current.access.as_ref().is_some_and(|c| c.is(&token.secret)) {
            current.access = None;
        }
        let store = self.store.clone();
        let secret = token.secret.clone();
        if let Err(error) = crate::blocking::run(move || store.forget(&secret)).await {
            tracing::warn!(%error, "cannot drop a refused access token from its cache file");
        }
    }
}

/// Refresh grants asked of token endpoints since the process started.
/// Process-wide like [`tokens`]: refreshes happen deep inside a login,
/// where no handle of the caller's reaches, and the daemon's metrics read
/// these when scraped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refreshes {
    pub ok: u64,
    pub failed: u64,
}

static REFRESHED: AtomicU64 = AtomicU64::new(0);
static REFRESH_FAILED: AtomicU64 = AtomicU64::new(0);

pub fn refreshes() -> Refreshes {
    Refreshes {
        ok: REFRESHED.load(Ordering::Relaxed),
        failed: REFRESH_FAILED.load(Ordering::Relaxed),
    }
}

fn count_refresh(ok: bool) {
    let counter = if ok { &REFRESHED } else { &REFRESH_FAILED };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What `popferry oauth status` shows for `registration`'s token file.
pub fn status(registration: &Registration) -> Status {
    store::Store::new(&registration.refresh_token_file).status()
}

/// How long before its expiry an access token is replaced: a fifth of its
/// lifetime, at most five minutes, so that a poll that starts with it
/// finishes before the server sees it expire (Gmail closes the session).
pub(crate) fn margin(lifetime: Duration) -> Duration {
    (lifetime / 5).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(client_id: &str) -> Arc<Registration> {
        Arc::new(Registration {
            provider: None,
            token_url: "https://login.example.com/token".into(),
            client_id: client_id.into(),
            client_secret: None,
            refresh_token_file: "/var/lib/popferry/registry-test.refresh".into(),
            scopes: Vec::new(),
            device_authorization_url: None,
            authorization_url: None,
        })
    }

    #[test]
    fn one_token_file_per_path_until_its_settings_change() {
        let tokens = Tokens::default();
        let first = tokens.file(&registration("one"), "alice");
        let again = tokens.file(&registration("one"), "bob");
        assert!(
            Arc::ptr_eq(&first, &again),
            "shared by every account naming the file"
        );
        let reloaded = tokens.file(&registration("two"), "alice");
        assert!(
            !Arc::ptr_eq(&first, &reloaded),
            "a changed registration starts afresh"
        );
        assert_eq!(reloaded.registration.client_id, "two");
    }

    #[test]
    fn tokens_are_replaced_a_fifth_of_their_life_early_at_most_five_minutes() {
        assert_eq!(margin(Duration::from_secs(10)), Duration::from_secs(2));
        assert_eq!(margin(Duration::from_secs(3600)), Duration::from_secs(300));
    }
}
