//! Two popferry processes polling into one ledger could both deliver a
//! message before either recorded it. So while `popferry run` holds a
//! ledger, `popferry fetch` on the same ledger is refused with a message
//! that says what to do; `popferry status` still reads it; and once the
//! daemon is killed the kernel has released the lock: nothing stale is left
//! behind for an administrator to clean up.

mod support;

use std::fs::{File, TryLockError};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use support::popferry::{popferry_command, KillOnDrop};

/// One account on a port where nothing listens, so every poll fails fast
/// and the daemon keeps running.
fn write_config(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("popferry.toml");
    std::fs::write(
        &config,
        "state = \"ledger/popferry.db\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = 1\n\
         tls = \"none\"\n\n[[account]]\nname = \"nowhere\"\nhost = \"127.0.0.1\"\nport = 1\n\
         tls = \"none\"\nusername = \"u\"\npassword = \"pw\"\n\
         deliver_to = [\"u@example.org\"]\npoll_interval = \"1s\"\n",
    )
    .expect("write config");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    config
}

fn popferry(config: &Path, command: &str) -> Output {
    popferry_command(config, &[command])
        .output()
        .expect("run popferry")
}

fn is_locked(ledger: &Path) -> bool {
    let Ok(file) = File::open(ledger) else {
        return false;
    };
    matches!(file.try_lock(), Err(TryLockError::WouldBlock))
}

#[test]
fn fetch_is_refused_while_the_daemon_holds_the_ledger() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path());
    let ledger = dir.path().join("ledger/popferry.db");

    let mut daemon = KillOnDrop(
        popferry_command(&config, &["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn popferry run"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !is_locked(&ledger) {
        assert!(
            Instant::now() < deadline,
            "the daemon never locked {ledger:?}"
        );
        assert!(
            daemon.0.try_wait().expect("try_wait").is_none(),
            "daemon exited"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let refused = popferry(&config, "fetch");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "a usage error: nothing ran\n{stderr}"
    );
    assert!(
        stderr.contains("in use by another popferry process"),
        "{stderr}"
    );
    assert!(stderr.contains(&ledger.display().to_string()), "{stderr}");
    assert!(
        !stderr.contains("poll failed"),
        "it must not poll: {stderr}"
    );

    // The daemon's first poll goes on record a moment after it locks the
    // ledger; until then status rightly says nothing was fetched yet.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = popferry(&config, "status");
        let out = String::from_utf8_lossy(&status.stdout).into_owned();
        assert!(
            status.status.success(),
            "status beside the daemon: {status:?}"
        );
        if out.contains("nowhere") {
            break;
        }
        assert!(Instant::now() < deadline, "no poll on record: {out}");
        std::thread::sleep(Duration::from_millis(50));
    }

    daemon.0.kill().expect("SIGKILL the daemon");
    daemon.0.wait().expect("reap the daemon");
    assert!(
        !is_locked(&ledger),
        "the kernel drops the lock with the process"
    );
    let after = popferry(&config, "fetch");
    let stderr = String::from_utf8_lossy(&after.stderr);
    assert!(!stderr.contains("in use"), "{stderr}");
    assert!(
        stderr.contains("poll failed") || stderr.contains("FAILED"),
        "{stderr}"
    );
}
