//! POP3 AUTH as it crosses the wire (RFC 5034): which lines popferry sends
//! for each SASL mechanism, that the OAuth mechanisms always wait for the
//! server's `+`, that a failure challenge is answered and its status kept,
//! that a forged SCRAM signature is refused, and that a server which never
//! finishes the exchange cannot hold the login.
//!
//! The servers are scripted peers (`tests/hostile_peer`) that record every
//! line they receive.

mod hostile_peer;

use std::time::Duration;

use hostile_peer::sasl::{
    b64, forging_scram_challenge, refused_xoauth2_lines, sasl_cause, xoauth2_failure_status,
};
use hostile_peer::{greeting, Peer, Reply};
use popferry::config::Config;
use popferry::pop3::{Client, Endpoint, Limits, Pop3Error};
use popferry::sasl::{Credentials, Exchange, Mechanism, Refusal, SaslError};
use popferry::session::Session;

const LIMIT: Duration = Duration::from_secs(10);

async fn connect(peer: &Peer, timeout: Duration) -> Client {
    let endpoint = Endpoint {
        host: "127.0.0.1".into(),
        port: peer.port(),
        implicit_tls: None,
        timeout,
        limits: Limits::default(),
    };
    Client::connect(&endpoint).await.expect("connect")
}

/// One AUTH exchange with `secret` against `peer`, bounded by [`LIMIT`].
async fn authenticate(peer: &Peer, mechanism: Mechanism, secret: &str) -> Result<(), Pop3Error> {
    let mut client = connect(peer, Duration::from_secs(2)).await;
    let credentials = Credentials {
        username: "alice@example.org",
        secret,
        host: "127.0.0.1",
        port: peer.port(),
    };
    let exchange = Exchange::new(mechanism, &credentials).expect("exchange");
    tokio::time::timeout(LIMIT, client.authenticate(exchange))
        .await
        .expect("the exchange ends")
}

#[tokio::test]
async fn xoauth2_waits_for_the_continuation_and_answers_the_failure_challenge_empty() {
    let status = xoauth2_failure_status();
    let peer = Peer::start(greeting(), move |line| match line {
        "AUTH XOAUTH2" => Reply::text("+ \r\n"),
        "" => Reply::text("-ERR [AUTH] Authentication failed.\r\n"),
        _ => Reply::text(&format!("+ {status}\r\n")),
    })
    .await;
    let token = "t".repeat(2500);
    let err = authenticate(&peer, Mechanism::XOAuth2, &token)
        .await
        .unwrap_err();

    assert_eq!(peer.commands(), refused_xoauth2_lines(&token));
    let Pop3Error::AuthRefused {
        mechanism,
        reply,
        oauth_status,
        ..
    } = &err
    else {
        panic!("not an AUTH refusal: {err:?}");
    };
    assert_eq!(*mechanism, Mechanism::XOAuth2);
    assert_eq!(reply.code.as_deref(), Some("AUTH"));
    assert_eq!(oauth_status.as_deref(), Some("401"));
    assert_eq!(err.auth_refusal(), Some(Refusal::Rejected));
    assert!(err.is_auth_failure());
    let shown = err.to_string();
    assert!(
        shown.contains("[AUTH]") && shown.contains("\"401\""),
        "{shown}"
    );
    assert!(
        shown.contains("username is the mailbox address") && shown.contains("POP is enabled"),
        "says what to check: {shown}"
    );
    assert!(!shown.contains(&token[..20]), "{shown}");
}

