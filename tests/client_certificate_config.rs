//! `client_cert` and `client_key` are read and checked when the
//! configuration loads: each mistake is an error naming the line, the key
//! and the file, and the key never shows in `Debug`.

mod support;
mod tls_peer;

use std::path::Path;

use popferry::config::Config;
use tls_peer::{write, Ca};

fn load(dir: &Path, account_keys: &str, smtp_keys: &str) -> Result<Config, String> {
    let text = format!(
        "[smtp]\nhost = \"127.0.0.1\"\ntls = \"starttls\"\n{smtp_keys}\n\n[[account]]\n\
         name = \"alice\"\nhost = \"pop.example.com\"\nusername = \"alice\"\n\
         password = \"p\"\ndeliver_to = [\"alice@example.org\"]\n{account_keys}\n"
    );
    Config::from_toml(&text, &dir.join("popferry.toml")).map_err(|e| e.to_string())
}

fn pair(cert: &str, key: &str) -> String {
    format!("client_cert = {cert:?}\nclient_key = {key:?}")
}

#[test]
fn a_matching_pair_loads_for_the_account_and_the_relay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leaf = Ca::new("client CA").issue(&["client"]);
    write(dir.path(), "client.pem", &leaf.pem);
    write(dir.path(), "client.key", &leaf.key_pem);
    let keys = pair("client.pem", "client.key");
    let config = load(dir.path(), &keys, &keys).expect("loads");
    let account = &config.accounts[0];
    let identity = account
        .pop3
        .client_identity
        .as_ref()
        .expect("POP3 identity");
    assert_eq!(identity.cert_path, dir.path().join("client.pem"));
    assert!(account.smtp.client_identity.is_some());
    let shown = format!("{account:?}");
    let key_body = leaf.key_pem.lines().nth(1).expect("key body");
    assert!(!shown.contains(key_body), "key material in Debug: {shown}");
    assert!(shown.contains("client.key"), "{shown}");
}

#[test]
fn each_mistake_names_the_line_the_key_and_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("client CA");
    let (one, two) = (ca.issue(&["one"]), ca.issue(&["two"]));
    write(dir.path(), "one.pem", &one.pem);
    write(dir.path(), "one.key", &one.key_pem);
    write(dir.path(), "two.key", &two.key_pem);
    write(dir.path(), "garbage.pem", "not a certificate\n");
    let missing = dir.path().join("missing.pem");
    let cases = [
        (
            pair("missing.pem", "one.key"),
            format!(
                "key `client_cert`: cannot read client_cert {}: No such file",
                missing.display()
            ),
        ),
        (
            pair("garbage.pem", "one.key"),
            "it holds no PEM item of the expected kind".to_owned(),
        ),
        (
            pair("one.pem", "one.pem"),
            "key `client_key`: cannot read client_key".to_owned(),
        ),
        (
            pair("one.pem", "two.key"),
            format!(
                "key `client_key`: client_key {} does not belong to client_cert {}",
                dir.path().join("two.key").display(),
                dir.path().join("one.pem").display()
            ),
        ),
        (
            "client_cert = \"one.pem\"".to_owned(),
            "key `client_cert`: needs client_key".to_owned(),
        ),
        (
            "client_key = \"one.key\"".to_owned(),
            "key `client_key`: needs client_cert".to_owned(),
        ),
    ];
    for (keys, expected) in cases {
        let error = load(dir.path(), &keys, "").expect_err(&keys);
        assert!(error.contains("popferry.toml:"), "{error}");
        assert!(error.contains("account \"alice\""), "{error}");
        assert!(
            error.contains(&expected),
            "{keys}: expected {expected:?} in {error}"
        );
    }
    let relay = load(dir.path(), "", &pair("one.pem", "two.key")).expect_err("relay pair");
    assert!(relay.contains("[smtp]: key `client_key`"), "{relay}");
    let plain = format!("tls = \"none\"\n{}", pair("one.pem", "one.key"));
    let error = load(dir.path(), &plain, "").expect_err("tls none");
    assert!(
        error.contains("has no effect with tls = \"none\""),
        "{error}"
    );
}
