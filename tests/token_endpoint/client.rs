//! A plain HTTP client for tests that speak to the endpoint themselves,
//! and [`browse`], the user's browser in a consent flow.

use std::time::Duration;

use base64::Engine as _;
use ring::digest::{digest, SHA256};
use serde_json::Value;

use super::TokenEndpoint;

/// A reply, with its body as JSON if it is JSON, else as a JSON string.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub json: Value,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    /// The RFC 6749 §5.2 error code, or "".
    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or_default()
    }

    /// A string field of the JSON body; panics if there is none.
    pub fn str(&self, field: &str) -> &str {
        self.json[field]
            .as_str()
            .unwrap_or_else(|| panic!("no string {field} in {}", self.json))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Never errs on a status and follows no redirect, so a test sees each
/// answer as it was.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

pub fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut response = response.expect("an HTTP answer");
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let body = response.body_mut().read_to_string().expect("a body");
    Answer {
        status: response.status().as_u16(),
        json: serde_json::from_str(&body).unwrap_or(Value::String(body)),
        headers,
    }
}

/// POSTs a form, with Basic credentials if given.
pub fn post(url: &str, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> Answer {
    let mut request = agent(Duration::from_secs(10)).post(url);
    if let Some((id, secret)) = basic {
        let credentials = format!("{id}:{secret}");
        let encoded =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, credentials);
        request = request.header("authorization", format!("Basic {encoded}"));
    }
    answer(request.send_form(form.iter().copied()))
}

pub fn get(url: &str) -> Answer {
    answer(agent(Duration::from_secs(10)).get(url).call())
}

/// A refresh grant from the endpoint's client, as a public client sends it.
pub fn refresh(endpoint: &TokenEndpoint, refresh_token: &str) -> Answer {
    post(
        &endpoint.token_url(),
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &endpoint.client_id()),
            ("refresh_token", refresh_token),
        ],
    )
}

/// Acts as the user's browser: GETs `url` and follows redirects (to
/// popferry's loopback listener, after an approved authorization), giving
/// the last status and body.
pub fn browse(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("browse {url}: {e}"));
    let body = response
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("read the page at {url}: {e}"));
    (response.status().as_u16(), body)
}

/// The S256 code challenge of a PKCE verifier (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}
