//! The tests' token endpoint serves the refresh grant as the OAuth RFCs
//! and the providers do, and fails on cue, proven with a plain HTTP client,
//! so a popferry test that fails against it points at popferry.

mod token_endpoint;

use std::sync::Arc;
use std::time::{Duration, Instant};

use token_endpoint::client::{agent, answer, get, post, refresh};
use token_endpoint::{Endpoint, Rotation, SecretVia, Settings, TokenEndpoint};

fn with_rotation(rotation: Rotation) -> TokenEndpoint {
    TokenEndpoint::start(Settings {
        rotation,
        ..Settings::default()
    })
}

#[test]
fn refresh_grant_without_rotation_answers_a_bearer_token_and_no_refresh_token() {
    let endpoint = TokenEndpoint::start(Settings {
        lifetime: Duration::from_secs(120),
        rotation: Rotation::None,
        ..Settings::default()
    });
    let rt = endpoint.issue_refresh_token("alice@example.test");
    for _ in 0..2 {
        let reply = refresh(&endpoint, &rt);
        assert_eq!(reply.status, 200, "{}", reply.json);
        assert_eq!(reply.str("token_type"), "Bearer");
        assert_eq!(reply.json["expires_in"], 120);
        assert!(reply.str("access_token").starts_with("at_"));
        assert!(reply.json.get("refresh_token").is_none());
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    assert_eq!(endpoint.refresh_grants(), 2);
    let logged = &endpoint.requests()[0];
    assert_eq!(logged.endpoint, Endpoint::Token);
    assert_eq!(logged.grant_type.as_deref(), Some("refresh_token"));
    assert_eq!(logged.client_id.as_deref(), Some("popferry-test"));
    assert_eq!(logged.refresh_token.as_deref(), Some(rt.as_str()));
    assert_eq!(logged.secret, SecretVia::None);
    assert_eq!(logged.status, 200);
}

#[test]
fn rotate_hands_out_a_new_refresh_token_and_the_old_one_stays_valid() {
    let endpoint = with_rotation(Rotation::Rotate);
    let old = endpoint.issue_refresh_token("alice@example.test");
    let new = refresh(&endpoint, &old).str("refresh_token").to_owned();
    assert_ne!(new, old);
    assert_eq!(refresh(&endpoint, &old).status, 200);
    assert_eq!(refresh(&endpoint, &new).status, 200);
}

#[test]
fn strict_rotation_makes_the_superseded_refresh_token_invalid_grant() {
    let endpoint = with_rotation(Rotation::Strict);
    let old = endpoint.issue_refresh_token("alice@example.test");
    let new = refresh(&endpoint, &old).str("refresh_token").to_owned();
    let reused = refresh(&endpoint, &old);
    assert_eq!((reused.status, reused.error()), (400, "invalid_grant"));
    assert_eq!(refresh(&endpoint, &new).status, 200);
    let presented: Vec<_> = endpoint
        .requests()
        .into_iter()
        .map(|r| r.refresh_token.unwrap())
        .collect();
    assert_eq!(presented, [old.clone(), old, new]);
    assert_eq!(endpoint.refresh_grants(), 2);
}

#[test]
fn revoked_and_unknown_refresh_tokens_are_invalid_grant() {
    let endpoint = with_rotation(Rotation::None);
    let alice = endpoint.issue_refresh_token("alice@example.test");
    let bob = endpoint.issue_refresh_token("bob@example.test");
    endpoint.revoke(&alice);
    let revoked = refresh(&endpoint, &alice);
    assert_eq!((revoked.status, revoked.error()), (400, "invalid_grant"));
    assert!(revoked.json["error_description"].is_string());
    assert_eq!(refresh(&endpoint, &bob).status, 200);
    endpoint.revoke_all();
    assert_eq!(refresh(&endpoint, &bob).error(), "invalid_grant");
    assert_eq!(
        refresh(&endpoint, "rt_never_issued").error(),
        "invalid_grant"
    );
    assert_eq!(endpoint.refresh_grants(), 1);
}

#[test]
fn a_confidential_client_authenticates_once_by_basic_or_by_form() {
    let endpoint = TokenEndpoint::start(Settings {
        client_id: "lab".into(),
        client_secret: Some("s3cret".into()),
        ..Settings::default()
    });
    let rt = endpoint.issue_refresh_token("alice@example.test");
    let url = endpoint.token_url();
    let grant = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];
    let with = |extra: &[(&'static str, &'static str)]| [&grant[..], extra].concat();

    let wrong = post(
        &url,
        None,
        &with(&[("client_id", "lab"), ("client_secret", "nope")]),
    );
    assert_eq!((wrong.status, wrong.error()), (401, "invalid_client"));
    assert!(wrong
        .header("www-authenticate")
        .is_some_and(|v| v.starts_with("Basic")));
    assert_eq!(post(&url, None, &with(&[("client_id", "lab")])).status, 401);
    assert_eq!(post(&url, Some(("lab", "nope")), &grant).status, 401);
    assert_eq!(post(&url, Some(("lab", "s3cret")), &grant).status, 200);
    let form = with(&[("client_id", "lab"), ("client_secret", "s3cret")]);
    assert_eq!(post(&url, None, &form).status, 200);
    let both = post(
        &url,
        Some(("lab", "s3cret")),
        &with(&[("client_secret", "s3cret")]),
    );
    assert_eq!((both.status, both.error()), (400, "invalid_request"));

    let via: Vec<_> = endpoint.requests().iter().map(|r| r.secret).collect();
    let (basic, form) = (SecretVia::Basic, SecretVia::Form);
    assert_eq!(
        via,
        [form, SecretVia::None, basic, basic, form, SecretVia::Both]
    );
    assert_eq!(endpoint.requests()[2].client_id.as_deref(), Some("lab"));
    assert_eq!(endpoint.refresh_grants(), 2);
}