#[tokio::test]
async fn oauthbearer_answers_the_failure_challenge_with_0x01_and_sys_temp_is_temporary() {
    let status = b64(br#"{"status":"invalid_token"}"#);
    let peer = Peer::start(greeting(), move |line| match line {
        "AUTH OAUTHBEARER" => Reply::text("+\r\n"),
        "AQ==" => Reply::text("-ERR [SYS/TEMP] Try again later.\r\n"),
        _ => Reply::text(&format!("+ {status}\r\n")),
    })
    .await;
    let err = authenticate(&peer, Mechanism::OAuthBearer, "tok")
        .await
        .unwrap_err();

    let port = peer.port();
    let message = format!(
        "n,a=alice@example.org,\x01host=127.0.0.1\x01port={port}\x01auth=Bearer tok\x01\x01"
    );
    assert_eq!(
        peer.commands(),
        [
            "AUTH OAUTHBEARER".to_owned(),
            b64(message.as_bytes()),
            "AQ==".to_owned()
        ]
    );
    assert_eq!(err.auth_refusal(), Some(Refusal::Temporary), "{err:?}");
    assert!(
        !err.is_auth_failure(),
        "a temporary refusal backs off normally"
    );
    assert!(err.to_string().contains("invalid_token"), "{err}");
    assert!(
        !err.to_string().contains("mailbox address"),
        "a temporary refusal says nothing is wrong with the settings: {err}"
    );
}

#[tokio::test]
async fn cram_md5_answers_the_servers_challenge() {
    let challenge = b64(b"<1896.697170952@postoffice.reston.mci.net>");
    let peer = Peer::start(greeting(), move |line| match line {
        "AUTH CRAM-MD5" => Reply::text(&format!("+ {challenge}\r\n")),
        _ => Reply::ok(),
    })
    .await;
    let mut client = connect(&peer, Duration::from_secs(2)).await;
    let credentials = Credentials {
        username: "tim",
        secret: "tanstaaftanstaaf",
        host: "127.0.0.1",
        port: peer.port(),
    };
    let exchange = Exchange::new(Mechanism::CramMd5, &credentials).expect("exchange");
    client.authenticate(exchange).await.expect("logged in");
    assert_eq!(
        peer.commands(),
        [
            "AUTH CRAM-MD5",
            "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
        ]
    );
}

/// A SCRAM server that knows the nonce but not the password: its
/// server-final cannot carry the right signature.
fn forging_scram_server(line: &str) -> Reply {
    match forging_scram_challenge(line) {
        Some(challenge) => Reply::text(&format!("+ {challenge}\r\n")),
        None => Reply::text("-ERR [AUTH] Authentication cancelled\r\n"),
    }
}

#[tokio::test]
async fn a_forged_scram_server_signature_is_refused_and_the_exchange_cancelled() {
    let peer = Peer::start(greeting(), forging_scram_server).await;
    let err = authenticate(&peer, Mechanism::ScramSha256, "pencil")
        .await
        .unwrap_err();
    assert_eq!(sasl_cause(&err), &SaslError::ServerSignature);
    assert!(err.to_string().contains("signature"), "{err}");
    let commands = peer.commands();
    assert_eq!(commands.len(), 3, "{commands:?}");
    assert!(
        commands[0].starts_with("AUTH SCRAM-SHA-256 "),
        "inline client-first"
    );
    assert!(
        commands[1].starts_with("Yz1iaXdzLHI9"),
        "client-final: {}",
        commands[1]
    );
    assert_eq!(commands[2], "*");
}

#[tokio::test]
async fn a_server_that_challenges_for_ever_is_cancelled_and_one_that_goes_silent_times_out() {
    let endless = Peer::start(greeting(), |_| Reply::text("+ \r\n")).await;
    let err = authenticate(&endless, Mechanism::Plain, "secret")
        .await
        .unwrap_err();
    assert!(
        matches!(sasl_cause(&err), SaslError::UnexpectedChallenge { .. }),
        "{err:?}"
    );
    assert_eq!(endless.commands().last().map(String::as_str), Some("*"));
    assert_eq!(endless.commands().len(), 2, "{:?}", endless.commands());

    let silent = Peer::start(greeting(), |_| Reply::Silence).await;
    let err = authenticate(&silent, Mechanism::Login, "secret")
        .await
        .unwrap_err();
    assert!(matches!(err, Pop3Error::Timeout { .. }), "{err:?}");
}

fn account_config(port: u16, auth: &str) -> Config {
    let text = format!(
        "[smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n\n\
         [[account]]\nname = \"alice\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
         username = \"alice\"\npassword = \"secret\"\nauth = \"{auth}\"\n\
         deliver_to = [\"alice@example.org\"]\ntimeout = \"5s\"\n"
    );
    Config::from_toml(&text, std::path::Path::new("/nonexistent/popferry.toml")).expect("config")
}

fn server_offering(sasl: &'static str) -> impl Fn(&str) -> Reply + Send + Sync + 'static {
    move |line| {
        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "CAPA" => Reply::text(&format!("+OK\r\nUSER\r\nUIDL\r\n{sasl}\r\n.\r\n")),
            "AUTH" => Reply::text("+ PDEyMz4=\r\n"),
            _ => Reply::ok(),
        }
    }
}

#[tokio::test]
async fn auto_picks_cram_md5_over_plain_without_tls_and_user_when_nothing_fits() {
    let peer = Peer::start(greeting(), server_offering("SASL PLAIN LOGIN CRAM-MD5")).await;
    let config = account_config(peer.port(), "auto");
    let session = tokio::time::timeout(LIMIT, Session::open(&config.accounts[0])).await;
    session.expect("no hang").expect("logged in");
    assert_eq!(peer.received("AUTH"), ["AUTH CRAM-MD5"]);
    assert!(peer.received("USER").is_empty());

    let peer = Peer::start(greeting(), server_offering("SASL LOGIN GSSAPI")).await;
    let config = account_config(peer.port(), "auto");
    let session = tokio::time::timeout(LIMIT, Session::open(&config.accounts[0])).await;
    session.expect("no hang").expect("logged in");
    assert!(peer.received("AUTH").is_empty(), "{:?}", peer.commands());
    assert_eq!(peer.received("USER"), ["USER alice"]);
}

#[tokio::test]
async fn a_mechanism_the_server_does_not_offer_is_an_error_naming_what_it_offers() {
    let peer = Peer::start(greeting(), server_offering("SASL PLAIN LOGIN")).await;
    let config = account_config(peer.port(), "scram-sha-256");
    let open = tokio::time::timeout(LIMIT, Session::open(&config.accounts[0])).await;
    let err = open.expect("no hang").expect_err("not offered").to_string();
    assert!(
        err.contains("SCRAM-SHA-256") && err.contains("PLAIN LOGIN"),
        "{err}"
    );
    assert!(err.contains(&peer.addr()), "{err}");
    assert!(peer.received("AUTH").is_empty() && peer.received("USER").is_empty());
}
