//! `popferry check` tells a multidrop account's administrator which header
//! it trusts, for which domains, and where the rest goes.

use std::path::Path;
use std::process::Command;

#[test]
fn check_names_the_header_the_domains_and_the_fallback() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid");
    let run = |name: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_popferry"))
            .arg("--config")
            .arg(fixtures.join(name))
            .arg("check")
            .output()
            .expect("run popferry");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{name}: {output:?}");
        stdout
    };
    let multidrop = run("multidrop.toml");
    let line = "domain: multidrop: to the addresses in Delivered-To (topmost) within \
                example.org, example.net; messages naming none go to postmaster@example.org";
    assert!(multidrop.contains(line), "{multidrop}");
    let plain = run("minimal.toml");
    assert!(!plain.contains(": multidrop:"), "{plain}");
}
