//! The shipped systemd unit, `config/popferry.service`, is one systemd
//! accepts and one whose sandbox systemd itself rates as tight: it runs as
//! an unprivileged user, and `systemd-analyze security` scores its exposure
//! at 2.0 or better (0 is fully locked down, 10 is an unsandboxed root
//! service). systemd checks the unit offline; nothing is installed.

use std::path::Path;
use std::process::Command;

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/popferry.service");

/// The unit with `ExecStart` pointing at the binary under test, since
/// `verify` insists that the program exists.
fn unit_in(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(UNIT).expect("read the unit");
    let text = text.replace("/usr/local/bin/popferry", env!("CARGO_BIN_EXE_popferry"));
    let path = dir.join("popferry.service");
    std::fs::write(&path, text).expect("write the unit");
    path
}

fn systemd_analyze(args: &[&str], unit: &Path) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .output()
        .expect("systemd-analyze (Debian package systemd) must be installed")
}

#[test]
fn unit_runs_unprivileged_in_a_tight_sandbox() {
    let text = std::fs::read_to_string(UNIT).expect("read the unit");
    let user = text
        .lines()
        .find_map(|line| line.strip_prefix("User="))
        .expect("the unit names a User=");
    assert!(!["root", "0"].contains(&user), "runs as {user}");
    for line in ["NoNewPrivileges=yes", "ProtectSystem=strict", "UMask=0077"] {
        assert!(text.lines().any(|l| l == line), "missing {line}");
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let unit = unit_in(dir.path());
    let verify = systemd_analyze(&["verify"], &unit);
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let security = systemd_analyze(&["security", "--offline=yes", "--threshold=20"], &unit);
    let report = String::from_utf8_lossy(&security.stdout);
    assert!(security.status.success(), "exposure above 2.0:\n{report}");
    let score = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .expect("an overall score");
    eprintln!("{}", score.trim());
}
