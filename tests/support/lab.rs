//! The servers of the OAuth2/TLS lab that `scripts/services.sh` starts
//! beside the base Dovecot and smtp-sink: a Dovecot and a Postfix
//! submission service presenting a self-signed `openssl req -x509`
//! certificate, and a Dovecot that demands a client certificate.

use std::path::PathBuf;
use std::sync::OnceLock;

use super::real::{env_num, env_var};

const HINT: &str = "run scripts/test.sh (its services.sh starts the OAuth2/TLS lab)";

#[derive(Debug)]
pub struct LabEnv {
    /// Plain POP3 with STLS, certificate `selfsigned_cert`.
    pub oauth_pop3_port: u16,
    /// POP3S, certificate `selfsigned_cert`.
    pub oauth_pop3s_port: u16,
    /// CA:TRUE, SAN localhost and 127.0.0.1; any user logs in with "pw".
    pub selfsigned_cert: PathBuf,
    /// Postfix submission with STARTTLS and `selfsigned_cert`; SASL PLAIN,
    /// any user, password "pw".
    pub submission_port: u16,
    pub submission_dump_dir: PathBuf,
    /// POP3S that demands a client certificate; server certificate from
    /// the test CA.
    pub clientcert_pop3s_port: u16,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// The password every lab login takes.
pub const PASSWORD: &str = "pw";

fn var(name: &str) -> String {
    env_var(name, HINT)
}

fn port(name: &str) -> u16 {
    env_num(name, HINT)
}

pub fn lab() -> &'static LabEnv {
    static LAB: OnceLock<LabEnv> = OnceLock::new();
    LAB.get_or_init(|| LabEnv {
        oauth_pop3_port: port("POPFERRY_TEST_OAUTH_POP3_PORT"),
        oauth_pop3s_port: port("POPFERRY_TEST_OAUTH_POP3S_PORT"),
        selfsigned_cert: var("POPFERRY_TEST_SELFSIGNED_CERT").into(),
        submission_port: port("POPFERRY_TEST_SUBMISSION_PORT"),
        submission_dump_dir: var("POPFERRY_TEST_SUBMISSION_DUMP_DIR").into(),
        clientcert_pop3s_port: port("POPFERRY_TEST_CLIENTCERT_POP3S_PORT"),
        client_cert: var("POPFERRY_TEST_CLIENT_CERT").into(),
        client_key: var("POPFERRY_TEST_CLIENT_KEY").into(),
    })
}
