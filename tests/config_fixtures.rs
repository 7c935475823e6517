//! The configuration as an administrator meets it: files on disk, the error
//! messages they get back, and where passwords come from.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use popferry::config::{
    Account, AuthMethod, Config, Credential, Multidrop, OAuth2, PasswordSource, RecipientHeader,
    SmtpAuth, State, TlsMode, Trust,
};

/// The password source of an account that has one.
fn password(account: &Account) -> &PasswordSource {
    match &account.credential {
        Credential::Password(source) => source,
        Credential::OAuth2(_) => panic!("account {} logs in with OAuth2", account.name),
    }
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config");

/// The `.toml` files of one fixture folder, sorted so failures are stable.
fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(FIXTURES).join(kind);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

/// A one-account file around `account_extra` (lines added to the account)
/// and `smtp` (the body of the top-level [smtp] table).
fn one_account(account_extra: &str, smtp: &str) -> String {
    format!(
        "[smtp]\n{smtp}\n\n[[account]]\nname = \"alice\"\nhost = \"pop.example.org\"\n\
         username = \"alice\"\ndeliver_to = [\"alice@example.org\"]\n{account_extra}\n"
    )
}

fn write_with_mode(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).expect("write config");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn valid_fixtures_load() {
    for path in fixtures("valid") {
        if let Err(err) = Config::load(&path) {
            panic!("{} should load: {err}", path.display());
        }
    }
}

#[test]
fn invalid_fixtures_fail_with_the_expected_message() {
    let mut failures = Vec::new();
    for path in fixtures("invalid") {
        let text = fs::read_to_string(&path).expect("read fixture");
        let expected = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: first line must be `# expect: `", path.display()));
        let file_name = path.file_name().and_then(|n| n.to_str()).expect("name");
        match Config::load(&path) {
            Ok(_) => failures.push(format!("{file_name}: loaded but should fail")),
            Err(err) => {
                let message = err.to_string();
                if !message.contains(expected) || !message.contains(file_name) {
                    failures.push(format!(
                        "{file_name}:\n  expected: {expected}\n  got: {message}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn example_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let config = Config::load(&path).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(config.accounts.len(), 3);
    let alice = config.account("alice").expect("alice");
    let support = config.account("shared-support").expect("shared-support");
    assert!(!alice.keep && support.keep);
    assert_eq!(alice.poll_interval_max, Some(Duration::from_secs(30 * 60)));
    assert_eq!(support.poll_interval_max, None, "a fixed interval");
    assert_eq!(support.pop3.port, 110);
    assert_eq!(support.smtp.port, 465);
    assert_eq!(
        *password(alice),
        PasswordSource::File("/etc/popferry/alice.pass".into())
    );
    assert!(config.account("nobody").is_none());
    let m365 = config.account("m365").expect("m365");
    let Credential::OAuth2(OAuth2::Refresh(registration)) = &m365.credential else {
        panic!("m365 signs in with OAuth2: {:?}", m365.credential);
    };
    assert_eq!(m365.auth, AuthMethod::XOAuth2);
    assert!(registration
        .token_url
        .starts_with("https://login.microsoftonline.com/"));
    assert!(registration.device_authorization_url.is_some());
    assert!(registration.scopes.iter().any(|s| s == "offline_access"));
}

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("absent.toml");
    let message = Config::load(&path).expect_err("no file").to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn defaults_apply() {
    let config = Config::load(&Path::new(FIXTURES).join("valid/minimal.toml")).expect("loads");
    let account = &config.accounts[0];
    assert_eq!(account.pop3.tls, TlsMode::Implicit);
    assert_eq!(account.auth, AuthMethod::Auto);
    assert!(!account.keep);
    assert_eq!(account.poll_interval, Duration::from_secs(60));
    assert_eq!(account.timeout, Duration::from_secs(60));
    assert_eq!(account.max_message_size, 64 * 1024 * 1024);
    assert_eq!(account.quarantine_dir, None);
    assert_eq!(account.multidrop, None);
    assert_eq!(account.smtp.timeout, Duration::from_secs(60));
    assert_eq!(account.smtp.credentials, None);
    assert_eq!(
        config.state,
        State::File(Path::new(FIXTURES).join("valid/popferry.db"))
    );
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("popferry.toml");
    let text = format!(
        "state = \"data/ledger.db\"\n{}",
        one_account(
            "password_file = \"secrets/alice.pass\"\nquarantine_dir = \"q\"",
            "host = \"127.0.0.1\"\nca_file = \"/abs/ca.pem\""
        )
    );
    write_with_mode(&path, &text, 0o644);
    let config = Config::load(&path).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(config.path, path);
    assert_eq!(config.state, State::File(dir.path().join("data/ledger.db")));
    let alice = &config.accounts[0];
    assert_eq!(alice.quarantine_dir, Some(dir.path().join("q")));
    let secret = dir.path().join("secrets/alice.pass");
    assert_eq!(*password(alice), PasswordSource::File(secret));
    let ca_file = Some(PathBuf::from("/abs/ca.pem"));
    assert_eq!(alice.smtp.trust, Trust::Roots { ca_file });

    let elsewhere = Config::from_toml(&text, Path::new("/etc/popferry/popferry.toml"))
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        elsewhere.state,
        State::File("/etc/popferry/data/ledger.db".into())
    );
}

#[test]
fn multidrop_reads_its_header_in_any_case_and_stores_domains_lowercase() {
    let path = Path::new(FIXTURES).join("valid/multidrop.toml");
    let config = Config::load(&path).unwrap_or_else(|err| panic!("{err}"));
    let account = &config.accounts[0];
    let expected = Multidrop {
        header: RecipientHeader::DeliveredTo,
        local_domains: vec!["example.org".to_owned(), "example.net".to_owned()],
    };
    assert_eq!(account.multidrop, Some(expected));
    assert_eq!(account.deliver_to, ["postmaster@example.org"]);
}

#[test]
fn sasl_mechanisms_are_named_as_in_capa_and_ehlo() {
    let load = |account_auth: &str, smtp_auth: &str| {
        let text = one_account(
            &format!("password_env = \"X\"\nauth = \"{account_auth}\""),
            &format!(
                "host = \"relay\"\nusername = \"relay\"\npassword_env = \"Y\"\n\
                 auth = \"{smtp_auth}\""
            ),
        );
        let config =
            Config::from_toml(&text, Path::new("p.toml")).unwrap_or_else(|e| panic!("{e}"));
        let account = &config.accounts[0];
        let smtp = account.smtp.credentials.as_ref().expect("SMTP login");
        (account.auth, smtp.auth)
    };
    assert_eq!(
        load("scram-sha-256", "cram-md5"),
        (AuthMethod::ScramSha256, SmtpAuth::CramMd5)
    );
    assert_eq!(
        load("cram-md5", "scram-sha-256"),
        (AuthMethod::CramMd5, SmtpAuth::ScramSha256)
    );
    assert_eq!(load("auto", "auto"), (AuthMethod::Auto, SmtpAuth::Auto));
    assert_eq!(load("plain", "login"), (AuthMethod::Plain, SmtpAuth::Login));
}

#[test]
fn tls_fingerprint_pins_the_certificate_instead_of_the_roots() {
    let path = Path::new(FIXTURES).join("valid/pinned_certificate.toml");
    let config = Config::load(&path).unwrap_or_else(|err| panic!("{err}"));
    let Trust::Pinned(pin) = config.accounts[0].pop3.trust else {
        panic!("not pinned: {:?}", config.accounts[0].pop3.trust);
    };
    assert_eq!(pin, popferry::tls::Fingerprint::of(b""));
    assert_eq!(config.accounts[0].smtp.trust, Trust::default());
}

#[test]
fn ports_default_from_tls_mode() {
    let ports = |account_tls: &str, smtp_tls: &str| {
        let text = one_account(
            &format!("password_env = \"X\"\n{account_tls}"),
            &format!("host = \"relay\"\n{smtp_tls}"),
        );
        let config = Config::from_toml(&text, Path::new("p.toml")).expect("valid");
        let account = &config.accounts[0];
        (account.pop3.port, account.smtp.port)
    };
    assert_eq!(ports("", ""), (995, 25));
    assert_eq!(
        ports("tls = \"implicit\"", "tls = \"implicit\""),
        (995, 465)
    );
    assert_eq!(ports("tls = \"starttls\"", "tls = \"starttls\""), (110, 25));
    assert_eq!(ports("tls = \"none\"", "tls = \"none\""), (110, 25));
    assert_eq!(ports("port = 7110", "port = 2525"), (7110, 2525));
}

#[test]
fn accounts_without_their_own_relay_share_one() {
    let text = format!(
        "{}\n[[account]]\nname = \"bob\"\nhost = \"h\"\nusername = \"b\"\n\
         password_env = \"X\"\ndeliver_to = [\"bob@example.org\"]\n",
        one_account("password_env = \"X\"", "host = \"relay\"")
    );
    let config = Config::from_toml(&text, Path::new("p.toml")).expect("valid");
    assert!(Arc::ptr_eq(
        &config.accounts[0].smtp,
        &config.accounts[1].smtp
    ));
}

#[test]
fn inline_password_needs_a_private_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("popferry.toml");
    let text = one_account("password = \"hunter2\"", "host = \"127.0.0.1\"");
    write_with_mode(&path, &text, 0o644);
    let message = Config::load(&path).expect_err("0644 refused").to_string();
    assert!(message.contains("chmod 600"), "{message}");
    assert!(message.contains("(mode 0644)"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    write_with_mode(&path, &text, 0o600);
    let config = Config::load(&path).unwrap_or_else(|err| panic!("{err}"));
    let password = password(&config.accounts[0]).resolve().expect("inline");
    assert_eq!(password.expose(), "hunter2");

    // The rule also covers the relay's password, and a file without inline
    // passwords may be world-readable.
    let relay = one_account(
        "password_env = \"X\"",
        "host = \"h\"\nusername = \"u\"\npassword = \"hunter2\"",
    );
    write_with_mode(&path, &relay, 0o640);
    assert!(Config::load(&path).is_err());
    let no_inline = one_account("password_env = \"X\"", "host = \"h\"");
    write_with_mode(&path, &no_inline, 0o644);
    assert!(Config::load(&path).is_ok());
    // Text that is not on disk has no mode to check.
    assert!(Config::from_toml(&text, &path).is_ok());
}

#[test]
fn debug_output_hides_passwords() {
    let text = one_account(
        "password = \"correct-horse\"",
        "host = \"h\"\nusername = \"u\"\npassword = \"battery-staple\"",
    );
    let config = Config::from_toml(&text, Path::new("p.toml")).expect("valid");
    let shown = format!("{config:?}");
    assert!(!shown.contains("correct-horse"), "{shown}");
    assert!(!shown.contains("battery-staple"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
}

#[test]
fn password_env_resolves() {
    // PATH is always set, which spares the test from changing the
    // environment of a multi-threaded process.
    let text = one_account("password_env = \"PATH\"", "host = \"h\"");
    let config = Config::from_toml(&text, Path::new("p.toml")).expect("valid");
    let secret = password(&config.accounts[0])
        .resolve()
        .expect("PATH is set");
    assert_eq!(secret.expose(), std::env::var("PATH").expect("PATH"));
}

#[test]
fn password_command_resolves() {
    let text = one_account(r#"password_command = "printf 'pw%s\n' 42""#, "host = \"h\"");
    let config = Config::from_toml(&text, Path::new("p.toml")).expect("valid");
    let secret = password(&config.accounts[0])
        .resolve()
        .expect("command runs");
    assert_eq!(secret.expose(), "pw42");
}

#[test]
fn failing_password_command_reports_status_not_output() {
    let command = "printf 'pw%s' 42; echo 'vault is locked' >&2; exit 3";
    let err = PasswordSource::Command(command.into())
        .resolve()
        .expect_err("exit 3 fails");
    let message = err.to_string();
    assert!(message.contains("exit status: 3"), "{message}");
    assert!(message.contains("vault is locked"), "{message}");
    assert!(message.contains(command), "{message}");
    assert!(!message.contains("pw42"), "{message}");
}

#[test]
fn password_file_must_be_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("alice.pass");
    let source = PasswordSource::File(path.clone());
    write_with_mode(&path, "s3cret\n", 0o600);
    assert_eq!(source.resolve().expect("private file").expose(), "s3cret");

    write_with_mode(&path, "s3cret\n", 0o644);
    let message = source.resolve().expect_err("0644 refused").to_string();
    assert!(message.contains("chmod 600"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(!message.contains("s3cret"), "{message}");

    let missing = PasswordSource::File(dir.path().join("absent.pass"));
    let message = missing.resolve().expect_err("missing").to_string();
    assert!(message.contains("absent.pass"), "{message}");
}
