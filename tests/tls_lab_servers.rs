//! TLS against real servers of the lab: Dovecot and Postfix presenting a
//! self-signed certificate made with `openssl req -x509` (CA:TRUE), given
//! as `ca_file`, over implicit TLS, STLS and the relay's STARTTLS; and a
//! Dovecot that demands a client certificate.
#![cfg(feature = "real-servers")]

mod support;

use std::fs;
use std::time::{Duration, Instant};

use support::lab::{lab, PASSWORD};
use support::mail::messages_of_size;
use support::popferry::{AccountConfig, RunOutput, TestConfig, TlsMode};
use support::real::unique;
use support::scenario::Scenario;

/// A new user's configuration for a lab POP3 server: nothing but the
/// server, the login and the certificate to trust.
fn new_user(host: &str, port: u16, tls: TlsMode) -> TestConfig {
    let user = unique("tls-lab");
    let mut account = AccountConfig::plain("lab", port, &user, PASSWORD);
    account.host = host.to_owned();
    account.tls = tls;
    account.ca_file = Some(lab().selfsigned_cert.clone());
    account.timeout = "30s".to_owned();
    TestConfig::new(account)
}

fn assert_logged_in(out: &RunOutput) {
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("lab: logged in to"), "{out}");
}

#[test]
fn new_users_check_connect_trusts_the_openssl_certificate_given_as_ca_file() {
    let lab = lab();
    for host in ["localhost", "127.0.0.1"] {
        let implicit = new_user(host, lab.oauth_pop3s_port, TlsMode::Implicit);
        assert_logged_in(&implicit.run(&["check", "--connect"]));
        let stls = new_user(host, lab.oauth_pop3_port, TlsMode::StartTls);
        assert_logged_in(&stls.run(&["check", "--connect"]));
    }
}

#[test]
fn the_openssl_certificate_without_ca_file_is_refused_as_self_signed() {
    let mut config = new_user("localhost", lab().oauth_pop3s_port, TlsMode::Implicit);
    config.account().ca_file = None;
    let out = config.run(&["check", "--connect"]);
    assert_eq!(out.code, Some(1), "{out}");
    let words = "the certificate of localhost is self-signed and not in ca_file";
    assert!(out.stdout.contains(words), "{out}");
    assert!(!out.text().contains("CaUsedAsEndEntity"), "{out}");
}

/// The relay's `[smtp]` table for the lab's submission service.
fn submission(ca_file: bool) -> String {
    let lab = lab();
    let mut table = format!(
        "host = \"localhost\"\nport = {}\ntls = \"starttls\"\ntimeout = \"30s\"\n\
         username = \"relay-user\"\npassword = \"{PASSWORD}\"",
        lab.submission_port
    );
    if ca_file {
        table += &format!(
            "\nca_file = {:?}",
            lab.selfsigned_cert.display().to_string()
        );
    }
    table
}

/// Files in the submission dump folder that hold `needle`.
fn dumped_with(needle: &str) -> usize {
    let dir = &lab().submission_dump_dir;
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| fs::read(entry.ok()?.path()).ok())
        .filter(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .count()
}

#[test]
fn relay_over_starttls_with_the_openssl_certificate_as_ca_file_gets_the_mail() {
    let mut s = Scenario::new("tls-submission", |tag| messages_of_size(tag, 2, 1_500));
    s.config.smtp_table = Some(submission(false));
    let refused = s.config.fetch();
    assert_eq!(refused.code, Some(1), "{refused}");
    let words = "failed: the certificate of localhost is self-signed and not in ca_file";
    assert!(refused.stdout.contains(words), "{refused}");
    assert_eq!(
        s.mailbox.count(),
        2,
        "nothing may leave the mailbox\n{refused}"
    );

    s.config.smtp_table = Some(submission(true));
    let out = s.config.fetch();
    assert_eq!(out.code, Some(0), "{out}");
    let deadline = Instant::now() + Duration::from_secs(20);
    for message in &s.messages {
        while dumped_with(&message.message_id) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            dumped_with(&message.message_id),
            1,
            "{}\n{out}",
            message.message_id
        );
    }
    assert_eq!(
        s.mailbox.wait_for_count(0, Duration::from_secs(5)),
        0,
        "{out}"
    );
}

#[test]
fn server_demanding_a_client_certificate_logs_in_only_with_one() {
    let lab = lab();
    let mut config = new_user("localhost", lab.clientcert_pop3s_port, TlsMode::Implicit);
    config.account().ca_file = Some(support::real::env().ca_file.clone());
    let without = config.run(&["check", "--connect"]);
    assert_eq!(without.code, Some(1), "{without}");
    // Dovecot completes the handshake and refuses the login in its words:
    // "-ERR [AUTH] Client didn't present valid SSL certificate".
    let said = without.stdout.to_lowercase();
    assert!(
        said.contains("client") && said.contains("certificate"),
        "{without}"
    );
    for jargon in ["CertificateRequired", "HandshakeFailure", "AlertReceived"] {
        assert!(!without.text().contains(jargon), "{without}");
    }

    config.account().client_cert = Some(lab.client_cert.clone());
    config.account().client_key = Some(lab.client_key.clone());
    assert_logged_in(&config.run(&["check", "--connect"]));
}
