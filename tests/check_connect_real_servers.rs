//! `popferry check --connect` against the real Dovecot (implicit TLS and
//! STLS) and the private Postfix submission server (STARTTLS + AUTH):
//! per server and relay it prints what mpop's `--serverinfo` shows, and it
//! exits 0 only when every login holds.
#![cfg(feature = "real-servers")]

mod support;

use std::net::TcpListener;
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use support::popferry::{AccountConfig, RunOutput, TestConfig, TlsMode};
use support::real::{env, Mailbox};

/// Subject, issuer and fingerprint of the certificate in `pem`, worked out
/// here rather than by popferry, for the output to be compared with.
fn facts(pem: &Path) -> (String, String, String) {
    let der = CertificateDer::from_pem_file(pem).expect("certificate PEM");
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("X.509");
    let fingerprint = popferry::tls::Fingerprint::of(&der).to_string();
    (
        cert.subject().to_string(),
        cert.issuer().to_string(),
        fingerprint,
    )
}

/// The submission relay with its login; `port` in place of the real one.
fn relay(port: u16, password: &str) -> String {
    format!(
        "host = \"127.0.0.1\"\nport = {port}\ntls = \"starttls\"\nca_file = {:?}\n\
         username = \"relay-user\"\npassword = \"{password}\"\ntimeout = \"10s\"",
        env().oauth.selfsigned_cert.display().to_string()
    )
}

/// Two accounts on the same Dovecot, one over implicit TLS and one over
/// STLS, both relaying through `smtp_table`.
fn config(smtp_table: String) -> TestConfig {
    let implicit = Mailbox::create("check-implicit");
    let stls = Mailbox::create("check-stls");
    let mut config = TestConfig::new(AccountConfig::new("implicit", &implicit, "a@example.org"));
    let mut second = AccountConfig::new("stls", &stls, "b@example.org");
    second.port = env().pop3_port;
    second.tls = TlsMode::StartTls;
    config.accounts.push(second);
    config.smtp_table = Some(smtp_table);
    config
}

/// The detail lines under the first line of `out` that contains `header`.
fn details<'a>(out: &'a RunOutput, who: &str, header: &str) -> Vec<&'a str> {
    let prefix = format!("{who}:   ");
    (out.stdout.lines())
        .skip_while(|line| !line.contains(header))
        .skip(1)
        .map_while(|line| line.strip_prefix(&prefix))
        .collect()
}

fn assert_has(lines: &[&str], wanted: &str, out: &RunOutput) {
    assert!(
        lines.iter().any(|line| line.starts_with(wanted)),
        "{wanted:?} missing\n{out}"
    );
}

/// The TLS and certificate lines mpop's `--serverinfo` would show.
fn assert_tls(lines: &[&str], pem: &Path, out: &RunOutput) {
    let (subject, issuer, fingerprint) = facts(pem);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("TLS: TLSv1.3, TLS13_") || l.starts_with("TLS: TLSv1.2, TLS_")),
        "TLS version and cipher suite\n{out}"
    );
    assert_has(lines, &format!("certificate subject: {subject}"), out);
    assert_has(lines, &format!("certificate issuer: {issuer}"), out);
    assert_has(lines, "certificate validity: not before 20", out);
    assert_has(
        lines,
        &format!("certificate SHA-256 fingerprint: {fingerprint}"),
        out,
    );
}

#[test]
fn check_connect_shows_tls_certificate_capabilities_and_mechanisms_of_each_server_and_relay() {
    let lab = &env().oauth;
    let config = config(relay(lab.submission_port, &env().password));
    let out = config.run(&["check", "--connect"]);
    assert_eq!(out.code, Some(0), "{out}");
    let dovecot_pem = env().ca_file.with_file_name("server.pem");
    for (who, port, mode) in [
        ("implicit", env().pop3s_port, "implicit TLS"),
        ("stls", env().pop3_port, "STARTTLS"),
    ] {
        let header = format!("{who}: logged in to 127.0.0.1:{port} ({mode})");
        let lines = details(&out, who, &header);
        assert_tls(&lines, &dovecot_pem, &out);
        assert_has(&lines, "capabilities: ", &out);
        let capabilities = lines.iter().find(|l| l.starts_with("capabilities: "));
        assert!(capabilities.is_some_and(|l| l.contains("UIDL")), "{out}");
        assert_has(
            &lines,
            "SASL mechanisms: PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256",
            &out,
        );
        assert_has(&lines, "popferry logs in with: SASL SCRAM-SHA-256", &out);
    }
    let relay = format!(
        "implicit: relay 127.0.0.1:{}: connected (STARTTLS), logged in as relay-user",
        lab.submission_port
    );
    let lines = details(&out, "implicit", &relay);
    assert_tls(&lines, &lab.selfsigned_cert, &out);
    let capabilities = lines.iter().find(|l| l.starts_with("capabilities: "));
    assert!(
        capabilities.is_some_and(|l| l.contains("PIPELINING") && l.contains("AUTH ")),
        "{out}"
    );
    let mechanisms = lines
        .iter()
        .find_map(|l| l.strip_prefix("SASL mechanisms: "));
    let chosen = lines
        .iter()
        .find_map(|l| l.strip_prefix("popferry logs in with: SASL "));
    let (Some(mechanisms), Some(chosen)) = (mechanisms, chosen) else {
        panic!("relay mechanisms and choice\n{out}");
    };
    assert!(mechanisms.split(' ').any(|m| m == chosen), "{out}");
    assert_eq!(
        out.stdout.matches(": relay 127.0.0.1:").count(),
        3,
        "one offline line per account, one connection for the shared relay\n{out}"
    );
    assert!(
        out.stdout
            .lines()
            .last()
            .is_some_and(|l| l.contains(": ok, 2 account(s)")),
        "{out}"
    );
}

#[test]
fn a_wrong_relay_password_fails_check_connect_naming_the_relay() {
    let port = env().oauth.submission_port;
    let config = config(relay(port, "not-the-password"));
    let out = config.run(&["check", "--connect"]);
    assert_eq!(out.code, Some(1), "{out}");
    let failed = format!("implicit: relay 127.0.0.1:{port}: FAILED: ");
    assert!(out.stdout.contains(&failed), "{out}");
    assert!(out.stdout.contains("implicit: logged in to"), "{out}");
    assert!(!out.stdout.contains("not-the-password"), "{out}");
}

#[test]
fn a_relay_port_nobody_listens_on_fails_check_connect() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let out = config(relay(port, "pw")).run(&["check", "--connect"]);
    assert_eq!(out.code, Some(1), "{out}");
    let failed = format!("implicit: relay 127.0.0.1:{port}: FAILED: ");
    assert!(out.stdout.contains(&failed), "{out}");
    assert!(!out.stdout.contains(": ok,"), "{out}");
}
