//! The token endpoint (RFC 6749 §3.2): client authentication, the refresh
//! grant, and the replies that hand out tokens. The device and
//! authorization-code grants are in `device` and `pkce`.

use serde_json::json;

use super::device::DEVICE_GRANT;
use super::reply::{Params, Reply};
use super::server::Inbound;
use super::state::{basic_credentials, State};
use super::{AccessClaims, Rotation};

impl State {
    pub(super) fn token(&mut self, inbound: &Inbound, params: &Params) -> Result<Reply, Reply> {
        let client_id = self.authenticate(inbound, params)?;
        match params.require("grant_type")? {
            "refresh_token" => self.refresh(params),
            DEVICE_GRANT => self.device_token(&client_id, params, inbound.at),
            "authorization_code" => self.code_token(&client_id, params),
            other => Err(Reply::error(
                400,
                "unsupported_grant_type",
                &format!("grant_type {other} is not supported"),
            )),
        }
    }

    /// Checks a form POST from the one known client, with its secret if it
    /// is confidential, and gives the client id.
    pub(super) fn authenticate(&self, inbound: &Inbound, params: &Params) -> Result<String, Reply> {
        if inbound.method != hyper::Method::POST {
            return Err(Reply::error(
                405,
                "invalid_request",
                "this endpoint takes POST",
            ));
        }
        let form = inbound
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        if !form {
            return Err(Reply::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let form_id = params.get("client_id")?;
        let form_secret = params.get("client_secret")?;
        let basic = inbound.authorization.as_deref().map(basic_credentials);
        let (client_id, secret) = match basic {
            Some(None) => {
                return Err(Reply::invalid_client(
                    "the Authorization header is not Basic client credentials",
                ))
            }
            Some(Some(_)) if form_secret.is_some() => {
                return Err(Reply::invalid_request(
                    "the client authenticated both with Basic and in the form",
                ))
            }
            Some(Some((id, _))) if form_id.is_some_and(|form_id| form_id != id) => {
                return Err(Reply::invalid_request(
                    "client_id differs from the Basic credentials",
                ))
            }
            Some(Some((id, secret))) => (id, (!secret.is_empty()).then_some(secret)),
            None => (
                form_id.unwrap_or_default().to_owned(),
                form_secret.map(str::to_owned),
            ),
        };
        if client_id != self.settings.client_id {
            return Err(Reply::invalid_client("unknown client"));
        }
        match (&self.settings.client_secret, secret) {
            (Some(expected), Some(given)) if *expected == given => Ok(client_id),
            (Some(_), _) => Err(Reply::invalid_client("client authentication failed")),
            (None, None) => Ok(client_id),
            (None, Some(_)) => Err(Reply::invalid_client(
                "the client is public, so no client_secret may be presented",
            )),
        }
    }

    fn refresh(&mut self, params: &Params) -> Result<Reply, Reply> {
        let presented = params.require("refresh_token")?;
        let scope = params.get("scope")?;
        let grant = self
            .refresh_tokens
            .get_mut(presented)
            .filter(|grant| grant.valid)
            .ok_or_else(|| {
                Reply::invalid_grant("The refresh token is invalid, expired or revoked")
            })?;
        if self.settings.rotation == Rotation::Strict {
            grant.valid = false;
        }
        let (sub, granted) = (grant.sub.clone(), grant.scope.clone());
        let rotated = (self.settings.rotation != Rotation::None)
            .then(|| self.new_refresh_token(&sub, &granted));
        self.refresh_grants += 1;
        Ok(self.tokens(&sub, scope.unwrap_or(&granted), rotated))
    }

    /// A successful token reply (RFC 6749 §5.1).
    pub(super) fn tokens(&self, sub: &str, scope: &str, refresh_token: Option<String>) -> Reply {
        let lifetime = self.settings.lifetime;
        let access_token = (self.settings.mint)(&AccessClaims {
            sub,
            scope,
            lifetime,
            min_len: self.settings.min_token_len,
        });
        let mut body = json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "scope": scope,
        });
        if let Some(refresh_token) = refresh_token {
            body["refresh_token"] = refresh_token.into();
        }
        Reply::json(200, &body)
    }
}
