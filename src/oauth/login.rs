//! The first sign-in, for `popferry oauth login`: the one step a person
//! has to do, after which popferry refreshes on its own.
//!
//! Two flows, because the providers allow different ones for mail:
//! * the device flow (RFC 8628): popferry prints a URL and a code, the user
//!   signs in on any device. Microsoft allows it (tenants may block it);
//!   it suits a headless server.
//! * the browser flow with PKCE (RFC 6749 §4.1, RFC 7636, RFC 8252 §7.3):
//!   popferry listens on a loopback port, the user opens the printed URL in
//!   a browser on the same machine (or through `ssh -L`), and the provider
//!   redirects back to that port with a code. Google allows no device flow
//!   for the mail scope, so this is the one for Gmail.

use std::borrow::Cow;
use std::convert::Infallible;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use oauth2::basic::BasicClient;
use oauth2::url::form_urlencoded;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    DeviceAuthorizationUrl, PkceCodeChallenge, RedirectUrl, Scope,
    StandardDeviceAuthorizationResponse, TokenUrl,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::exchange::{classify, keep_sign_in};
use super::http::send;
use super::store::Store;
use super::{OAuthError, Provider, Registration};
use crate::blocking;

/// How long the browser flow waits for the redirect.
const BROWSER_WAIT: Duration = Duration::from_secs(300);

/// Which flow `popferry oauth login` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Device,
    Browser,
}

impl Flow {
    /// The device flow where the registration has its endpoint (it needs
    /// no browser on this machine), the browser flow otherwise.
    pub fn preferred(registration: &Registration) -> Option<Flow> {
        if registration.device_authorization_url.is_some() {
            Some(Flow::Device)
        } else if registration.authorization_url.is_some() {
            Some(Flow::Browser)
        } else {
            None
        }
    }
}

/// Runs `flow` and writes the refresh token it yields to the
/// registration's file. `tell` shows the user what to do.
pub async fn sign_in(
    registration: &Registration,
    login: &str,
    flow: Flow,
    tell: &(dyn Fn(String) + Sync),
) -> Result<(), OAuthError> {
    let store = Store::new(&registration.refresh_token_file);
    let prepared = store.clone();
    blocking::run(move || prepared.prepare()).await?;
    let setup = |what: &str, e: &dyn std::fmt::Display| OAuthError::SignIn(format!("{what}: {e}"));
    let token_url =
        TokenUrl::new(registration.token_url.clone()).map_err(|e| setup("token_url", &e))?;
    let mut client = BasicClient::new(ClientId::new(registration.client_id.clone()))
        .set_token_uri(token_url)
        .set_auth_type(AuthType::RequestBody);
    if let Some(source) = &registration.client_secret {
        let secret = source.fetch().await.map_err(OAuthError::ClientSecret)?;
        client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
    }
    let scopes = || registration.scopes.iter().cloned().map(Scope::new);
    let classify_here = |e| classify(e, registration, &store, login);
    let response = match flow {
        Flow::Device => {
            let url = registration
                .device_authorization_url
                .clone()
                .ok_or_else(|| {
                    OAuthError::SignIn("no device_authorization_url is configured".to_owned())
                })?;
            let url = DeviceAuthorizationUrl::new(url)
                .map_err(|e| setup("device_authorization_url", &e))?;
            let client = client.set_device_authorization_url(url);
            let details: StandardDeviceAuthorizationResponse = client
                .exchange_device_code()
                .add_scopes(scopes())
                .request_async(&send)
                .await
                .map_err(classify_here)?;
            tell(format!(
                "To sign in, open {} and enter the code {}",
                details.verification_uri().as_str(),
                details.user_code().secret()
            ));
            client
                .exchange_device_access_token(&details)
                .request_async(&send, tokio::time::sleep, None)
                .await
                .map_err(|e| classify(e, registration, &store, login))?
        }
        Flow::Browser => {
            let url = registration.authorization_url.clone().ok_or_else(|| {
                OAuthError::SignIn("no authorization_url is configured".to_owned())
            })?;
            let auth_url = AuthUrl::new(url).map_err(|e| setup("authorization_url", &e))?;
            let listener = TcpListener::bind(("127.0.0.1", 0))
                .await
                .map_err(|e| setup("cannot listen on a loopback port", &e))?;
            let port = listener
                .local_addr()
                .map_err(|e| setup("loopback port", &e))?
                .port();
            // Microsoft registers loopback redirects as "localhost" (any
            // port); RFC 8252 §7.3 prefers the literal address.
            let host = match registration.provider {
                Some(Provider::Microsoft) => "localhost",
                _ => "127.0.0.1",
            };
            let redirect = RedirectUrl::new(format!("http://{host}:{port}/"))
                .map_err(|e| setup("redirect", &e))?;
            let client = client.set_auth_uri(auth_url).set_redirect_uri(redirect);
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            let mut request = client
                .authorize_url(CsrfToken::new_random)
                .add_scopes(scopes())
                .set_pkce_challenge(challenge);
            for (name, value) in registration
                .provider
                .map_or(&[][..], Provider::authorization_params)
            {
                request = request.add_extra_param(*name, *value);
            }
            let (url, state) = request.url();
            tell(format!(
                "Open this address in a browser on this machine (from elsewhere: \
                 ssh -L {port}:127.0.0.1:{port} to it first), then sign in:\n{url}"
            ));
            let code = redirected_code(listener, state.secret()).await?;
            client
                .exchange_code(AuthorizationCode::new(code))
                .set_pkce_verifier(verifier)
                .set_redirect_uri(Cow::Borrowed(client.redirect_uri().expect("set above")))
                .request_async(&send)
                .await
                .map_err(classify_here)?
        }
    };
    keep_sign_in(&store, &response).await
}

