//! The token endpoint: the refresh grant (RFC 6749 §6) and the decision of
//! when to use it.
//!
//! HTTP goes through the `oauth2` crate over [`super::http`].

use std::time::{Duration, SystemTime};

use oauth2::basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    AuthType, ClientId, ClientSecret, DeviceCodeErrorResponse, DeviceCodeErrorResponseType,
    RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};

use super::http::{send, HttpError};
use super::store::{digest, Cached, Store};
use super::{OAuthError, Registration};
use crate::blocking;
use crate::config::Secret;

/// Assumed when a token response has no `expires_in` (RFC 6749 makes it
/// only RECOMMENDED); the providers popferry knows always send it.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// A usable access token: from the cache file if another process (or an
/// earlier `fetch`) left a good one, else from a refresh made under the
/// lock.
///
/// `unsaved` holds a rotated refresh token whose write failed (a full
/// disk): it is the valid one, so it is used and saved again.
pub(super) async fn obtain(
    registration: &Registration,
    store: &Store,
    login: &str,
    unsaved: &mut Option<Secret>,
) -> Result<Cached, OAuthError> {
    let now = SystemTime::now();
    let reader = store.clone();
    let (cached, signed_in) = blocking::run(move || {
        let signed_in = reader.read_refresh_token().map(|token| token.is_some());
        (reader.read_cache().cached(), signed_in)
    })
    .await;
    if let Some(cached) = cached.filter(|c| c.usable(now)) {
        return Ok(cached);
    }
    // Said before the lock file is needed: a missing sign-in is the first
    // thing to fix, not the folder it would go in.
    if !signed_in? && unsaved.is_none() {
        return Err(not_signed_in(store, login));
    }
    let locker = store.clone();
    let lock = blocking::run(move || locker.lock()).await?;
    let result = refresh_under_lock(registration, store, login, unsaved).await;
    drop(lock);
    result
}

async fn refresh_under_lock(
    registration: &Registration,
    store: &Store,
    login: &str,
    unsaved: &mut Option<Secret>,
) -> Result<Cached, OAuthError> {
    let owned = store.clone();
    let (mut cache, refresh_token) = blocking::run(move || {
        Ok::<_, OAuthError>((owned.read_cache(), owned.read_refresh_token()?))
    })
    .await?;
    // Whoever held the lock before may have refreshed already.
    if let Some(cached) = cache.cached().filter(|c| c.usable(SystemTime::now())) {
        return Ok(cached);
    }
    let Some(refresh_token) = unsaved.clone().or(refresh_token) else {
        return Err(not_signed_in(store, login));
    };
    let fingerprint = digest(&refresh_token);
    if cache.refused_refresh_token.as_deref() == Some(fingerprint.as_str()) {
        return Err(consent_needed(
            registration,
            store,
            login,
            "refused before; not asking again until the file holds a new token".to_owned(),
        ));
    }
    let client_secret = match &registration.client_secret {
        Some(source) => Some(source.fetch().await.map_err(OAuthError::ClientSecret)?),
        None => None,
    };
    let now = SystemTime::now();
    let outcome = refresh(registration, &refresh_token, client_secret.as_ref()).await;
    super::count_refresh(outcome.is_ok());
    let outcome = outcome.map_err(|error| classify(error, registration, store, login));
    let saver = store.clone();
    match outcome {
        Ok(grant) => {
            let cached = Cached::new(grant.access_token, grant.lifetime, now);
            cache.refreshed(&cached, now);
            let rotated = (grant.refresh_token)
                .filter(|new| *new != refresh_token)
                .or_else(|| unsaved.clone());
            // The new refresh token is on disk before anything uses the
            // access token that came with it: a provider that rotates may
            // already have voided the old one. If it cannot be written, it
            // stays in memory, the only copy, and the next refresh tries
            // again.
            let (saved, cached_file) = blocking::run(move || {
                let saved = match &rotated {
                    Some(new) => saver.write_refresh_token(new).map_err(|e| (e, new.clone())),
                    None => Ok(()),
                };
                (saved, saver.write_cache(&cache))
            })
            .await;
            match saved {
                Ok(()) => *unsaved = None,
                Err((error, token)) => {
                    tracing::error!(
                        %error,
                        "the rotated refresh token is only in memory until it can be written; \
                         if popferry stops first, sign in again with `popferry oauth login {login}`"
                    );
                    *unsaved = Some(token);
                }
            }
            if let Err(error) = cached_file {
                tracing::warn!(%error, "cannot cache the access token on disk");
            }
            tracing::info!(file = %store.refresh_token_path().display(), "OAuth2 access token refreshed");
            Ok(cached)
        }
        Err(error) => {
            let refused = matches!(error, OAuthError::ConsentNeeded { .. }).then_some(fingerprint);
            cache.failed(&error, refused, now);
            if let Err(write) = blocking::run(move || saver.write_cache(&cache)).await {
                tracing::warn!(error = %write, "cannot record the token endpoint's refusal");
            }
            Err(error)
        }
    }
}

struct Grant {
    access_token: Secret,
    lifetime: Duration,
    refresh_token: Option<Secret>,
}

type Failure = RequestTokenError<HttpError, BasicErrorResponse>;

