//! The tests' own OAuth2 authorization server on 127.0.0.1: the token
//! endpoint (RFC 6749 refresh and authorization-code grants, RFC 8628 device
//! grant), the device authorization endpoint and the authorization endpoint
//! with PKCE (RFC 7636, S256 only).
//!
//! Microsoft and Google cannot be asked to revoke a grant, rotate refresh
//! tokens the other way, or fail on the next request; this server does all
//! of it on cue, answers with the exact error JSON of RFC 6749 §5.2, and
//! logs every request so a test can check what popferry presented.
//!
//! One instance per test: each has its own port and state, so tests running
//! in parallel never see each other's grants. Keep-alive is off, so after
//! [`TokenEndpoint::stop`] no pooled connection lingers and every new
//! request is refused, as from a server that went down.
//!
//! Several test crates include this module and each uses a subset of it,
//! hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod client;
mod device;
mod grants;
mod pkce;
mod reply;
mod server;
mod state;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use state::State;

/// What the server does with the refresh token of a successful refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// No new refresh token in the reply; the old one stays valid (Google).
    None,
    /// A new refresh token each time; the old one stays valid (Microsoft).
    Rotate,
    /// A new refresh token each time; the old one is invalid at once, so a
    /// client that loses the new one, or two clients that race, meet
    /// `invalid_grant`.
    Strict,
}

/// What the access-token minter is told about the token to make.
#[derive(Debug, Clone, Copy)]
pub struct AccessClaims<'a> {
    /// The subject the grant belongs to: the mailbox address.
    pub sub: &'a str,
    pub scope: &'a str,
    pub lifetime: Duration,
    /// The token must be at least this long ([`Settings::min_token_len`]).
    pub min_len: usize,
}

/// Makes an access token; a JWT signer lets a real server accept it.
pub type Mint = Arc<dyn Fn(&AccessClaims<'_>) -> String + Send + Sync>;

/// How the server behaves; fixed for its lifetime.
#[derive(Clone)]
pub struct Settings {
    /// The access tokens' lifetime, sent as `expires_in` (whole seconds).
    pub lifetime: Duration,
    pub rotation: Rotation,
    /// The one client the server knows; any other is `invalid_client`.
    pub client_id: String,
    /// Some: a confidential client, every request must authenticate with
    /// this secret (HTTP Basic or the form, not both). None: a public
    /// client, which must send no secret at all (Microsoft refuses one).
    pub client_secret: Option<String>,
    pub mint: Mint,
    /// Access tokens at least this long, to test SASL lines over the
    /// relay's limit (Postfix: 2048 bytes); 0 for no minimum.
    pub min_token_len: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lifetime: Duration::from_secs(3600),
            rotation: Rotation::Rotate,
            client_id: "popferry-test".into(),
            client_secret: None,
            mint: Arc::new(|claims: &AccessClaims<'_>| state::opaque_token(claims.min_len)),
            min_token_len: 0,
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("lifetime", &self.lifetime)
            .field("rotation", &self.rotation)
            .field("client_id", &self.client_id)
            .field("confidential", &self.client_secret.is_some())
            .field("min_token_len", &self.min_token_len)
            .finish_non_exhaustive()
    }
}

/// Which of the server's URLs a request went to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Token,
    DeviceAuthorization,
    Authorization,
    /// The device flow's verification page, or a path the server lacks.
    Other(String),
}

/// How the client secret came, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretVia {
    None,
    /// In an `Authorization: Basic` header (RFC 6749 §2.3.1).
    Basic,
    /// As `client_secret` in the form body.
    Form,
    /// Both at once, which RFC 6749 forbids (`invalid_request`).
    Both,
}

/// One request as the server saw it, whatever it answered.
#[derive(Debug, Clone)]
pub struct Request {
    pub endpoint: Endpoint,
    pub at: Instant,
    pub grant_type: Option<String>,
    /// From the Basic header if there was one, else from the form.
    pub client_id: Option<String>,
    pub secret: SecretVia,
    pub scope: Option<String>,
    /// The refresh token presented, to tell after a rotation which one the
    /// client used.
    pub refresh_token: Option<String>,
    /// The status answered, an injected failure's included.
    pub status: u16,
}

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct TokenEndpoint {
    state: Arc<Mutex<State>>,
    port: u16,
    running: Mutex<Option<server::Running>>,
}

