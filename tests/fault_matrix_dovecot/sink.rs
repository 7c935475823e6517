//! Postfix's smtp-sink started for one case, with the fault it can act out
//! itself: hang up without a reply after a command (`-q`), answer 421 and
//! hang up (`-Q`), or refuse a command with a chosen 4xx (`-r` + `-b`) or
//! 5xx (`-f` + `-B`) reply. It keeps nothing it is sent (no `-d`).

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::popferry::KillOnDrop;
use crate::support::real::env;

const SMTP_SINK: &str = "/usr/sbin/smtp-sink";

/// A running smtp-sink; killed when dropped.
#[derive(Debug)]
pub struct Sink {
    _process: KillOnDrop,
    pub port: u16,
}

impl Sink {
    /// Starts smtp-sink with `options` on a free loopback port and waits
    /// until it accepts connections.
    pub fn start(options: &[&str]) -> Self {
        let port = free_port();
        let process = Command::new(SMTP_SINK)
            .args([
                "-u",
                &mail_user(),
                "-4",
                "-m",
                "16",
                "-t",
                "30",
                "-a",
                "-C",
                "-F",
            ])
            .args(["-h", "popferry-fault-sink"])
            .args(options)
            .arg(format!("127.0.0.1:{port}"))
            .arg("16")
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("start {SMTP_SINK}: {err}"));
        let process = KillOnDrop(process);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "smtp-sink {options:?} never listened"
            );
            thread::sleep(Duration::from_millis(10));
        }
        Self {
            _process: process,
            port,
        }
    }
}

/// A loopback port nothing listens on (right now).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// smtp-sink, started as root, must drop to an account: the one the
/// test services run as, named from its uid.
fn mail_user() -> String {
    let uid = env().mail_uid.to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.get(2) == Some(&uid.as_str()))
        .map(|fields| fields[0].to_owned())
        .unwrap_or_else(|| panic!("no account with uid {uid} in /etc/passwd"))
}
