//! A relay that cannot be set up (its certificate refused, or AUTH
//! refused) fails the account's poll like a POP3 server would: `fetch`
//! exits 1 and says why, every message stays on the POP3 server, and the
//! relay sees one connection, not one per message.

mod support;
mod tls_peer;

use tls_peer::{acceptor, config, popferry, write, Ca, Leaf, Mailbox, SetupRelay};

const MESSAGES: usize = 5;

/// A POP3S mailbox with [`MESSAGES`] messages, whose CA is in `ca.pem`.
async fn mailbox(dir: &std::path::Path) -> (Mailbox, String) {
    let ca = Ca::new("popferry test CA");
    let ca_file = write(dir, "ca.pem", &ca.pem());
    let mailbox = Mailbox::start(acceptor(&ca.issue(&["localhost"]), None), MESSAGES).await;
    (
        mailbox,
        format!("ca_file = {:?}", ca_file.display().to_string()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_with_a_refused_certificate_fails_the_poll_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mailbox, ca) = mailbox(dir.path()).await;
    let relay_cert = Leaf::self_signed(&["127.0.0.1"]);
    let relay = SetupRelay::start(Some(acceptor(&relay_cert, None))).await;
    let smtp = format!(
        "host = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\ntimeout = \"5s\"",
        relay.port
    );
    let path = config(dir.path(), "localhost", mailbox.pop3.port(), &smtp, &ca);
    let out = popferry(&path, &["fetch"], &[]).await;
    assert_eq!(out.code, Some(1), "{out}");
    let words = format!(
        "TLS handshake with SMTP relay 127.0.0.1:{} failed: the certificate of 127.0.0.1 is \
         self-signed and not in ca_file (SHA-256 fingerprint {})",
        relay.port,
        relay_cert.fingerprint()
    );
    assert!(out.stdout.contains(&words), "{out}");
    assert!(
        out.stdout
            .contains("undelivered messages stay on the POP3 server"),
        "{out}"
    );
    assert_eq!(mailbox.pop3.count(), MESSAGES, "{out}");
    assert_eq!(
        relay.connections(),
        1,
        "one failed setup, not one per message\n{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_refusing_the_login_fails_the_poll_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mailbox, ca) = mailbox(dir.path()).await;
    let relay = SetupRelay::start(None).await;
    let smtp = format!(
        "host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout = \"5s\"\n\
         username = \"relay-user\"\npassword = \"relay-secret\"",
        relay.port
    );
    let path = config(dir.path(), "localhost", mailbox.pop3.port(), &smtp, &ca);
    let out = popferry(&path, &["fetch"], &[]).await;
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stdout.contains("535 5.7.8 authentication failed"),
        "{out}"
    );
    assert!(!out.text().contains("relay-secret"), "{out}");
    assert_eq!(mailbox.pop3.count(), MESSAGES, "{out}");
    assert_eq!(
        relay.connections(),
        1,
        "one failed setup, not one per message\n{out}"
    );
}