impl TokenEndpoint {
    /// Listen on 127.0.0.1 with an ephemeral port.
    pub fn start(settings: Settings) -> TokenEndpoint {
        let listener = server::bind(0);
        let port = listener
            .local_addr()
            .expect("the listener's address")
            .port();
        let state = Arc::new(Mutex::new(State::new(
            settings,
            format!("http://127.0.0.1:{port}"),
        )));
        let running = server::Running::start(listener, Arc::clone(&state));
        TokenEndpoint {
            state,
            port,
            running: Mutex::new(Some(running)),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn client_id(&self) -> String {
        self.lock().settings.client_id.clone()
    }

    pub fn token_url(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    pub fn device_authorization_url(&self) -> String {
        format!("http://127.0.0.1:{}/devicecode", self.port)
    }

    pub fn authorization_url(&self) -> String {
        format!("http://127.0.0.1:{}/authorize", self.port)
    }

    /// Stands in for a first consent: a refresh token for `sub`.
    pub fn issue_refresh_token(&self, sub: &str) -> String {
        self.lock().new_refresh_token(sub, "")
    }

    /// Makes `refresh_token` invalid, as a user revoking consent would.
    pub fn revoke(&self, refresh_token: &str) {
        self.lock().revoke(Some(refresh_token));
    }

    pub fn revoke_all(&self) {
        self.lock().revoke(None);
    }

    /// Answers the next `n` requests, to any URL, with `status` and `body`
    /// instead of serving them; they change nothing. A body starting with
    /// `{` goes as JSON, any other as HTML (a proxy's error page).
    pub fn fail_next(&self, n: usize, status: u16, body: &str) {
        assert!((100..=999).contains(&status), "{status} is no HTTP status");
        self.lock().fail_next(n, status, body);
    }

    /// Answers the next `n` requests `delay` late. They are served when
    /// they arrive, so a client that gives up first may miss a rotated
    /// refresh token, as with a real server.
    pub fn delay_next(&self, n: usize, delay: Duration) {
        self.lock().delay_next(n, delay);
    }

    /// Goes down: once this returns the port refuses connections, and
    /// requests in flight are cut off unanswered. The state stays.
    pub fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(running) = running {
            running.stop();
        }
    }

    /// Comes back up on the same port with the same state.
    pub fn resume(&self) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if running.is_none() {
            *running = Some(server::Running::start(
                server::bind(self.port),
                Arc::clone(&self.state),
            ));
        }
    }

    /// How many refresh grants succeeded.
    pub fn refresh_grants(&self) -> usize {
        self.lock().refresh_grants
    }

    /// Every request received, in order of arrival.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().log.clone()
    }

    /// The user codes of device authorizations still waiting for the user,
    /// as `XXXX-XXXX`.
    pub fn pending_user_codes(&self) -> Vec<String> {
        self.lock().pending_user_codes()
    }

    /// The user signs in as `sub` and consents. Codes match ignoring case
    /// and dashes; an unknown one panics.
    pub fn approve_device(&self, user_code: &str, sub: &str) {
        self.lock()
            .settle_device(user_code, device::Settle::Approve(sub.into()));
    }

    /// The user declines: the next poll gets `access_denied`.
    pub fn deny_device(&self, user_code: &str) {
        self.lock().settle_device(user_code, device::Settle::Deny);
    }

    /// The user took too long: the next poll gets `expired_token`.
    pub fn expire_device(&self, user_code: &str) {
        self.lock().settle_device(user_code, device::Settle::Expire);
    }

    /// The authorization endpoint signs `sub` in and consents at once,
    /// redirecting the browser back with a code.
    pub fn auto_approve(&self, sub: &str) {
        self.lock().consent = pkce::Consent::Approve(sub.into());
    }

    /// The authorization endpoint redirects back with `access_denied`.
    pub fn auto_deny(&self) {
        self.lock().consent = pkce::Consent::Deny;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        self.stop();
    }
}
