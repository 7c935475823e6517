//! Which certificates popferry accepts, against the real Dovecot's POP3S
//! port: its certificate is signed by the test CA, which is not in the
//! system trust store, so without `ca_file` it is refused, unless
//! `SSL_CERT_FILE` names the test CA, as a company CA installed on the
//! machine would be found.
//!
//! A refused certificate must be a clear error that names the server, the
//! reason and the fingerprint an administrator could pin; a pinned
//! fingerprint must be enough on its own; a wrong pin must never connect.
#![cfg(feature = "real-servers")]

mod support;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use popferry::tls::Fingerprint;
use support::mail::messages_of_size;
use support::popferry::{run_popferry_with, RunOutput};
use support::real::env;
use support::scenario::Scenario;

/// The fingerprint of the certificate Dovecot presents, from the PEM file
/// `scripts/services.sh` generated beside the test CA.
fn dovecot_fingerprint() -> Fingerprint {
    let pem = env().ca_file.with_file_name("server.pem");
    let cert = CertificateDer::from_pem_file(&pem)
        .unwrap_or_else(|err| panic!("{}: {err}", pem.display()));
    Fingerprint::of(&cert)
}

/// The run failed, said why in terms an administrator can act on, and
/// touched nothing.
fn assert_refused(s: &Scenario, out: &RunOutput, needles: &[&str]) {
    assert_eq!(out.code, Some(1), "{out}");
    let text = out.text();
    let peer = format!("127.0.0.1:{}", env().pop3s_port);
    for needle in std::iter::once(peer.as_str()).chain(needles.iter().copied()) {
        assert!(text.contains(needle), "output lacks {needle:?}:\n{out}");
    }
    assert_eq!(s.mailbox.count(), 2, "nothing may be fetched:\n{out}");
    assert!(s.dumps().is_empty(), "nothing may be relayed:\n{out}");
}

#[test]
fn unknown_ca_is_refused_naming_server_reason_and_fingerprint() {
    let mut s = Scenario::new("tls-unknown", |tag| messages_of_size(tag, 2, 1_000));
    s.account().ca_file = None;
    let out = s.config.fetch();
    let presented = dovecot_fingerprint().to_string();
    let words = "the certificate of 127.0.0.1 was issued by CN=popferry test CA, which is not \
                 trusted (it is not in the system trust store)";
    assert_refused(&s, &out, &[words, &presented, "Fix: set ca_file"]);
    assert!(!out.text().contains("UnknownIssuer"), "{out}");
}

#[test]
fn private_ca_named_by_ssl_cert_file_is_trusted_without_ca_file() {
    let mut s = Scenario::new("tls-ssl-cert-file", |tag| messages_of_size(tag, 2, 1_000));
    s.account().ca_file = None;
    let vars = [
        ("SSL_CERT_FILE", Some(env().ca_file.as_path())),
        ("SSL_CERT_DIR", None),
    ];
    let out = run_popferry_with(&s.config.write(), &["fetch"], &vars);
    assert_eq!(out.code, Some(0), "{out}");
    s.assert_each_delivered_once();
}

#[test]
fn pinned_fingerprint_is_trusted_without_any_ca() {
    let mut s = Scenario::new("tls-pinned", |tag| messages_of_size(tag, 2, 1_000));
    s.account().ca_file = None;
    s.account().tls_fingerprint = Some(format!("sha256:{}", dovecot_fingerprint()));
    let out = s.config.fetch();
    assert_eq!(out.code, Some(0), "{out}");
    s.assert_each_delivered_once();
    assert_eq!(
        s.mailbox
            .wait_for_count(0, std::time::Duration::from_secs(5)),
        0
    );
}

#[test]
fn wrong_pin_is_refused_even_though_the_ca_would_vouch_for_the_server() {
    let mut s = Scenario::new("tls-wrong-pin", |tag| messages_of_size(tag, 2, 1_000));
    // The test CA is what `ca_file` would name; with a pin it plays no part.
    s.account().ca_file = None;
    let wrong = Fingerprint::of(b"some other certificate");
    s.account().tls_fingerprint = Some(wrong.to_string());
    let out = s.config.fetch();
    let presented = dovecot_fingerprint().to_string();
    let wrong = wrong.to_string();
    assert_refused(
        &s,
        &out,
        &["does not match tls_fingerprint", &presented, &wrong],
    );
}
