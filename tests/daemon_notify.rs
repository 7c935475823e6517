//! Under systemd (`Type=notify`) `popferry run` says READY=1 once it runs
//! and STOPPING=1 on SIGTERM, then exits 0 — even while its only account
//! keeps failing (nothing listens on its port).

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn run_notifies_systemd_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("popferry.toml");
    std::fs::write(
        &config,
        "[smtp]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"none\"\n\n[[account]]\n\
         name = \"nowhere\"\nhost = \"127.0.0.1\"\nport = 1\ntls = \"none\"\n\
         username = \"u\"\npassword = \"hunter2-secret\"\ndeliver_to = [\"u@example.org\"]\n\
         poll_interval = \"1s\"\n",
    )
    .expect("write config");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");

    let mut child = Command::new(env!("CARGO_BIN_EXE_popferry"))
        .arg("-c")
        .arg(&config)
        .arg("run")
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn popferry run");
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("READY within 20s");
    assert_eq!(&buf[..n], b"READY=1");

    // Let the failing account poll and back off at least once.
    std::thread::sleep(Duration::from_millis(1500));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let n = socket.recv(&mut buf).expect("STOPPING after SIGTERM");
    assert_eq!(&buf[..n], b"STOPPING=1");

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within 10s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().expect("stderr");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "exit status {status}:\n{log}");
    assert!(
        log.contains("poll failed"),
        "the account was polled:\n{log}"
    );
    assert!(!log.contains("hunter2-secret"), "no password in the log");
}
