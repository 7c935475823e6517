//! Why no access token could be had, sorted by what the operator must do.
//!
//! The sort matters more than the words: a token endpoint that is down is
//! a temporary failure (the mail stays, the poll backs off as usual), but a
//! refused refresh token needs a person to sign in again, and asking the
//! endpoint again every poll only gets the client throttled.

use std::io;
use std::path::PathBuf;

use crate::config::SecretError;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// `invalid_grant`: the refresh token was revoked, expired from disuse
    /// (Microsoft after 90 days, Google after 6 months, a Google app in
    /// "Testing" after 7 days) or superseded by a rotation.
    #[error(
        "the token endpoint {url} refused the refresh token in {} ({reason}): it was revoked, \
         expired or replaced; sign in again with `popferry oauth login {login}`",
        file.display()
    )]
    ConsentNeeded {
        url: String,
        file: PathBuf,
        reason: String,
        login: String,
    },
    /// `invalid_client`, `unauthorized_client`, `invalid_scope` and the
    /// like: the settings do not match the app registration.
    #[error(
        "the token endpoint {url} refused client_id {client_id} ({reason}): check client_id, \
         client_secret and scopes against the app registration"
    )]
    Registration {
        url: String,
        client_id: String,
        reason: String,
    },
    /// Unreachable, 5xx, an answer that is not OAuth JSON, or
    /// `temporarily_unavailable`: try again at the next poll.
    #[error("the token endpoint {url} is not available ({reason}); will try again later")]
    Unavailable { url: String, reason: String },
    #[error("no refresh token yet in {}: sign in first with `popferry oauth login {login}`", file.display())]
    NotSignedIn { file: PathBuf, login: String },
    /// The refresh token or a file beside it. The usual cause is a folder
    /// that does not exist or belongs to another user.
    #[error(
        "cannot {action} {}: {source} (the folder of refresh_token_file must exist, and the \
         user popferry runs as must be able to read and write in it)",
        path.display()
    )]
    Store {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("client_secret: {0}")]
    ClientSecret(SecretError),
    #[error("access_token_command: {0}")]
    Command(SecretError),
    #[error("sign-in did not complete: {0}")]
    SignIn(String),
}

impl OAuthError {
    /// True when trying again later may succeed without anyone's help.
    pub fn is_temporary(&self) -> bool {
        matches!(self, OAuthError::Unavailable { .. })
    }
}