async fn refresh(
    registration: &Registration,
    refresh_token: &Secret,
    client_secret: Option<&Secret>,
) -> Result<Grant, Failure> {
    let token_url = TokenUrl::new(registration.token_url.clone())
        .map_err(|e| RequestTokenError::Other(format!("token_url: {e}")))?;
    let mut client = BasicClient::new(ClientId::new(registration.client_id.clone()))
        .set_token_uri(token_url)
        // Microsoft and Google both take the secret in the body; public
        // clients send none at all.
        .set_auth_type(AuthType::RequestBody);
    if let Some(secret) = client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
    }
    let refresh_token = RefreshToken::new(refresh_token.expose().to_owned());
    let response = client
        .exchange_refresh_token(&refresh_token)
        .add_scopes(registration.scopes.iter().cloned().map(Scope::new))
        .request_async(&send)
        .await?;
    Ok(Grant::from(&response))
}

impl Grant {
    fn from(response: &BasicTokenResponse) -> Grant {
        Grant {
            access_token: Secret::new(response.access_token().secret().clone()),
            lifetime: response.expires_in().unwrap_or(DEFAULT_LIFETIME),
            refresh_token: (response.refresh_token()).map(|t| Secret::new(t.secret().clone())),
        }
    }
}

/// Keeps what a first sign-in returned: the refresh token (which it must
/// carry) and the access token that came with it.
pub(super) async fn keep_sign_in(
    store: &Store,
    response: &BasicTokenResponse,
) -> Result<(), OAuthError> {
    let grant = Grant::from(response);
    let Some(refresh_token) = grant.refresh_token else {
        return Err(OAuthError::SignIn(
            "the provider returned no refresh token: add \"offline_access\" to scopes \
             (Microsoft), or revoke popferry's access in the Google account and sign in again"
                .to_owned(),
        ));
    };
    let now = SystemTime::now();
    let cached = Cached::new(grant.access_token, grant.lifetime, now);
    let store = store.clone();
    blocking::run(move || {
        let _lock = store.lock()?;
        let mut cache = store.read_cache();
        cache.refreshed(&cached, now);
        store.write_refresh_token(&refresh_token)?;
        store.write_cache(&cache)
    })
    .await
}

/// A failed exchange with the token endpoint, sorted for the caller.
pub(super) fn classify<E: Refusal>(
    error: RequestTokenError<HttpError, E>,
    registration: &Registration,
    store: &Store,
    login: &str,
) -> OAuthError {
    let url = registration.token_url.clone();
    match error {
        RequestTokenError::ServerResponse(response) => {
            let reason = match response.description() {
                Some(text) => format!("{}: {}", response.code(), first_line(text)),
                None => response.code(),
            };
            match response.kind() {
                Kind::Grant => consent_needed(registration, store, login, reason),
                Kind::Temporary => OAuthError::Unavailable { url, reason },
                Kind::SignIn => OAuthError::SignIn(reason),
                Kind::Registration => OAuthError::Registration {
                    url,
                    client_id: registration.client_id.clone(),
                    reason,
                },
            }
        }
        RequestTokenError::Request(error) => OAuthError::Unavailable {
            url,
            reason: error.to_string(),
        },
        // The body is not shown: a half-formed success could hold a token.
        RequestTokenError::Parse(..) => OAuthError::Unavailable {
            url,
            reason: "its answer is not an OAuth2 token response".to_owned(),
        },
        RequestTokenError::Other(reason) => OAuthError::Unavailable { url, reason },
    }
}

/// What an error response (RFC 6749 §5.2, RFC 8628 §3.5) means for the
/// caller.
pub(super) enum Kind {
    /// The refresh token is no good: a person must sign in again.
    Grant,
    Temporary,
    /// A sign-in was declined or timed out.
    SignIn,
    /// The settings do not match the app registration.
    Registration,
}

/// The error responses of the refresh grant and of the device grant.
pub(super) trait Refusal: oauth2::ErrorResponse + 'static {
    fn code(&self) -> String;
    fn description(&self) -> Option<&str>;
    fn kind(&self) -> Kind;
}

fn basic_kind(code: &BasicErrorResponseType) -> Kind {
    match code {
        BasicErrorResponseType::InvalidGrant => Kind::Grant,
        BasicErrorResponseType::Extension(code)
            if code == "temporarily_unavailable" || code == "server_error" =>
        {
            Kind::Temporary
        }
        _ => Kind::Registration,
    }
}

impl Refusal for BasicErrorResponse {
    fn code(&self) -> String {
        self.error().to_string()
    }
    fn description(&self) -> Option<&str> {
        self.error_description().map(String::as_str)
    }
    fn kind(&self) -> Kind {
        basic_kind(self.error())
    }
}

impl Refusal for DeviceCodeErrorResponse {
    fn code(&self) -> String {
        self.error().to_string()
    }
    fn description(&self) -> Option<&str> {
        self.error_description().map(String::as_str)
    }
    fn kind(&self) -> Kind {
        match self.error() {
            DeviceCodeErrorResponseType::Basic(code) => basic_kind(code),
            DeviceCodeErrorResponseType::AccessDenied
            | DeviceCodeErrorResponseType::ExpiredToken => Kind::SignIn,
            DeviceCodeErrorResponseType::AuthorizationPending
            | DeviceCodeErrorResponseType::SlowDown => Kind::Temporary,
        }
    }
}

fn not_signed_in(store: &Store, login: &str) -> OAuthError {
    OAuthError::NotSignedIn {
        file: store.refresh_token_path().to_owned(),
        login: login.to_owned(),
    }
}

fn consent_needed(
    registration: &Registration,
    store: &Store,
    login: &str,
    reason: String,
) -> OAuthError {
    OAuthError::ConsentNeeded {
        url: registration.token_url.clone(),
        file: store.refresh_token_path().to_owned(),
        reason,
        login: login.to_owned(),
    }
}

/// Microsoft's descriptions run to several lines of trace ids.
fn first_line(text: &str) -> &str {
    let line = text.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(200) {
        Some((end, _)) => &line[..end],
        None => line,
    }
}
