//! The tests' token endpoint carries out the two first-consent flows as
//! RFC 8628 and RFC 7636 say: the device grant, and the authorization code
//! with PKCE through a browser redirected to a loopback listener.

mod token_endpoint;

use std::time::Duration;

use token_endpoint::client::{browse, get, post, refresh, s256, Answer};
use token_endpoint::{Endpoint, Settings, TokenEndpoint};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const VERIFIER: &str = "a-code-verifier-of-fifty-characters-0123456789abcd";

fn device_authorization(endpoint: &TokenEndpoint) -> Answer {
    let reply = post(
        &endpoint.device_authorization_url(),
        None,
        &[
            ("client_id", "popferry-test"),
            ("scope", "pop offline_access"),
        ],
    );
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply
}

fn poll(endpoint: &TokenEndpoint, device_code: &str) -> Answer {
    let form = [
        ("grant_type", DEVICE_GRANT),
        ("client_id", "popferry-test"),
        ("device_code", device_code),
    ];
    post(&endpoint.token_url(), None, &form)
}

#[test]
fn device_flow_is_pending_until_approved_then_gives_tokens_once() {
    let endpoint = TokenEndpoint::start(Settings::default());
    let started = device_authorization(&endpoint);
    let (device_code, user_code) = (started.str("device_code"), started.str("user_code"));
    assert_eq!(started.json["interval"], 1);
    assert_eq!(started.json["expires_in"], 900);
    assert!(started.str("verification_uri").ends_with("/device"));
    assert!(started.str("verification_uri_complete").contains(user_code));
    assert_eq!(endpoint.pending_user_codes(), [user_code]);

    assert_eq!(
        poll(&endpoint, device_code).error(),
        "authorization_pending"
    );
    std::thread::sleep(Duration::from_millis(1100));
    endpoint.approve_device(
        &user_code.to_lowercase().replace('-', ""),
        "alice@example.test",
    );
    assert!(endpoint.pending_user_codes().is_empty());
    let tokens = poll(&endpoint, device_code);
    assert_eq!(tokens.status, 200, "{}", tokens.json);
    assert_eq!(tokens.str("scope"), "pop offline_access");
    let rt = tokens.str("refresh_token");
    assert_eq!(refresh(&endpoint, rt).status, 200);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(poll(&endpoint, device_code).error(), "invalid_grant");
}

#[test]
fn device_flow_polled_too_fast_is_slow_down() {
    let endpoint = TokenEndpoint::start(Settings::default());
    let started = device_authorization(&endpoint);
    let device_code = started.str("device_code");
    assert_eq!(
        poll(&endpoint, device_code).error(),
        "authorization_pending"
    );
    let fast = poll(&endpoint, device_code);
    assert_eq!((fast.status, fast.error()), (400, "slow_down"));
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        poll(&endpoint, device_code).error(),
        "slow_down",
        "after slow_down the interval is 5 s longer (RFC 8628 §3.5)"
    );
}

#[test]
fn device_flow_denied_or_expired_ends_with_its_error() {
    let endpoint = TokenEndpoint::start(Settings::default());
    let denied = device_authorization(&endpoint);
    let expired = device_authorization(&endpoint);
    endpoint.deny_device(denied.str("user_code"));
    endpoint.expire_device(expired.str("user_code"));
    assert_eq!(
        poll(&endpoint, denied.str("device_code")).error(),
        "access_denied"
    );
    assert_eq!(
        poll(&endpoint, expired.str("device_code")).error(),
        "expired_token"
    );
    assert_eq!(poll(&endpoint, "dc_never_issued").error(), "invalid_grant");
}

/// The authorization URL a client builds for a PKCE login.
fn authorize_url(endpoint: &TokenEndpoint, redirect_uri: &str, pkce: bool) -> String {
    let challenge = s256(VERIFIER);
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.extend_pairs([
        ("response_type", "code"),
        ("client_id", "popferry-test"),
        ("redirect_uri", redirect_uri),
        ("scope", "https://mail.google.com/"),
        ("state", "xyz 1"),
    ]);
    if pkce {
        query.extend_pairs([
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]);
    }
    format!("{}?{}", endpoint.authorization_url(), query.finish())
}

/// The query of a redirect's Location, decoded.
fn redirected(reply: &Answer) -> Vec<(String, String)> {
    assert_eq!(reply.status, 302, "{}", reply.json);
    let location = reply.header("location").expect("a Location");
    let (_, query) = location.split_once('?').expect("a query");
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn exchange(endpoint: &TokenEndpoint, code: &str, redirect_uri: &str, verifier: &str) -> Answer {
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "popferry-test"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    post(&endpoint.token_url(), None, &form)
}

#[test]
fn pkce_code_is_exchanged_once_with_the_right_verifier_and_redirect_uri() {
    let endpoint = TokenEndpoint::start(Settings::default());
    let redirect_uri = "http://127.0.0.1:4711/callback";
    assert_eq!(
        get(&authorize_url(&endpoint, redirect_uri, true)).status,
        200
    );
    endpoint.auto_approve("alice@example.test");
    let query = redirected(&get(&authorize_url(&endpoint, redirect_uri, true)));
    assert_eq!(query[1], ("state".into(), "xyz 1".into()));
    let (name, code) = &query[0];
    assert_eq!(name, "code");

    let bad = exchange(&endpoint, code, redirect_uri, &VERIFIER.replace('a', "b"));
    assert_eq!((bad.status, bad.error()), (400, "invalid_grant"));
    let elsewhere = exchange(&endpoint, code, "http://127.0.0.1:4712/callback", VERIFIER);
    assert_eq!(elsewhere.error(), "invalid_grant");
    assert_eq!(
        exchange(&endpoint, code, redirect_uri, "short").error(),
        "invalid_request"
    );
    let tokens = exchange(&endpoint, code, redirect_uri, VERIFIER);
    assert_eq!(tokens.status, 200, "{}", tokens.json);
    assert_eq!(refresh(&endpoint, tokens.str("refresh_token")).status, 200);
    assert_eq!(
        exchange(&endpoint, code, redirect_uri, VERIFIER).error(),
        "invalid_grant"
    );
}

#[test]
fn authorization_without_pkce_or_denied_redirects_back_with_the_error() {
    let endpoint = TokenEndpoint::start(Settings::default());
    endpoint.auto_approve("alice@example.test");
    let redirect_uri = "http://127.0.0.1:4711/";
    let no_pkce = redirected(&get(&authorize_url(&endpoint, redirect_uri, false)));
    assert_eq!(no_pkce[0], ("error".into(), "invalid_request".into()));
    endpoint.auto_deny();
    let denied = redirected(&get(&authorize_url(&endpoint, redirect_uri, true)));
    assert_eq!(denied[0], ("error".into(), "access_denied".into()));
    let not_loopback = get(&authorize_url(&endpoint, "https://example.com/", true));
    assert_eq!(
        not_loopback.status, 400,
        "never redirected to a foreign host"
    );
}

#[test]
fn browse_follows_the_approval_redirect_to_the_loopback_listener() {
    let endpoint = TokenEndpoint::start(Settings::default());
    let listener = TokenEndpoint::start(Settings::default());
    endpoint.auto_approve("alice@example.test");
    let redirect_uri = format!("http://127.0.0.1:{}/device", listener.port());
    let (status, page) = browse(&authorize_url(&endpoint, &redirect_uri, true));
    assert_eq!(status, 200);
    assert!(page.contains("Enter the code"), "{page}");
    assert_eq!(
        listener.requests()[0].endpoint,
        Endpoint::Other("/device".into())
    );
}
