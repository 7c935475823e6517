//! The secret a login sends, fetched when a connection needs it.
//!
//! POP3 sessions and SMTP relay connections log in the same two ways: with
//! a password from its source, or with an OAuth2 access token. Both are
//! fetched just before connecting (a rotated password file or a refreshed
//! token is picked up at the next login), and both go to the same SASL
//! mechanisms; only a token can be worth a second try, when the server
//! refused one that came from a cache.

use crate::config::{Credential, Secret, SecretError};
use crate::oauth::{AccessToken, OAuth2, OAuthError};
use crate::sasl::SecretKind;

/// A password or an access token, ready to send.
#[derive(Debug)]
pub enum LoginSecret {
    Password(Secret),
    Token { token: AccessToken, from: OAuth2 },
}

/// Why there is nothing to log in with.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("password: {0}")]
    Password(#[source] SecretError),
    #[error(transparent)]
    OAuth(#[from] OAuthError),
}

impl LoginSecret {
    /// Reads the password or obtains a token; `account` names who asks,
    /// for the hints in OAuth errors.
    pub async fn fetch(credential: &Credential, account: &str) -> Result<Self, CredentialError> {
        match credential {
            Credential::Password(source) => (source.fetch().await)
                .map(LoginSecret::Password)
                .map_err(CredentialError::Password),
            Credential::OAuth2(oauth2) => Ok(LoginSecret::Token {
                token: oauth2.access_token(account).await?,
                from: oauth2.clone(),
            }),
        }
    }

    pub fn is_token(&self) -> bool {
        matches!(self, LoginSecret::Token { .. })
    }

    /// The text that goes into the SASL exchange.
    pub fn expose(&self) -> &str {
        match self {
            LoginSecret::Password(password) => password.expose(),
            LoginSecret::Token { token, .. } => token.secret.expose(),
        }
    }

    pub fn kind(&self) -> SecretKind {
        match self {
            LoginSecret::Password(password) => SecretKind::of_password(password.expose()),
            LoginSecret::Token { .. } => SecretKind::Token,
        }
    }

    /// The server refused this secret. For a token that came from a cache
    /// (it may have been revoked early, or a clock is off) the cache forgets
    /// it and the caller should fetch again and retry once; `false` means
    /// retrying would send the same refusal again.
    pub async fn refused(&self, account: &str) -> bool {
        match self {
            LoginSecret::Token { token, from } if !token.fresh => {
                from.refused(token, account).await;
                true
            }
            _ => false,
        }
    }
}
