//! The OAuth / TLS test servers of `scripts/services.sh` are what the
//! other tests rely on, checked with raw sockets and no popferry code: the
//! OAuth Dovecot takes a >2 KB XOAUTH2 token in two steps and answers an
//! expired one with a challenge, its certificate is a CA:TRUE self-signed
//! one that webpki refuses, the client-certificate server wants one, and
//! Postfix offers every SASL mechanism after STARTTLS, relays only after
//! AUTH, and keeps its 2048-byte command line.
#![cfg(feature = "real-servers")]

mod support;

use std::io::{self, Read, Write};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use rustls::ClientConfig;

use support::jwt::JwtSigner;
use support::mail::message;
use support::raw::{anchored_on, connect, pem_cert, pinned_on, roots_of, tls, Wire, TIMEOUT};
use support::real::{dumps_in, env, unique, Dump, Mailbox};

/// Over Postfix's line_length_limit, about a Microsoft token's size.
const LONG_TOKEN: usize = 2500;

/// Trusts the lab's self-signed certificate the only way rustls can: by
/// its bytes.
fn pinned_selfsigned() -> Arc<ClientConfig> {
    pinned_on(&env().oauth.selfsigned_cert)
}

fn xoauth2(user: &str, token: &str) -> String {
    STANDARD.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

fn oauthbearer(user: &str, token: &str) -> String {
    STANDARD.encode(format!("n,a={user},\x01auth=Bearer {token}\x01\x01"))
}

/// `AUTH MECH`, the empty `+ ` go-ahead, then `response`: the two-step
/// form Microsoft requires. Returns the server's answer to the response.
fn pop3_two_step<S: Read + Write>(wire: &mut Wire<S>, mech: &str, response: &str) -> String {
    wire.send(&format!("AUTH {mech}"));
    assert_eq!(wire.line(), "+ ", "AUTH {mech} go-ahead");
    wire.send(response);
    wire.line()
}

/// A mailbox on the OAuth Dovecot holding one message, and its user.
fn oauth_mailbox(prefix: &str) -> Mailbox {
    let mailbox = Mailbox::create_in(&env().oauth.mail_root, prefix);
    mailbox.add(&message(&mailbox.user, 0, 300));
    mailbox
}

#[test]
fn oauth_pop3_takes_a_long_xoauth2_token_in_two_steps() {
    let mailbox = oauth_mailbox("xoauth2");
    let token = JwtSigner::from_env().mint(&mailbox.user, 600, LONG_TOKEN);
    assert!(token.len() > LONG_TOKEN, "token of {} bytes", token.len());
    let mut wire = Wire::new(connect(env().oauth.pop3_port));
    assert!(wire.line().starts_with("+OK"));
    let answer = pop3_two_step(&mut wire, "XOAUTH2", &xoauth2(&mailbox.user, &token));
    assert!(answer.starts_with("+OK"), "XOAUTH2 login: {answer}");
    wire.send("STAT");
    assert!(
        wire.line().starts_with("+OK 1 "),
        "the mailbox's one message"
    );
}

#[test]
fn oauth_pop3_answers_an_expired_token_with_a_challenge_then_err() {
    let mailbox = oauth_mailbox("expired");
    let token = JwtSigner::from_env().mint(&mailbox.user, -60, LONG_TOKEN);
    let mut wire = Wire::new(connect(env().oauth.pop3_port));
    wire.line();
    let challenge = pop3_two_step(&mut wire, "XOAUTH2", &xoauth2(&mailbox.user, &token));
    let json = challenge
        .strip_prefix("+ ")
        .and_then(|b64| STANDARD.decode(b64).ok())
        .unwrap_or_else(|| panic!("expected a + <base64> challenge, got {challenge:?}"));
    let json = String::from_utf8_lossy(&json);
    assert!(json.contains(r#""status":"401""#), "challenge {json}");
    wire.send("");
    let answer = wire.line();
    assert!(
        answer.starts_with("-ERR [AUTH]"),
        "after the empty line: {answer}"
    );
}

#[test]
fn oauth_pop3s_takes_oauthbearer_over_the_selfsigned_certificate() {
    let mailbox = oauth_mailbox("bearer");
    let token = JwtSigner::from_env().mint(&mailbox.user, 600, 0);
    let stream = tls(connect(env().oauth.pop3s_port), pinned_selfsigned()).expect("TLS");
    let mut wire = Wire::new(stream);
    assert!(wire.line().starts_with("+OK"));
    let answer = pop3_two_step(
        &mut wire,
        "OAUTHBEARER",
        &oauthbearer(&mailbox.user, &token),
    );
    assert!(answer.starts_with("+OK"), "OAUTHBEARER login: {answer}");
}

#[test]
fn selfsigned_certificate_is_a_ca_that_webpki_refuses_as_an_anchor() {
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&env().oauth.selfsigned_cert)
        .output()
        .expect("run openssl");
    assert!(String::from_utf8_lossy(&text.stdout).contains("CA:TRUE"));
    // The same certificate behind STLS on the plain port.
    let mut wire = Wire::new(connect(env().oauth.pop3_port));
    wire.line();
    wire.send("STLS");
    assert!(wire.line().starts_with("+OK"));
    let err = tls(wire.into_inner(), anchored_on(&env().oauth.selfsigned_cert))
        .expect_err("webpki must refuse a CA:TRUE end entity");
    assert!(err.to_string().contains("CaUsedAsEndEntity"), "{err}");
}

#[test]
fn every_password_mechanism_is_offered_by_both_pop3_servers() {
    for (port, extra) in [
        (env().pop3_port, ""),
        (env().oauth.pop3_port, " XOAUTH2 OAUTHBEARER"),
    ] {
        let mut wire = Wire::new(connect(port));
        wire.line();
        wire.send("CAPA");
        let capa: Vec<String> = std::iter::from_fn(|| Some(wire.line()))
            .take_while(|line| line != ".")
            .collect();
        let want = format!("SASL PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256{extra}");
        assert!(capa.contains(&want), "port {port}: {capa:?}");
    }
}

fn clientcert_login(config: Arc<ClientConfig>) -> io::Result<String> {
    let mut wire = Wire::new(tls(connect(env().clientcert.pop3s_port), config)?);
    wire.try_line()?;
    wire.send("USER someone");
    wire.try_line()?;
    wire.send(&format!("PASS {}", env().password));
    wire.try_line()
}

/// Dovecot completes the handshake without a client certificate and then
/// refuses every login.
#[test]
fn clientcert_server_refuses_a_client_without_a_certificate() {
    let answer = clientcert_login(roots_of(&env().ca_file).with_no_client_auth().into())
        .expect("TLS with the test CA");
    assert_eq!(
        answer,
        "-ERR [AUTH] Client didn't present valid SSL certificate"
    );
}

#[test]
fn clientcert_server_accepts_the_client_certificate() {
    let lab = &env().clientcert;
    let key = PrivateKeyDer::from_pem_file(&lab.key)
        .unwrap_or_else(|err| panic!("{}: {err}", lab.key.display()));
    let config = roots_of(&env().ca_file)
        .with_client_auth_cert(vec![pem_cert(&lab.cert)], key)
        .expect("client certificate");
    let answer = clientcert_login(config.into()).expect("TLS and login");
    assert!(
        answer.starts_with("+OK"),
        "login with the certificate: {answer}"
    );
}

fn ehlo<S: Read + Write>(wire: &mut Wire<S>) -> Vec<String> {
    wire.send("EHLO lab-test.example.org");
    let reply = wire.reply();
    assert!(reply[0].starts_with("250"), "EHLO: {reply:?}");
    reply
}

fn auth_line(ehlo: &[String]) -> Option<&str> {
    ehlo.iter().find_map(|l| l.get(4..)?.strip_prefix("AUTH "))
}

#[test]
fn submission_offers_every_mechanism_after_starttls_and_relays_after_xoauth2() {
    let user = unique("submitter");
    let rcpt = format!("{}@example.org", unique("relayed"));
    let mut wire = Wire::new(connect(env().oauth.submission_port));
    assert!(wire.line().starts_with("220 "));
    let before = ehlo(&mut wire);
    assert!(before.iter().any(|l| l.ends_with("STARTTLS")), "{before:?}");
    assert_eq!(auth_line(&before), None, "no AUTH before TLS");
    wire.send("STARTTLS");
    assert!(wire.reply()[0].starts_with("220 "));
    let mut wire = Wire::new(tls(wire.into_inner(), pinned_selfsigned()).expect("TLS"));
    let after = ehlo(&mut wire);
    assert_eq!(
        auth_line(&after),
        Some("PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 XOAUTH2 OAUTHBEARER")
    );
    assert!(after.iter().any(|l| l.ends_with("PIPELINING")));

    let token = JwtSigner::from_env().mint(&user, 600, LONG_TOKEN);
    wire.send("AUTH XOAUTH2");
    assert_eq!(wire.reply(), ["334 "]);
    wire.send(&xoauth2(&user, &token));
    assert!(wire.reply()[0].starts_with("235 "), "two-step XOAUTH2");
    for (command, code) in [
        (format!("MAIL FROM:<{user}@example.org>"), "250"),
        (format!("RCPT TO:<{rcpt}>"), "250"),
        ("DATA".to_owned(), "354"),
        (
            format!("Subject: lab\r\n\r\nrelayed for {user}\r\n."),
            "250",
        ),
    ] {
        let reply = wire.reply_to(&command);
        assert!(reply[0].starts_with(code), "{command}: {reply:?}");
    }
    let dumps = wait_for_dumps(&rcpt);
    let text = String::from_utf8_lossy(&dumps[0].message);
    assert!(
        text.contains(&format!("(Authenticated sender: {user})")),
        "{text}"
    );
    assert!(text.contains(&format!("relayed for {user}")), "{text}");
}

/// Postfix relays to its sink after its own 250: wait for the dump.
fn wait_for_dumps(rcpt: &str) -> Vec<Dump> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let dumps = dumps_in(&env().oauth.submission_dump_dir, rcpt);
        if !dumps.is_empty() || Instant::now() > deadline {
            assert_eq!(dumps.len(), 1, "dumps for {rcpt}");
            return dumps;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn submissions_refuses_relaying_without_auth_a_bad_token_and_an_overlong_line() {
    let user = unique("refused");
    let stream = tls(connect(env().oauth.submissions_port), pinned_selfsigned()).expect("TLS");
    let mut wire = Wire::new(stream);
    assert!(wire.line().starts_with("220 "));
    assert!(auth_line(&ehlo(&mut wire)).is_some_and(|mechs| mechs.contains("XOAUTH2")));
    assert!(wire.reply_to("MAIL FROM:<a@example.org>")[0].starts_with("250"));
    let rcpt = wire.reply_to("RCPT TO:<b@example.org>");
    assert!(rcpt[0].starts_with("554 "), "relay without AUTH: {rcpt:?}");
    assert!(wire.reply_to("RSET")[0].starts_with("250"));

    let expired = JwtSigner::from_env().mint(&user, -60, 0);
    assert_eq!(wire.reply_to("AUTH XOAUTH2"), ["334 "]);
    let challenge = wire.reply_to(&xoauth2(&user, &expired));
    assert!(
        challenge[0].starts_with("334 ey"),
        "JSON challenge: {challenge:?}"
    );
    let answer = wire.reply_to("");
    assert!(
        answer[0].starts_with("535 "),
        "after the empty line: {answer:?}"
    );

    let long = JwtSigner::from_env().mint(&user, 600, LONG_TOKEN);
    let one_line = wire.reply_to(&format!("AUTH XOAUTH2 {}", xoauth2(&user, &long)));
    assert!(
        one_line[0].starts_with('5'),
        "a one-line AUTH over 2048 bytes must fail: {one_line:?}"
    );
}
