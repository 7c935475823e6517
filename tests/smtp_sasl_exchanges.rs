//! SMTP AUTH as it crosses the wire (RFC 4954): the initial response on the
//! AUTH line only when it fits 512 octets and never for the OAuth
//! mechanisms, 334 challenges answered, the failure challenge of a refused
//! token answered and its status kept, the reply code and enhanced code
//! kept for the caller, and `auto` choosing what the relay offers.
//!
//! The relays are scripted peers (`tests/hostile_peer`) that record every
//! line they receive.

mod hostile_peer;

use std::time::Duration;

use hostile_peer::sasl::{
    b64, forging_scram_challenge, refused_xoauth2_lines, sasl_cause, unb64, xoauth2_failure_status,
};
use hostile_peer::{Peer, Reply};
use popferry::config::{Credential, PasswordSource, Secret, TlsMode};
use popferry::sasl::{Mechanism, Refusal, SaslError};
use popferry::smtp::{Connection, Login, Protocol, Settings, SmtpError};

/// A relay that offers `auth` in EHLO and answers AUTH lines with `auth_reply`.
async fn relay(
    auth: &'static str,
    auth_reply: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> Peer {
    Peer::start(Reply::text("220 scripted\r\n"), move |line| {
        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => Reply::text(&format!(
                "250-scripted\r\n250-AUTH {auth}\r\n250 PIPELINING\r\n"
            )),
            "QUIT" => Reply::text("221 bye\r\n"),
            _ => auth_reply(line),
        }
    })
    .await
}

async fn open(peer: &Peer, auth: Option<Mechanism>, secret: &str) -> Result<Connection, SmtpError> {
    let settings = Settings {
        host: "127.0.0.1".into(),
        port: peer.port(),
        socket: None,
        protocol: Protocol::Smtp,
        tls: TlsMode::None,
        tls_config: None,
        helo: "client.example".into(),
        login: Some(Login {
            username: "alice@example.org".into(),
            credential: Credential::Password(PasswordSource::Inline(Secret::new(secret.into()))),
            sign_in: "alice --smtp".into(),
        }),
        auth,
        timeout: Duration::from_secs(2),
    };
    tokio::time::timeout(Duration::from_secs(10), Connection::open(&settings))
        .await
        .expect("the login ends")
}

/// The lines after EHLO.
fn auth_lines(peer: &Peer) -> Vec<String> {
    peer.commands().into_iter().skip(1).collect()
}

#[tokio::test]
async fn xoauth2_is_two_step_and_keeps_the_code_enhanced_code_and_oauth_status() {
    let status = xoauth2_failure_status();
    let peer = relay("PLAIN XOAUTH2", move |line| match line {
        "AUTH XOAUTH2" => Reply::text("334 \r\n"),
        "" => Reply::text("535 5.7.8 Authentication failed\r\n"),
        _ => Reply::text(&format!("334 {status}\r\n")),
    })
    .await;
    let token = "t".repeat(2500);
    let err = open(&peer, Some(Mechanism::XOAuth2), &token)
        .await
        .unwrap_err();

    assert_eq!(auth_lines(&peer), refused_xoauth2_lines(&token));
    let SmtpError::AuthRefused {
        mechanism,
        reply,
        oauth_status,
        ..
    } = &err
    else {
        panic!("not an AUTH refusal: {err:?}");
    };
    assert_eq!(*mechanism, Mechanism::XOAuth2);
    assert_eq!((reply.code, reply.enhanced_code()), (535, Some("5.7.8")));
    assert_eq!(oauth_status.as_deref(), Some("401"));
    assert_eq!(err.auth_refusal(), Some(Refusal::Rejected));
    assert!(
        !err.is_permanent(),
        "a refused login does not reject the message"
    );
    assert!(!err.to_string().contains(&token[..20]), "{err}");
    assert!(
        err.to_string()
            .contains("SMTP AUTH is enabled for the mailbox"),
        "says what to check: {err}"
    );
}

