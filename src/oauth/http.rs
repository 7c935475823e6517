//! The HTTP client under the `oauth2` crate: reqwest, with the same rustls
//! configuration (and so the same trust anchors) as POP3 and SMTP.
//!
//! A 5xx answer is turned into a transport error before `oauth2` sees it:
//! the crate would otherwise report it as an unparsable body and lose the
//! status, and the status is what says "try again later".

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use oauth2::{HttpRequest, HttpResponse};

use crate::tls::{client_config, Trust};

/// For each request to a token or device endpoint.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an HTTP request got no OAuth answer.
#[derive(Debug, thiserror::Error)]
pub(super) enum HttpError {
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Transport(String),
    #[error("it answered HTTP {0}")]
    Status(u16),
}

/// The one HTTP client of the process (it pools connections).
fn http() -> Result<&'static reqwest::Client, HttpError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        let tls = client_config(&Trust::default(), None).map_err(|e| e.to_string())?;
        reqwest::Client::builder()
            .use_preconfigured_tls(Arc::unwrap_or_clone(tls))
            // RFC 6749 §3.2 endpoints do not redirect; following one could
            // send the refresh token somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| error_chain(&e))
    });
    client.as_ref().map_err(|e| HttpError::Setup(e.clone()))
}

/// The HTTP function handed to `oauth2`.
pub(super) async fn send(request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let client = http()?;
    let request =
        reqwest::Request::try_from(request).map_err(|e| HttpError::Setup(error_chain(&e)))?;
    let response = client
        .execute(request)
        .await
        .map_err(|e| HttpError::Transport(error_chain(&e)))?;
    let status = response.status();
    if status.is_server_error() {
        return Err(HttpError::Status(status.as_u16()));
    }
    let mut builder = oauth2::http::Response::builder().status(status.as_u16());
    for (name, value) in response.headers() {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| HttpError::Transport(error_chain(&e)))?;
    builder
        .body(body.to_vec())
        .map_err(|e| HttpError::Transport(e.to_string()))
}

/// reqwest's errors say little at the top ("error sending request for url
/// (...)", and the caller names the URL already) and the useful part
/// ("tcp connect error: Connection refused") in their sources, so the top
/// is left out when there is anything under it.
fn error_chain(error: &dyn std::error::Error) -> String {
    let Some(first) = error.source() else {
        return error.to_string();
    };
    let mut text = first.to_string();
    let mut cause = first.source();
    while let Some(inner) = cause {
        let part = inner.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        cause = inner.source();
    }
    text
}
