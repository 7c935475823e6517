//! `popferry run` as a child process with a generated config: the real
//! daemon, its scheduler and pool, not a library call that could differ.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One `[[account]]` on a plain-text POP3 port of 127.0.0.1.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub port: u16,
    pub password: String,
    pub poll_interval: Duration,
    /// `poll_interval_max`, for adaptive intervals.
    pub interval_max: Option<Duration>,
}

/// The whole config file.
#[derive(Debug, Clone)]
pub struct Setup {
    pub smtp_port: u16,
    /// Lines of the `[daemon]` table.
    pub daemon: Vec<String>,
    pub accounts: Vec<Account>,
}

/// Whole milliseconds, which `humantime` reads back exactly.
fn duration(d: Duration) -> String {
    format!("\"{}ms\"", d.as_millis())
}

impl Setup {
    pub fn toml(&self) -> String {
        let mut text = format!(
            "state = \"ledger.db\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\n\
             tls = \"none\"\ntimeout = \"60s\"\n\n[daemon]\n",
            self.smtp_port
        );
        for line in &self.daemon {
            text += line;
            text.push('\n');
        }
        for account in &self.accounts {
            write!(
                text,
                "\n[[account]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {port}\n\
                 tls = \"none\"\nusername = \"{name}\"\npassword = \"{password}\"\n\
                 deliver_to = [\"{name}@example.org\"]\ntimeout = \"60s\"\npoll_interval = {interval}\n",
                name = account.name,
                port = account.port,
                password = account.password,
                interval = duration(account.poll_interval),
            )
            .expect("write to a String");
            if let Some(max) = account.interval_max {
                writeln!(text, "poll_interval_max = {}", duration(max)).expect("write to a String");
            }
        }
        text
    }
}

/// Whether the binary under test takes these `[daemon]` lines and this
/// `poll_interval_max`: `popferry check` on a probe config says so (an
/// unknown key is an error, `deny_unknown_fields`), so the bench runs a
/// build from before or after a key landed, whatever it was built with.
fn accepts(daemon: &[String], interval_max: Option<Duration>) -> bool {
    let setup = Setup {
        smtp_port: 25,
        daemon: daemon.to_vec(),
        accounts: vec![Account {
            name: "probe".into(),
            port: 110,
            password: "secret".into(),
            poll_interval: Duration::from_secs(60),
            interval_max,
        }],
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("probe.toml");
    std::fs::write(&config, setup.toml()).expect("write the probe config");
    set_private(&config);
    Command::new(binary())
        .arg("--config")
        .arg(&config)
        .arg("check")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

pub fn knows_interval_max() -> bool {
    accepts(&[], Some(Duration::from_secs(1800)))
}

/// `[daemon] max_logins_per_second`, where the build has the key, at
/// its highest (1000): pacing is not what the scenarios measure, and
/// in scaled time the adaptive one needs 500 logins a second.
pub fn pacing_lines() -> Vec<String> {
    [
        "max_logins_per_second = 1000",
        "max_logins_per_second = 1000.0",
    ]
    .into_iter()
    .map(str::to_owned)
    .find(|line| accepts(std::slice::from_ref(line), None))
    .into_iter()
    .collect()
}

/// The binary under test: `POPFERRY`, else the release build of this repo.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("POPFERRY").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/popferry"),
        PathBuf::from,
    );
    // Absolute, as the daemon starts in its run folder.
    std::path::absolute(&path).unwrap_or(path)
}

/// A running daemon; killed if dropped without [`Daemon::stop`].
pub struct Daemon {
    child: Child,
    pub dir: PathBuf,
    pub started: Instant,
}

impl Daemon {
    /// Writes `setup` into the new folder `dir` and starts the daemon
    /// there, its log in `daemon.log`.
    pub fn start(dir: &Path, setup: &Setup) -> Daemon {
        std::fs::create_dir_all(dir).expect("create the run folder");
        let config = dir.join("popferry.toml");
        std::fs::write(&config, setup.toml()).expect("write the config");
        // Inline passwords: popferry refuses a config others can read.
        set_private(&config);
        let log = std::fs::File::create(dir.join("daemon.log")).expect("create the log");
        let binary = binary();
        let child = Command::new(&binary)
            .arg("--config")
            .arg(&config)
            .arg("run")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}): cargo build --release, or set POPFERRY",
                    binary.display()
                )
            });
        Daemon {
            child,
            dir: dir.to_owned(),
            started: Instant::now(),
        }
    }

    /// Panics with the log's tail if the daemon has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("popferry run exited ({status}):\n{}", self.log_tail());
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGTERM, as systemd stops it, and waits for the exit.
    pub fn stop(mut self) {
        self.assert_running();
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().expect("wait for popferry").is_none() {
            assert!(Instant::now() < deadline, "popferry run ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .expect("chmod the config");
}