/// What the provider's redirect brought back.
enum Redirect {
    Code(String),
    Refused(String),
}

/// Serves the loopback redirect until one request carries a code (or an
/// error) with the expected `state`; other requests (a browser's favicon)
/// get a 404.
async fn redirected_code(listener: TcpListener, state: &str) -> Result<String, OAuthError> {
    let (found, mut arrived) = mpsc::channel::<Redirect>(1);
    let expected = state.to_owned();
    let serve = async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let found = found.clone();
            let expected = expected.clone();
            let service = service_fn(move |request: Request<Incoming>| {
                let outcome = read_redirect(request.uri().query(), &expected);
                let page = match &outcome {
                    Some(Redirect::Code(_)) => "popferry: signed in. You can close this window.",
                    Some(Redirect::Refused(_)) => "popferry: the sign-in was refused.",
                    None => "",
                };
                let status = if outcome.is_some() { 200 } else { 404 };
                if let Some(outcome) = outcome {
                    let _ = found.try_send(outcome);
                }
                let response = Response::builder()
                    .status(status)
                    .header("content-type", "text/plain; charset=utf-8")
                    .body(page.to_owned());
                async move { Ok::<_, Infallible>(response.expect("static response")) }
            });
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    };
    let outcome = tokio::select! {
        () = serve => unreachable!("the accept loop never ends"),
        outcome = arrived.recv() => outcome,
        () = tokio::time::sleep(BROWSER_WAIT) => None,
    };
    match outcome {
        Some(Redirect::Code(code)) => Ok(code),
        Some(Redirect::Refused(reason)) => Err(OAuthError::SignIn(reason)),
        None => Err(OAuthError::SignIn(format!(
            "no sign-in arrived within {} s",
            BROWSER_WAIT.as_secs()
        ))),
    }
}

/// The code or error of a redirect whose `state` matches; `None` for any
/// other request.
fn read_redirect(query: Option<&str>, state: &str) -> Option<Redirect> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query?.as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if get("state").as_deref() != Some(state) {
        return None;
    }
    if let Some(code) = get("code") {
        return Some(Redirect::Code(code));
    }
    let error = get("error")?;
    let description = get("error_description").unwrap_or_default();
    Some(Redirect::Refused(
        format!("{error} {description}").trim().to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_redirect_with_our_state_counts() {
        assert!(read_redirect(Some("code=abc&state=other"), "s1").is_none());
        assert!(read_redirect(None, "s1").is_none());
        assert!(matches!(
            read_redirect(Some("code=abc&state=s1"), "s1"),
            Some(Redirect::Code(code)) if code == "abc"
        ));
        assert!(matches!(
            read_redirect(Some("error=access_denied&error_description=no+thanks&state=s1"), "s1"),
            Some(Redirect::Refused(reason)) if reason == "access_denied no thanks"
        ));
    }
}
