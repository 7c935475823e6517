//! SCRAM-SHA-256 and CRAM-MD5 logins checked by real software: the
//! `popferry` binary against the test Dovecot of `scripts/services.sh`,
//! which offers `plain login cram-md5 scram-sha-256`. A named mechanism
//! that worked proves the exchange (popferry sends nothing else); `auto`
//! is checked in Dovecot's own log of the method each login used.
#![cfg(feature = "real-servers")]

mod support;

use std::fs;
use std::time::{Duration, Instant};

use support::mail::mixed_messages;
use support::popferry::{RunOutput, TlsMode};
use support::real::env;
use support::scenario::Scenario;

fn assert_fetched(s: &Scenario, out: &RunOutput, what: &str) {
    assert_eq!(out.code, Some(0), "{what}: fetch failed\n{out}");
    s.assert_each_delivered_once();
    assert_eq!(s.mailbox.count(), 0, "{what}: mailbox not emptied\n{out}");
}

#[test]
fn scram_sha_256_and_cram_md5_log_in_over_tls_and_in_the_clear() {
    for auth in ["scram-sha-256", "cram-md5"] {
        for tls in [TlsMode::Implicit, TlsMode::None] {
            let mut s = Scenario::new(&format!("sasl-{auth}"), |tag| mixed_messages(tag, 2));
            let account = s.account();
            account.auth = Some(auth.to_owned());
            if tls == TlsMode::None {
                account.tls = TlsMode::None;
                account.port = env().pop3_port;
                account.ca_file = None;
            }
            let out = s.config.fetch();
            assert_fetched(&s, &out, &format!("{auth} {tls:?}"));
        }
    }
}

#[test]
fn a_wrong_password_is_refused_by_scram_and_cram_md5_with_the_servers_words() {
    for (auth, mechanism) in [("scram-sha-256", "SCRAM-SHA-256"), ("cram-md5", "CRAM-MD5")] {
        let mut s = Scenario::new("sasl-wrong", |tag| mixed_messages(tag, 1));
        let account = s.account();
        account.auth = Some(auth.to_owned());
        account.password = "not-the-password".to_owned();
        let out = s.config.fetch();
        assert_eq!(out.code, Some(1), "{auth}: a refused login fails\n{out}");
        let text = out.text();
        assert!(
            text.contains(&format!("refused AUTH {mechanism}")),
            "{text}"
        );
        assert!(text.contains("[AUTH]"), "{text}");
        assert!(!text.contains("not-the-password"), "{text}");
        assert_eq!(s.mailbox.count(), 1, "nothing deleted");
        assert!(s.dumps().is_empty(), "nothing delivered");
    }
}

/// Dovecot's `Login: user=<U>, method=M` line for `user`, waited for: the
/// log is written by another process.
fn login_method(user: &str) -> String {
    let log = std::path::Path::new(&std::env::var("POPFERRY_TEST_DIR").expect("env"))
        .join("log/dovecot-info.log");
    let needle = format!("Login: user=<{user}>, method=");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find(|line| line.contains(&needle)) {
            let after = &line[line.find(&needle).expect("found") + needle.len()..];
            return after.split(',').next().unwrap_or_default().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no login of {user} in {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn auto_logs_in_with_scram_sha_256_where_dovecot_offers_it() {
    let s = Scenario::new("sasl-auto", |tag| mixed_messages(tag, 1));
    let out = s.config.fetch();
    assert_fetched(&s, &out, "auto");
    assert_eq!(login_method(&s.mailbox.user), "SCRAM-SHA-256");
}

/// The relay side: the real Postfix submission server, whose SASL is the
/// OAuth lab's Dovecot (any user, password "pw"), takes SCRAM-SHA-256 and
/// CRAM-MD5 logins and relays what they send.
#[test]
fn scram_sha_256_and_cram_md5_log_in_to_the_real_postfix_relay() {
    let lab = &env().oauth;
    for auth in ["scram-sha-256", "cram-md5"] {
        let mut s = Scenario::new("sasl-relay", |tag| mixed_messages(tag, 2));
        s.config.smtp_table = Some(format!(
            "host = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nca_file = {:?}\n\
             username = \"relay-user\"\npassword = \"pw\"\nauth = \"{auth}\"\ntimeout = \"30s\"",
            lab.submission_port,
            lab.selfsigned_cert.display().to_string(),
        ));
        let out = s.config.fetch();
        assert_eq!(out.code, Some(0), "{auth}\n{out}");
        // Postfix passes the messages on after it has answered popferry.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut dumped = support::real::dumps_in(&lab.submission_dump_dir, &s.rcpt);
        while dumped.len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            dumped = support::real::dumps_in(&lab.submission_dump_dir, &s.rcpt);
        }
        assert_eq!(
            dumped.len(),
            2,
            "{auth}: both relayed through Postfix\n{out}"
        );
        assert_eq!(s.mailbox.count(), 0, "{auth}\n{out}");
    }
}
