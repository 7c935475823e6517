//! One OAuth2 test's world: a token endpoint of its own whose access tokens
//! (HS256 JWTs) the real OAuth Dovecot and, through its SASL, the real
//! Postfix submission server accept; a mailbox on that Dovecot; and a
//! configuration whose account signs in with tokens from that endpoint.
//!
//! A test file using it declares `mod support; mod token_endpoint; mod
//! oauth_world;`. Each uses only part of this, hence the `dead_code`
//! allowance.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::jwt::JwtSigner;
use crate::support::mail::{messages_of_size, TestMessage};
use crate::support::popferry::{AccountConfig, TestConfig, TlsMode};
use crate::support::real::{dumps_in, env, Dump, Mailbox};
use crate::token_endpoint::{AccessClaims, Settings, TokenEndpoint};

/// Tokens longer than Postfix's 2048-byte line limit, like Microsoft's.
pub const BIG_TOKEN: usize = 2500;

#[derive(Debug)]
pub struct World {
    pub endpoint: TokenEndpoint,
    pub mailbox: Mailbox,
    pub rcpt: String,
    pub messages: Vec<TestMessage>,
    pub config: TestConfig,
    pub refresh_token_file: PathBuf,
    /// Every access token the endpoint issued.
    pub minted: Arc<Mutex<Vec<String>>>,
}

/// Settings whose access tokens the lab's Dovecot accepts for their `sub`;
/// every token made is also kept in `minted`.
pub fn signed(settings: Settings, minted: Arc<Mutex<Vec<String>>>) -> Settings {
    let signer = Arc::new(JwtSigner::from_env());
    Settings {
        mint: Arc::new(move |claims: &AccessClaims<'_>| {
            let token = signer.mint(claims.sub, claims.lifetime.as_secs() as i64, claims.min_len);
            minted.lock().unwrap().push(token.clone());
            token
        }),
        ..settings
    }
}

impl World {
    /// `count` small messages for a new user of the OAuth Dovecot, an
    /// account `name` (POP3S, the self-signed certificate as ca_file,
    /// `auth = mechanism`) holding a refresh token issued for that user,
    /// relaying to the accepting sink.
    pub fn new(name: &str, mechanism: &str, settings: Settings, count: usize) -> World {
        let lab = &env().oauth;
        let minted = Arc::default();
        let endpoint = TokenEndpoint::start(signed(settings, Arc::clone(&minted)));
        let mailbox = Mailbox::create_in(&lab.mail_root, name);
        let rcpt = format!("{}@example.org", mailbox.user);
        let messages = messages_of_size(&mailbox.user, count, 2000);
        mailbox.add_all(&messages);
        let mut account = AccountConfig::new(name, &mailbox, &rcpt);
        account.port = lab.pop3s_port;
        account.tls = TlsMode::Implicit;
        account.ca_file = Some(lab.selfsigned_cert.clone());
        account.password = String::new();
        account.auth = Some(mechanism.to_owned());
        let config = TestConfig::new(account);
        let refresh_token_file = config.dir.path().join(format!("{name}.refresh"));
        let mut world = World {
            endpoint,
            mailbox,
            rcpt,
            messages,
            config,
            refresh_token_file,
            minted,
        };
        world.sign_in_as(&world.mailbox.user.clone());
        world.config.account().extra = world.oauth2_table("account");
        world
    }

    /// Writes a refresh token for `sub` to the account's file, as a first
    /// sign-in would.
    pub fn sign_in_as(&self, sub: &str) {
        let token = self.endpoint.issue_refresh_token(sub);
        fs::write(&self.refresh_token_file, format!("{token}\n")).expect("write refresh token");
        fs::set_permissions(&self.refresh_token_file, fs::Permissions::from_mode(0o600))
            .expect("chmod refresh token");
    }

    /// An `oauth2` table under `[parent.oauth2]` for this world's endpoint
    /// and refresh-token file.
    pub fn oauth2_table(&self, parent: &str) -> String {
        format!(
            "\n[{parent}.oauth2]\ntoken_url = \"{}\"\nclient_id = \"popferry-test\"\n\
             refresh_token_file = \"{}\"\nscopes = [\"mail\"]\n\
             device_authorization_url = \"{}\"\nauthorization_url = \"{}\"\n",
            self.endpoint.token_url(),
            self.refresh_token_file.display(),
            self.endpoint.device_authorization_url(),
            self.endpoint.authorization_url(),
        )
    }

    /// Relay through the real Postfix submission server (STARTTLS, the
    /// self-signed certificate as ca_file), logging in as the mailbox's
    /// user with `mechanism` and this world's tokens.
    pub fn relay_through_postfix(&mut self, mechanism: &str) {
        let lab = &env().oauth;
        let table = format!(
            "host = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nca_file = \"{}\"\n\
             username = \"{}\"\nauth = \"{mechanism}\"\nenvelope_from = \"{}\"\ntimeout = \"30s\"\n{}",
            lab.submission_port,
            lab.selfsigned_cert.display(),
            self.mailbox.user,
            self.rcpt,
            self.oauth2_table("smtp"),
        );
        self.config.smtp_table = Some(table);
    }

    /// What reached the accepting sink (or, after
    /// [`World::relay_through_postfix`], Postfix's sink) for this world.
    /// Postfix passes a message on after it answered popferry, so this
    /// waits up to 10 s for `count` of them.
    pub fn dumps_awaited(&self, count: usize) -> Vec<Dump> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let dumps = self.dumps();
            if dumps.len() >= count || Instant::now() > deadline {
                return dumps;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn dumps(&self) -> Vec<Dump> {
        match &self.config.smtp_table {
            None => dumps_in(&env().smtp_dump_dir, &self.rcpt),
            Some(_) => dumps_in(&env().oauth.submission_dump_dir, &self.rcpt),
        }
    }

    /// Each message arrived exactly once and left the server.
    pub fn assert_all_moved_once(&self, output: &dyn std::fmt::Display) {
        let dumps = self.dumps_awaited(self.messages.len());
        let mut ids: Vec<String> = dumps.iter().filter_map(Dump::message_id).collect();
        ids.sort();
        let mut expected: Vec<String> =
            self.messages.iter().map(|m| m.message_id.clone()).collect();
        expected.sort();
        assert_eq!(ids, expected, "each message once:\n{output}");
        assert_eq!(self.mailbox.count(), 0, "all deleted:\n{output}");
    }
}

/// Replaces the access token popferry cached beside `refresh_token_file`
/// with one no server accepts, as an early revocation leaves it: the next
/// login is refused and must refresh.
pub fn spoil_cached_token(refresh_token_file: &Path) {
    let cache = refresh_token_file.with_extension("refresh.cache");
    let text = fs::read_to_string(&cache).expect("cache file");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("cache JSON");
    json["access_token"] = serde_json::Value::String("not-a-jwt".into());
    fs::write(&cache, json.to_string()).expect("write cache file");
}
