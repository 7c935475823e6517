//! Everything the server knows, behind one lock: grants, injected faults,
//! and the request log.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};

use super::device::Device;
use super::pkce::{AuthCode, Consent};
use super::reply::{Params, Reply};
use super::server::Inbound;
use super::{Endpoint, Request, SecretVia, Settings};

/// A refresh token the server issued.
#[derive(Debug, Clone)]
pub(super) struct RefreshGrant {
    pub sub: String,
    pub scope: String,
    /// False once revoked, or superseded under `Rotation::Strict`.
    pub valid: bool,
}

/// A fault that applies to the next `left` requests.
#[derive(Debug, Clone)]
struct Countdown<T> {
    left: usize,
    what: T,
}

impl<T: Clone> Countdown<T> {
    fn take(slot: &mut Option<Countdown<T>>) -> Option<T> {
        let countdown = slot.as_mut()?;
        let what = countdown.what.clone();
        countdown.left -= 1;
        if countdown.left == 0 {
            *slot = None;
        }
        Some(what)
    }

    fn set(left: usize, what: T) -> Option<Countdown<T>> {
        (left > 0).then_some(Countdown { left, what })
    }
}

#[derive(Debug)]
pub(super) struct State {
    pub settings: Settings,
    /// `http://127.0.0.1:PORT`, for the URLs the server hands out.
    pub base_url: String,
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    pub devices: Vec<Device>,
    pub codes: HashMap<String, AuthCode>,
    pub consent: Consent,
    failure: Option<Countdown<(u16, String)>>,
    delay: Option<Countdown<Duration>>,
    pub log: Vec<Request>,
    pub refresh_grants: usize,
}

impl State {
    pub fn new(settings: Settings, base_url: String) -> State {
        State {
            settings,
            base_url,
            refresh_tokens: HashMap::new(),
            devices: Vec::new(),
            codes: HashMap::new(),
            consent: Consent::Ask,
            failure: None,
            delay: None,
            log: Vec::new(),
            refresh_grants: 0,
        }
    }

    /// Serves one request, or fails it as injected, and logs it; gives the
    /// reply and how long to hold it back.
    pub fn answer(&mut self, inbound: &Inbound) -> (Reply, Option<Duration>) {
        let params = Params::parse(if inbound.method == hyper::Method::GET {
            inbound.query.as_bytes()
        } else {
            &inbound.body
        });
        let endpoint = match inbound.path.as_str() {
            "/token" => Endpoint::Token,
            "/devicecode" => Endpoint::DeviceAuthorization,
            "/authorize" => Endpoint::Authorization,
            other => Endpoint::Other(other.into()),
        };
        let delay = Countdown::take(&mut self.delay);
        let reply = match Countdown::take(&mut self.failure) {
            Some((status, body)) => Reply::injected(status, &body),
            None => self.route(&endpoint, inbound, &params),
        };
        self.log
            .push(logged(endpoint, inbound, &params, reply.status));
        (reply, delay)
    }

    fn route(&mut self, endpoint: &Endpoint, inbound: &Inbound, params: &Params) -> Reply {
        let reply = match endpoint {
            Endpoint::Token => self.token(inbound, params),
            Endpoint::DeviceAuthorization => self.device_authorization(inbound, params),
            Endpoint::Authorization => Ok(self.authorize(params)),
            Endpoint::Other(path) if path == "/device" => Ok(Reply::html(
                200,
                "Enter the code shown on your device. (Tests approve it with approve_device.)",
            )),
            Endpoint::Other(_) => Ok(Reply::html(404, "Not found")),
        };
        reply.unwrap_or_else(|error| error)
    }

    pub fn new_refresh_token(&mut self, sub: &str, scope: &str) -> String {
        let token = random_token("rt_");
        self.refresh_tokens.insert(
            token.clone(),
            RefreshGrant {
                sub: sub.into(),
                scope: scope.into(),
                valid: true,
            },
        );
        token
    }

    /// One refresh token, or all of them.
    pub fn revoke(&mut self, refresh_token: Option<&str>) {
        for (token, grant) in &mut self.refresh_tokens {
            if refresh_token.is_none_or(|revoked| revoked == token) {
                grant.valid = false;
            }
        }
    }

    pub fn fail_next(&mut self, n: usize, status: u16, body: &str) {
        self.failure = Countdown::set(n, (status, body.into()));
    }

    pub fn delay_next(&mut self, n: usize, delay: Duration) {
        self.delay = Countdown::set(n, delay);
    }
}

fn logged(endpoint: Endpoint, inbound: &Inbound, params: &Params, status: u16) -> Request {
    let basic = inbound.authorization.as_deref().and_then(basic_credentials);
    let basic_secret = basic.as_ref().is_some_and(|(_, secret)| !secret.is_empty());
    let secret = match (basic_secret, params.first("client_secret").is_some()) {
        (false, false) => SecretVia::None,
        (true, false) => SecretVia::Basic,
        (false, true) => SecretVia::Form,
        (true, true) => SecretVia::Both,
    };
    let owned = |name| params.first(name).map(str::to_owned);
    Request {
        endpoint,
        at: inbound.at,
        grant_type: owned("grant_type"),
        client_id: basic.map(|(id, _)| id).or_else(|| owned("client_id")),
        secret,
        scope: owned("scope"),
        refresh_token: owned("refresh_token"),
        status,
    }
}

/// The client id and secret of an `Authorization: Basic` header, each
/// form-decoded as RFC 6749 §2.3.1 says; None for any other header.
pub(super) fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

fn form_decode(component: &str) -> String {
    form_urlencoded::parse(component.as_bytes())
        .next()
        .map(|(decoded, _)| decoded.into_owned())
        .unwrap_or_default()
}

/// `prefix` and 32 random bytes, base64url.
pub(super) fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("random bytes from the system");
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    format!("{prefix}{encoded}")
}

/// The default access token: random, opaque, at least `min_len` long.
pub(super) fn opaque_token(min_len: usize) -> String {
    let mut token = random_token("at_");
    while token.len() < min_len {
        token.push_str(&random_token(""));
    }
    token
}
