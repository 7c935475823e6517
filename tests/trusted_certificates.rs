//! Certificates popferry must accept, through the binary: the server's own
//! `openssl req -x509` certificate (CA:TRUE) given as `ca_file`, for a new
//! user's `check --connect` and for `fetch`; a private CA reached only
//! through `SSL_CERT_FILE`; a client certificate for a server that demands
//! one. And `check` says which anchors each connection uses.

mod support;
mod tls_peer;

use tls_peer::{acceptor, config, plain_relay, popferry, write, Ca, Mailbox};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_self_signed_certificate_as_ca_file_passes_check_connect_and_fetch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leaf = tls_peer::openssl_self_signed(dir.path());
    let ca_file = write(dir.path(), "server.pem", &leaf.pem);
    let mailbox = Mailbox::start(acceptor(&leaf, None), 3).await;
    for host in ["localhost", "127.0.0.1"] {
        let extra = format!("ca_file = {:?}", ca_file.display().to_string());
        let relay = plain_relay(mailbox.relay.port());
        let path = config(dir.path(), host, mailbox.pop3.port(), &relay, &extra);
        let check = popferry(&path, &["check", "--connect"], &[]).await;
        assert_eq!(check.code, Some(0), "{check}");
        let anchors = format!("trusts ca_file {} (1 certificate)", ca_file.display());
        assert!(check.stdout.contains(&anchors), "{check}");
        assert!(check.stdout.contains("alice: logged in to"), "{check}");
    }
    let extra = format!("ca_file = {:?}", ca_file.display().to_string());
    let relay = plain_relay(mailbox.relay.port());
    let path = config(dir.path(), "localhost", mailbox.pop3.port(), &relay, &extra);
    let fetch = popferry(&path, &["fetch"], &[]).await;
    assert_eq!(fetch.code, Some(0), "{fetch}");
    assert_eq!(mailbox.accepted.count(), 3, "{fetch}");
    assert_eq!(mailbox.pop3.count(), 0, "{fetch}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_ca_in_ssl_cert_file_is_trusted_without_ca_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("popferry company CA");
    let bundle = write(dir.path(), "company-bundle.pem", &ca.pem());
    let mailbox = Mailbox::start(acceptor(&ca.issue(&["localhost"]), None), 2).await;
    let relay = plain_relay(mailbox.relay.port());
    let path = config(dir.path(), "localhost", mailbox.pop3.port(), &relay, "");
    let vars = [
        ("SSL_CERT_FILE", Some(bundle.as_path())),
        ("SSL_CERT_DIR", None),
    ];
    let check = popferry(&path, &["check"], &vars).await;
    let anchors = format!(
        "trusts system trust store: SSL_CERT_FILE={} (1 certificate)",
        bundle.display()
    );
    assert!(check.stdout.contains(&anchors), "{check}");
    let fetch = popferry(&path, &["fetch"], &vars).await;
    assert_eq!(fetch.code, Some(0), "{fetch}");
    assert_eq!(mailbox.accepted.count(), 2, "{fetch}");

    // The same server is unknown to a store without that CA.
    let other = write(dir.path(), "other.pem", &Ca::new("someone else").pem());
    let vars = [
        ("SSL_CERT_FILE", Some(other.as_path())),
        ("SSL_CERT_DIR", None),
    ];
    let refused = popferry(&path, &["check", "--connect"], &vars).await;
    assert_eq!(refused.code, Some(1), "{refused}");
    let words = "was issued by CN=popferry company CA, which is not trusted \
                 (it is not in the system trust store)";
    assert!(refused.stdout.contains(words), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_pinned_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leaf = tls_peer::Leaf::self_signed(&["localhost"]);
    let mailbox = Mailbox::start(acceptor(&leaf, None), 0).await;
    let extra = format!("tls_fingerprint = \"{}\"", leaf.fingerprint());
    let relay = plain_relay(mailbox.relay.port());
    let path = config(dir.path(), "localhost", mailbox.pop3.port(), &relay, &extra);
    let check = popferry(&path, &["check", "--connect"], &[]).await;
    assert_eq!(check.code, Some(0), "{check}");
    let pinned = format!("implicit TLS, trusts pinned SHA-256 {}", leaf.fingerprint());
    assert!(check.stdout.contains(&pinned), "{check}");
    assert!(check.stdout.contains("relay 127.0.0.1:"), "{check}");
    assert!(check.stdout.contains("no TLS"), "{check}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_demanding_a_client_certificate_gets_the_configured_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server_ca = Ca::new("popferry server CA");
    let client_ca = Ca::new("popferry client CA");
    let client = client_ca.issue(&["popferry-client"]);
    let cert = write(dir.path(), "client.pem", &client.pem);
    let key = write(dir.path(), "client.key", &client.key_pem);
    let ca_file = write(dir.path(), "ca.pem", &server_ca.pem());
    let server = acceptor(&server_ca.issue(&["localhost"]), Some(&client_ca));
    let mailbox = Mailbox::start(server, 2).await;
    let relay = plain_relay(mailbox.relay.port());
    let ca = format!("ca_file = {:?}", ca_file.display().to_string());

    let path = config(dir.path(), "localhost", mailbox.pop3.port(), &relay, &ca);
    let without = popferry(&path, &["fetch"], &[]).await;
    assert_eq!(without.code, Some(1), "{without}");
    assert!(
        without
            .stdout
            .contains("the server requires a client certificate: set client_cert"),
        "{without}"
    );
    assert!(!without.text().contains("CertificateRequired"), "{without}");
    assert_eq!(mailbox.pop3.count(), 2, "{without}");

    let extra = format!(
        "{ca}\nclient_cert = {:?}\nclient_key = {:?}",
        cert.display().to_string(),
        key.display().to_string()
    );
    let path = config(dir.path(), "localhost", mailbox.pop3.port(), &relay, &extra);
    let check = popferry(&path, &["check"], &[]).await;
    let names = format!("client certificate {}", cert.display());
    assert!(check.stdout.contains(&names), "{check}");
    let with = popferry(&path, &["fetch"], &[]).await;
    assert_eq!(with.code, Some(0), "{with}");
    assert_eq!(mailbox.accepted.count(), 2, "{with}");
}
