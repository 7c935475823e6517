//! `popferry run` as a child process: its generated configuration, what
//! /proc says about it, its own /metrics, and the reload line in its log.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Lines of popferry's log kept to show when a run fails.
const TAIL: usize = 20;

/// What the generated configuration says beyond the accounts.
#[derive(Debug, Clone)]
pub struct Setup {
    pub accounts: usize,
    pub interval: Duration,
    /// Pool limits raised so every account's session can stay parked, and
    /// plain POP3 on `pop3_port` instead of implicit TLS on `pop3s_port`.
    pub pooled: bool,
    pub pop3s_port: u16,
    pub pop3_port: u16,
    pub smtp_port: u16,
    pub metrics_port: u16,
    /// `[daemon] max_logins_per_second`; unset keeps popferry's default.
    pub max_logins_per_second: Option<u32>,
}

/// Writes `dir/popferry.toml`; `changed` gives the first account another
/// interval, the one change a reload then has to apply.
pub fn write_config(dir: &Path, setup: &Setup, changed: bool) -> PathBuf {
    let mut text = format!(
        "state = \"ledger.db\"\n[daemon]\nmetrics_listen = \"127.0.0.1:{}\"\n",
        setup.metrics_port
    );
    if setup.pooled {
        let room = setup.accounts + 16;
        writeln!(text, "max_idle_connections = {room}").expect("format");
        writeln!(text, "max_connections_per_server = {room}").expect("format");
    }
    if let Some(rate) = setup.max_logins_per_second {
        writeln!(text, "max_logins_per_second = {rate}").expect("format");
    }
    writeln!(
        text,
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"",
        setup.smtp_port
    )
    .expect("format");
    let server = if setup.pooled {
        format!("port = {}\ntls = \"none\"", setup.pop3_port)
    } else {
        let ca = dir.join("ca.pem").display().to_string();
        format!(
            "port = {}\ntls = \"implicit\"\nca_file = {ca:?}",
            setup.pop3s_port
        )
    };
    for n in 0..setup.accounts {
        let seconds = setup.interval.as_secs() + u64::from(changed && n == 0);
        writeln!(
            text,
            "[[account]]\nname = \"a{n}\"\nhost = \"127.0.0.1\"\n{server}\n\
             username = \"u{n}\"\npassword = \"secret\"\n\
             deliver_to = [\"u{n}@example.org\"]\npoll_interval = \"{seconds}s\"",
        )
        .expect("format");
    }
    let path = dir.join("popferry.toml");
    std::fs::write(&path, text).expect("write popferry.toml");
    // An inline password is only accepted from a file others cannot read.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod popferry.toml");
    path
}

/// A port free now, for the metrics listener.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

pub struct Daemon {
    child: Child,
    pub spawned: Instant,
    metrics_port: u16,
    reloads: Receiver<Instant>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Daemon {
    pub fn spawn(binary: &Path, config: &Path, metrics_port: u16) -> Daemon {
        let spawned = Instant::now();
        let mut child = Command::new(binary)
            .arg("run")
            .arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {} ({e})", binary.display()));
        let stderr = child.stderr.take().expect("stderr");
        let (sender, reloads) = channel();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let kept = Arc::clone(&tail);
        // Drained all the time, or a chatty daemon would block on the pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if line.contains("configuration reloaded") {
                    sender.send(Instant::now()).ok();
                }
                let mut tail = kept.lock().unwrap_or_else(PoisonError::into_inner);
                if tail.len() == TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        Daemon {
            child,
            spawned,
            metrics_port,
            reloads,
            tail,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end of popferry's log, for a failure message.
    pub fn tail(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// utime + stime, in clock ticks (1/100 s on Linux).
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("read /proc/PID/stat");
        // The command name may hold spaces; the fields after it do not.
        let after = &stat[stat.rfind(')').expect("stat format") + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        // utime and stime are fields 14 and 15; `after` starts at field 3.
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
    }

    /// A `/proc/PID/status` line's value in KiB (VmRSS, VmHWM).
    pub fn status_kib(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        (status.lines())
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// popferry's polls (every outcome) and ledger commits so far.
    pub fn metrics(&self) -> Option<(f64, f64)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.metrics_port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        write!(stream, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        let sum = |name: &str| -> f64 {
            (text.lines())
                .filter(|line| {
                    line.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with(['{', ' ']))
                })
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        Some((
            sum("popferry_polls_total"),
            sum("popferry_ledger_commit_duration_seconds_count"),
        ))
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Rewrites nothing itself: the caller changed the file; this sends
    /// SIGHUP and times it to the "configuration reloaded" line.
    pub fn reload(&self, timeout: Duration) -> Option<Duration> {
        while self.reloads.try_recv().is_ok() {}
        let sent = Instant::now();
        self.signal("HUP");
        let seen = self.reloads.recv_timeout(timeout).ok()?;
        Some(seen.duration_since(sent))
    }

    /// SIGTERM, then the exit status; `None` if it outlived `timeout`
    /// (then it is killed).
    pub fn stop(mut self, timeout: Duration) -> Option<ExitStatus> {
        self.signal("TERM");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill().ok();
        self.child.wait().ok();
        None
    }
}

/// The ledger's size on disk: the database and its write-ahead log.
pub fn ledger_bytes(dir: &Path) -> u64 {
    ["ledger.db", "ledger.db-wal"]
        .iter()
        .filter_map(|name| std::fs::metadata(dir.join(name)).ok())
        .map(|meta| meta.len())
        .sum()
}