#[test]
fn a_public_client_sending_a_secret_or_another_client_is_invalid_client() {
    let endpoint = with_rotation(Rotation::None);
    let rt = endpoint.issue_refresh_token("alice@example.test");
    let url = endpoint.token_url();
    let grant = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];
    assert_eq!(
        post(&url, Some(("popferry-test", "x")), &grant).error(),
        "invalid_client"
    );
    assert_eq!(
        post(&url, Some(("someone-else", "")), &grant).error(),
        "invalid_client"
    );
    assert_eq!(post(&url, Some(("popferry-test", "")), &grant).status, 200);
}

#[test]
fn malformed_token_requests_get_the_rfc_6749_errors() {
    let endpoint = TokenEndpoint::start(Settings::default());
    let url = endpoint.token_url();
    let id = ("client_id", "popferry-test");
    let missing = post(&url, None, &[id]);
    assert_eq!((missing.status, missing.error()), (400, "invalid_request"));
    let unknown = post(&url, None, &[id, ("grant_type", "password")]);
    assert_eq!(
        (unknown.status, unknown.error()),
        (400, "unsupported_grant_type")
    );
    let twice = [
        id,
        ("grant_type", "refresh_token"),
        ("scope", "a"),
        ("scope", "b"),
    ];
    assert_eq!(post(&url, None, &twice).error(), "invalid_request");
    assert_eq!(get(&url).status, 405);
    let json = agent(Duration::from_secs(10))
        .post(&url)
        .header("content-type", "application/json")
        .send(r#"{"grant_type":"refresh_token","client_id":"popferry-test"}"#);
    assert_eq!(answer(json).error(), "invalid_request");
}

#[test]
fn fail_next_answers_the_injected_status_then_serves_again_unchanged() {
    let endpoint = with_rotation(Rotation::Strict);
    let rt = endpoint.issue_refresh_token("alice@example.test");
    endpoint.fail_next(2, 503, r#"{"error":"temporarily_unavailable"}"#);
    for _ in 0..2 {
        let down = refresh(&endpoint, &rt);
        assert_eq!(
            (down.status, down.error()),
            (503, "temporarily_unavailable")
        );
    }
    endpoint.fail_next(1, 500, "<html><body>Internal Server Error</body></html>");
    let html = refresh(&endpoint, &rt);
    assert_eq!(html.status, 500);
    assert!(html
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    // Under strict rotation a served request would have spent `rt`.
    assert_eq!(refresh(&endpoint, &rt).status, 200);
    let statuses: Vec<_> = endpoint.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 500, 200]);
    assert_eq!(endpoint.refresh_grants(), 1);
}

#[test]
fn delay_next_answers_late_without_holding_up_other_requests() {
    let endpoint = with_rotation(Rotation::None);
    let rt = endpoint.issue_refresh_token("alice@example.test");
    endpoint.delay_next(1, Duration::from_secs(2));
    let started = Instant::now();
    let slow = std::thread::scope(|scope| {
        let slow = scope.spawn(|| refresh(&endpoint, &rt));
        while endpoint.requests().is_empty() {
            std::thread::sleep(Duration::from_millis(10));
        }
        let quick = refresh(&endpoint, &rt);
        assert_eq!(quick.status, 200);
        assert!(started.elapsed() < Duration::from_secs(2));
        slow.join().unwrap()
    });
    assert_eq!(slow.status, 200);
    assert!(started.elapsed() >= Duration::from_secs(2));

    endpoint.delay_next(1, Duration::from_secs(5));
    let impatient = agent(Duration::from_millis(300))
        .post(&endpoint.token_url())
        .send_form([
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ]);
    assert!(impatient.is_err(), "a client that gives up gets no answer");
}

#[test]
fn a_stopped_endpoint_refuses_connections_and_comes_back_with_its_grants() {
    let endpoint = with_rotation(Rotation::None);
    let rt = endpoint.issue_refresh_token("alice@example.test");
    assert_eq!(refresh(&endpoint, &rt).status, 200);
    endpoint.stop();
    let refused = std::net::TcpStream::connect(("127.0.0.1", endpoint.port()));
    assert_eq!(
        refused.map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    endpoint.resume();
    assert_eq!(refresh(&endpoint, &rt).status, 200);
    assert_eq!(endpoint.refresh_grants(), 2);
}

#[test]
fn the_minted_access_token_is_the_minters_and_long_enough() {
    let endpoint = TokenEndpoint::start(Settings {
        lifetime: Duration::from_secs(60),
        min_token_len: 2500,
        ..Settings::default()
    });
    let rt = endpoint.issue_refresh_token("alice@example.test");
    assert!(refresh(&endpoint, &rt).str("access_token").len() >= 2500);
    let signed = TokenEndpoint::start(Settings {
        mint: Arc::new(|claims| {
            format!(
                "{}|{}|{}",
                claims.sub,
                claims.lifetime.as_secs(),
                claims.scope
            )
        }),
        ..Settings::default()
    });
    let rt = signed.issue_refresh_token("bob@example.test");
    let scoped = post(
        &signed.token_url(),
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "popferry-test"),
            ("refresh_token", &rt),
            ("scope", "pop"),
        ],
    );
    assert_eq!(scoped.str("access_token"), "bob@example.test|3600|pop");
}

#[test]
fn two_endpoints_share_nothing() {
    let one = with_rotation(Rotation::None);
    let two = with_rotation(Rotation::None);
    assert_ne!(one.port(), two.port());
    let rt = one.issue_refresh_token("alice@example.test");
    assert_eq!(refresh(&two, &rt).error(), "invalid_grant");
    two.fail_next(5, 503, "{}");
    assert_eq!(refresh(&one, &rt).status, 200);
    assert_eq!((one.refresh_grants(), two.refresh_grants()), (1, 0));
    assert_eq!((one.requests().len(), two.requests().len()), (1, 1));
}