#[tokio::test]
async fn oauthbearer_failure_challenge_gets_0x01_and_454_is_temporary() {
    let peer = relay("OAUTHBEARER", |line| match line {
        "AUTH OAUTHBEARER" => Reply::text("334 \r\n"),
        "AQ==" => Reply::text("454 4.7.0 Temporary authentication failure\r\n"),
        _ => Reply::text(&format!(
            "334 {}\r\n",
            b64(br#"{"status":"invalid_token"}"#)
        )),
    })
    .await;
    let err = open(&peer, Some(Mechanism::OAuthBearer), "tok")
        .await
        .unwrap_err();
    assert_eq!(auth_lines(&peer).last().map(String::as_str), Some("AQ=="));
    assert_eq!(err.auth_refusal(), Some(Refusal::Temporary), "{err:?}");
    assert!(err.to_string().contains("invalid_token"), "{err}");
}

#[tokio::test]
async fn plain_rides_on_the_auth_line_until_it_would_pass_512_octets() {
    let peer = relay("PLAIN", |line| match line.split(' ').count() {
        3 => Reply::text("235 2.7.0 ok\r\n"),
        2 => Reply::text("334 \r\n"),
        _ => Reply::text("235 2.7.0 ok\r\n"),
    })
    .await;
    open(&peer, Some(Mechanism::Plain), "secret")
        .await
        .expect("inline");
    assert_eq!(
        auth_lines(&peer),
        [format!(
            "AUTH PLAIN {}",
            b64(b"\0alice@example.org\0secret")
        )]
    );

    let long = "p".repeat(400);
    let peer = relay("PLAIN", |line| match line {
        "AUTH PLAIN" => Reply::text("334 \r\n"),
        _ => Reply::text("235 2.7.0 ok\r\n"),
    })
    .await;
    open(&peer, Some(Mechanism::Plain), &long)
        .await
        .expect("two-step");
    let plain = format!("\0alice@example.org\0{long}");
    assert_eq!(
        auth_lines(&peer),
        ["AUTH PLAIN".to_owned(), b64(plain.as_bytes())]
    );
}

#[tokio::test]
async fn auto_takes_cram_md5_on_a_clear_link_and_login_when_it_is_all_there_is() {
    let challenge = b64(b"<1896.697170952@postoffice.reston.mci.net>");
    let peer = relay("PLAIN LOGIN CRAM-MD5", move |line| match line {
        "AUTH CRAM-MD5" => Reply::text(&format!("334 {challenge}\r\n")),
        _ => Reply::text("235 2.7.0 ok\r\n"),
    })
    .await;
    let settings_secret = "tanstaaftanstaaf";
    open(&peer, None, settings_secret).await.expect("CRAM-MD5");
    let lines = auth_lines(&peer);
    assert_eq!(lines[0], "AUTH CRAM-MD5");
    let response = unb64(&lines[1]);
    assert!(response.starts_with("alice@example.org "), "{response}");
    assert_eq!(response.len(), "alice@example.org ".len() + 32);

    let peer = relay("LOGIN", |line| match line {
        "AUTH LOGIN" => Reply::text("334 VXNlcm5hbWU6\r\n"),
        "YWxpY2VAZXhhbXBsZS5vcmc=" => Reply::text("334 UGFzc3dvcmQ6\r\n"),
        _ => Reply::text("235 2.7.0 ok\r\n"),
    })
    .await;
    open(&peer, None, "secret").await.expect("LOGIN");
    assert_eq!(
        auth_lines(&peer),
        [
            "AUTH LOGIN".to_owned(),
            b64(b"alice@example.org"),
            b64(b"secret")
        ]
    );
}

#[tokio::test]
async fn a_mechanism_the_relay_does_not_offer_is_an_error_naming_what_it_offers() {
    let peer = relay("PLAIN LOGIN", |_| Reply::text("235 2.7.0 ok\r\n")).await;
    let err = open(&peer, Some(Mechanism::ScramSha256), "secret")
        .await
        .unwrap_err();
    assert!(
        matches!(sasl_cause(&err), SaslError::NotOffered { .. }),
        "{err:?}"
    );
    let shown = err.to_string();
    assert!(
        shown.contains("SCRAM-SHA-256") && shown.contains("PLAIN LOGIN"),
        "{shown}"
    );
    assert!(
        auth_lines(&peer).is_empty(),
        "nothing was sent: {:?}",
        peer.commands()
    );
}

#[tokio::test]
async fn a_forged_scram_signature_is_cancelled_and_a_relay_that_never_ends_cannot_hold_the_login() {
    let peer = relay("SCRAM-SHA-256", |line| {
        match forging_scram_challenge(line) {
            Some(challenge) => Reply::text(&format!("334 {challenge}\r\n")),
            None => Reply::text("501 5.7.0 cancelled\r\n"),
        }
    })
    .await;
    let err = open(&peer, None, "pencil").await.unwrap_err();
    assert_eq!(sasl_cause(&err), &SaslError::ServerSignature);
    assert_eq!(auth_lines(&peer).len(), 3);
    assert_eq!(auth_lines(&peer)[2], "*");

    let endless = relay("LOGIN", |_| Reply::text("334 \r\n")).await;
    let err = open(&endless, None, "secret").await.unwrap_err();
    assert!(
        matches!(sasl_cause(&err), SaslError::UnexpectedChallenge { .. }),
        "{err:?}"
    );
    assert_eq!(auth_lines(&endless).len(), 4, "{:?}", endless.commands());

    let silent = relay("PLAIN", |_| Reply::Silence).await;
    let err = open(&silent, None, "secret").await.unwrap_err();
    assert!(matches!(err, SmtpError::Timeout { .. }), "{err:?}");
}
