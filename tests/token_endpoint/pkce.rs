//! The authorization-code grant with PKCE (RFC 6749 §4.1, RFC 7636): the
//! authorization endpoint the user's browser visits, and the code's
//! exchange at the token endpoint.

use super::client::s256;
use super::reply::{Params, Reply};
use super::state::{random_token, State};

/// What the authorization endpoint does with a well-formed request.
#[derive(Debug, Clone)]
pub(super) enum Consent {
    /// Shows a sign-in page and nothing more, as for a user who walks away.
    Ask,
    /// Signs this subject in and redirects back with a code.
    Approve(String),
    /// Redirects back with `access_denied`.
    Deny,
}

/// An authorization code handed out and not yet exchanged.
#[derive(Debug)]
pub(super) struct AuthCode {
    client_id: String,
    redirect_uri: String,
    /// BASE64URL(SHA256(code_verifier)), as the client sent it.
    challenge: String,
    sub: String,
    scope: String,
}

impl State {
    pub(super) fn authorize(&mut self, params: &Params) -> Reply {
        self.authorization(params).unwrap_or_else(|error| error)
    }

    fn authorization(&mut self, params: &Params) -> Result<Reply, Reply> {
        // Until the client and redirect URI are known good, errors go to the
        // user, never to the redirect URI (RFC 6749 §4.1.2.1).
        let get = |name| {
            params
                .get(name)
                .map_err(|_| Reply::html(400, &format!("{name} is given more than once")))
        };
        if get("client_id")? != Some(self.settings.client_id.as_str()) {
            return Err(Reply::html(400, "Unknown client"));
        }
        let redirect_uri = get("redirect_uri")?
            .filter(|uri| is_loopback(uri))
            .ok_or_else(|| Reply::html(400, "redirect_uri must be an http:// loopback address"))?;
        let state = get("state")?;
        let back = |pairs: &[(&str, &str)]| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.extend_pairs(pairs);
            if let Some(state) = state {
                query.append_pair("state", state);
            }
            let separator = if redirect_uri.contains('?') { '&' } else { '?' };
            Reply::redirect(format!("{redirect_uri}{separator}{}", query.finish()))
        };
        if get("response_type")? != Some("code") {
            return Err(back(&[("error", "unsupported_response_type")]));
        }
        let challenge = get("code_challenge")?
            .filter(|challenge| challenge.len() == 43 && is_unreserved(challenge))
            .filter(|_| matches!(get("code_challenge_method"), Ok(Some("S256"))))
            .ok_or_else(|| {
                back(&[
                    ("error", "invalid_request"),
                    ("error_description", "PKCE with S256 is required"),
                ])
            })?;
        let scope = get("scope")?.unwrap_or_default();
        match self.consent.clone() {
            Consent::Ask => Ok(Reply::html(200, "Sign in to continue")),
            Consent::Deny => Ok(back(&[("error", "access_denied")])),
            Consent::Approve(sub) => {
                let code = random_token("ac_");
                self.codes.insert(
                    code.clone(),
                    AuthCode {
                        client_id: self.settings.client_id.clone(),
                        redirect_uri: redirect_uri.into(),
                        challenge: challenge.into(),
                        sub,
                        scope: scope.into(),
                    },
                );
                Ok(back(&[("code", &code)]))
            }
        }
    }

    /// The code's exchange (RFC 6749 §4.1.3, RFC 7636 §4.5, §4.6); a code
    /// is good for one success only.
    pub(super) fn code_token(&mut self, client_id: &str, params: &Params) -> Result<Reply, Reply> {
        let code = params.require("code")?;
        let redirect_uri = params.require("redirect_uri")?;
        let verifier = params.require("code_verifier")?;
        if !(43..=128).contains(&verifier.len()) || !is_unreserved(verifier) {
            return Err(Reply::invalid_request(
                "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
            ));
        }
        let issued = self
            .codes
            .get(code)
            .filter(|issued| issued.client_id == client_id)
            .ok_or_else(|| Reply::invalid_grant("unknown or spent authorization code"))?;
        if issued.redirect_uri != redirect_uri {
            return Err(Reply::invalid_grant(
                "redirect_uri differs from the authorization request's",
            ));
        }
        if s256(verifier) != issued.challenge {
            return Err(Reply::invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        let AuthCode { sub, scope, .. } = self.codes.remove(code).expect("the code found above");
        let refresh_token = self.new_refresh_token(&sub, &scope);
        Ok(self.tokens(&sub, &scope, Some(refresh_token)))
    }
}

/// Native apps redirect to a port of their own on the loopback interface
/// (RFC 8252 §7.3); anything else would be a bug in popferry.
fn is_loopback(uri: &str) -> bool {
    ["http://127.0.0.1:", "http://[::1]:", "http://localhost:"]
        .iter()
        .any(|prefix| uri.starts_with(prefix))
        && !uri.contains('#')
}

/// RFC 7636 §4.1: ALPHA / DIGIT / "-" / "." / "_" / "~".
fn is_unreserved(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}
