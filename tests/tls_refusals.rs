//! Every refused server certificate is told in plain words, with its
//! SHA-256 fingerprint and the fix, by the `popferry` binary; nothing of a
//! rustls or webpki error name reaches the output; the poll fails and
//! touches no mail. The certificates are made for each test with rcgen and
//! served by in-process TLS servers (`tests/tls_peer`).

mod support;
mod tls_peer;

use rcgen::CertificateParams;
use support::popferry::RunOutput;
use time::macros::datetime;
use tls_peer::{acceptor, config, plain_relay, popferry, write, Ca, Leaf, Mailbox};

/// Words of rustls' and webpki's own error names, which mean nothing to
/// a mail administrator.
const JARGON: &[&str] = &[
    "CaUsedAsEndEntity",
    "UnknownIssuer",
    "NotValidForName",
    "Other(",
    "OtherError",
    "invalid peer certificate",
    "Expired",
];

/// Serves `leaf` at `host` (`localhost` unless said), with `ca_file` set
/// to `ca_pem`, runs `fetch`, and checks that it failed as a refusal
/// should: saying `words` once, with the fingerprint and a fix, without
/// jargon, and with both messages still on the server.
async fn refused(leaf: &Leaf, ca_pem: &str, host: &str, words: &[&str]) -> RunOutput {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = write(dir.path(), "ca.pem", ca_pem);
    let mailbox = Mailbox::start(acceptor(leaf, None), 2).await;
    let extra = format!("ca_file = {:?}", ca_file.display().to_string());
    let relay = plain_relay(mailbox.relay.port());
    let path = config(dir.path(), host, mailbox.pop3.port(), &relay, &extra);
    let out = popferry(&path, &["fetch"], &[]).await;
    assert_eq!(out.code, Some(1), "{out}");
    for needle in words.iter().copied().chain(["Fix:"]) {
        assert_eq!(
            out.stdout.matches(needle).count(),
            1,
            "once: {needle:?}\n{out}"
        );
    }
    assert!(
        out.stdout.contains(&leaf.fingerprint()),
        "fingerprint:\n{out}"
    );
    for jargon in JARGON {
        assert!(!out.text().contains(jargon), "jargon {jargon:?} in\n{out}");
    }
    assert_eq!(mailbox.pop3.count(), 2, "nothing may be fetched\n{out}");
    assert_eq!(mailbox.accepted.count(), 0, "nothing may be relayed\n{out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificate_says_when_it_expired() {
    let ca = Ca::new("popferry test CA");
    let leaf = ca.issue_with(&["localhost"], |p: &mut CertificateParams| {
        p.not_before = datetime!(2019-01-01 00:00 UTC);
        p.not_after = datetime!(2020-03-01 12:00 UTC);
    });
    let words = ["the certificate of localhost expired on 2020-03-01 12:00:00 UTC"];
    let out = refused(&leaf, &ca.pem(), "localhost", &words).await;
    assert!(
        out.stdout.contains("renew the server's certificate"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_not_yet_valid_says_from_when() {
    let ca = Ca::new("popferry test CA");
    let leaf = ca.issue_with(&["localhost"], |p: &mut CertificateParams| {
        p.not_before = datetime!(2090-01-01 00:00 UTC);
        p.not_after = datetime!(2091-01-01 00:00 UTC);
    });
    let words = ["the certificate of localhost is not valid before 2090-01-01 00:00:00 UTC"];
    let out = refused(&leaf, &ca.pem(), "localhost", &words).await;
    assert!(out.stdout.contains("clock"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_for_another_name_says_which_names_it_holds() {
    let ca = Ca::new("popferry test CA");
    let leaf = ca.issue(&["mail.example.net"]);
    let words = ["it names mail.example.net, not localhost"];
    let out = refused(&leaf, &ca.pem(), "localhost", &words).await;
    assert!(
        out.stdout
            .contains("set host to a name the certificate holds"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_from_an_untrusted_ca_names_the_issuer() {
    let trusted = Ca::new("popferry trusted CA");
    let other = Ca::new("popferry other CA");
    let leaf = other.issue(&["localhost"]);
    let words = ["was issued by CN=popferry other CA, which is not trusted"];
    let out = refused(&leaf, &trusted.pem(), "localhost", &words).await;
    assert!(out.stdout.contains("it is not in ca_file"), "{out}");
    assert!(
        out.stdout
            .contains("set ca_file to the certificate of the CA"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_certificate_not_in_ca_file_says_so_and_how_to_pin_it() {
    let ca = Ca::new("popferry test CA");
    let leaf = Leaf::self_signed(&["localhost"]);
    let words = ["the certificate of localhost is self-signed and not in ca_file"];
    let out = refused(&leaf, &ca.pem(), "localhost", &words).await;
    let pin = format!("tls_fingerprint = \"sha256:{}\"", leaf.fingerprint());
    assert!(out.stdout.contains(&pin), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_ca_true_certificate_not_in_ca_file_is_self_signed_not_jargon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leaf = tls_peer::openssl_self_signed(dir.path());
    let ca = Ca::new("popferry test CA");
    let words = ["the certificate of localhost is self-signed and not in ca_file"];
    refused(&leaf, &ca.pem(), "localhost", &words).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_listed_in_ca_file_still_has_its_dates_checked() {
    let leaf = Leaf::self_signed_with(&["localhost"], |p: &mut CertificateParams| {
        p.not_before = datetime!(2019-01-01 00:00 UTC);
        p.not_after = datetime!(2020-03-01 12:00 UTC);
    });
    let words = ["the certificate of localhost expired on 2020-03-01 12:00:00 UTC"];
    refused(&leaf, &leaf.pem, "localhost", &words).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_listed_in_ca_file_still_has_its_name_checked() {
    let leaf = Leaf::self_signed(&["mail.example.net"]);
    let words = ["it names mail.example.net, not localhost"];
    refused(&leaf, &leaf.pem, "localhost", &words).await;
}
