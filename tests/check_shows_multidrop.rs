//! `popferry check` tells a multidrop account's administrator which header
//! it trusts, for which domains, and where the rest goes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

#[test]
fn check_names_the_header_the_domains_and_the_fallback() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid");
    // The fixture beside its password file and with its ledger in a
    // folder of the test's, so that every item `check` looks at holds.
    let run = |name: &str, password_file: &str| {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = fs::read_to_string(fixtures.join(name)).expect("fixture");
        let config = dir.path().join(name);
        fs::write(&config, format!("state = \"popferry.db\"\n{text}")).expect("write");
        let password = dir.path().join(password_file);
        fs::write(&password, "pw\n").expect("write");
        fs::set_permissions(&password, fs::Permissions::from_mode(0o600)).expect("chmod");
        let output = Command::new(env!("CARGO_BIN_EXE_popferry"))
            .arg("--config")
            .arg(&config)
            .arg("check")
            .output()
            .expect("run popferry");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{name}: {output:?}");
        stdout
    };
    let multidrop = run("multidrop.toml", "domain.pass");
    let line = "domain: multidrop: to the addresses in Delivered-To (topmost) within \
                example.org, example.net; messages naming none go to postmaster@example.org";
    assert!(multidrop.contains(line), "{multidrop}");
    let plain = run("minimal.toml", "alice.pass");
    assert!(!plain.contains(": multidrop:"), "{plain}");
}
