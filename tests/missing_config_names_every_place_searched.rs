//! Run without `-c`, `$POPFERRY_CONFIG` or a default file, popferry says
//! every place it looked and how to get a configuration, and exits 2 (a
//! usage error). Skipped places would send a new user hunting.

use std::process::{Command, Stdio};

#[test]
fn missing_config_names_every_place_searched() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_popferry"))
        .arg("status")
        .current_dir(dir.path())
        .env_remove("POPFERRY_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if std::path::Path::new("/etc/popferry/popferry.toml").exists() {
        // A machine with a system configuration uses it instead.
        assert!(!stderr.contains("no configuration file"), "{stderr}");
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for place in [
        "-c FILE",
        "$POPFERRY_CONFIG",
        "./popferry.toml",
        "/etc/popferry/popferry.toml",
        "config/example.toml",
    ] {
        assert!(stderr.contains(place), "{place} missing from: {stderr}");
    }
    assert!(
        dir.path().read_dir().unwrap().next().is_none(),
        "nothing created"
    );
}

#[test]
fn a_config_named_in_the_environment_is_used_even_when_missing() {
    let dir = tempfile::tempdir().unwrap();
    let named = dir.path().join("nope.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_popferry"))
        .arg("check")
        .current_dir(dir.path())
        .env("POPFERRY_CONFIG", &named)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot read {}", named.display())),
        "{stderr}"
    );
}
