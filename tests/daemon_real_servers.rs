//! `popferry run` as a service against Dovecot and smtp-sink (started by
//! `scripts/services.sh`): mail dropped into a mailbox arrives within two
//! poll intervals, SIGTERM mid-transfer drains and exits cleanly, SIGHUP
//! reloads accounts, and a broken config on SIGHUP changes nothing.
#![cfg(feature = "real-servers")]

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use support::mail::{message, TestMessage};
use support::popferry::{spawn_popferry, AccountConfig, KillOnDrop, TestConfig};
use support::real::dump_paths_for;
use support::scenario::Scenario;

const LIMIT: Duration = Duration::from_secs(60);

fn signal(child: &KillOnDrop, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} failed");
}

/// Waits until the daemon's log contains `needle` `times` times.
fn wait_for_log(log: &Path, needle: &str, times: usize) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if text.matches(needle).count() >= times {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {times}x {needle:?} in the log within {LIMIT:?}:\n{text}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for_exit(child: &mut KillOnDrop, limit: Duration, log: &Path) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.0.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "popferry did not exit within {limit:?}:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for_dumps(rcpt: &str, count: usize) {
    let deadline = Instant::now() + LIMIT;
    while dump_paths_for(rcpt).len() < count {
        assert!(
            Instant::now() < deadline,
            "{rcpt}: {} of {count} messages within {LIMIT:?}",
            dump_paths_for(rcpt).len()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Adds `count` new messages (numbered from what the scenario has) to the
/// scenario's mailbox.
fn drop_mail(s: &mut Scenario, count: usize, size: usize) {
    let tag = s.mailbox.user.clone();
    let first = s.messages.len();
    let new: Vec<TestMessage> = (first..first + count)
        .map(|i| message(&tag, i, size))
        .collect();
    s.mailbox.add_all(&new);
    s.messages.extend(new);
}

#[test]
fn daemon_delivers_dropped_mail_within_two_poll_intervals() {
    const INTERVAL: Duration = Duration::from_secs(2);
    let mut s = Scenario::new("daemon", |_| Vec::new());
    s.account().poll_interval = "2s".into();
    let log = s.config.dir.path().join("run.log");
    // `-v`: the first poll finds nothing, which is logged at debug.
    let mut child = spawn_popferry(&s.config.write(), &["run", "-v"], &log);
    wait_for_log(&log, "poll finished", 1);

    for round in 1..=2 {
        drop_mail(&mut s, 3, 2_000);
        let dropped = Instant::now();
        wait_for_dumps(&s.rcpt, 3 * round);
        let took = dropped.elapsed();
        assert!(
            took <= 2 * INTERVAL,
            "round {round}: mail took {took:?} to arrive with a {INTERVAL:?} poll interval"
        );
    }
    assert_eq!(s.mailbox.wait_for_count(0, LIMIT), 0, "mailbox emptied");

    signal(&child, "TERM");
    let status = wait_for_exit(&mut child, Duration::from_secs(10), &log);
    assert!(status.success(), "exit after SIGTERM: {status}");
    s.assert_each_delivered_once();
    s.assert_byte_identical();
}

#[test]
fn sigterm_during_a_large_transfer_exits_cleanly_and_a_restart_loses_nothing() {
    let mut s = Scenario::new("sigterm", |_| Vec::new());
    drop_mail(&mut s, 1, 12_000_000);
    drop_mail(&mut s, 30, 4_000);
    s.account().poll_interval = "1s".into();
    s.config.daemon = "shutdown_timeout = \"20s\"".into();
    let log = s.config.dir.path().join("run.log");
    let mut child = spawn_popferry(&s.config.write(), &["-v", "run"], &log);
    wait_for_log(&log, "logged in", 1);
    thread::sleep(Duration::from_millis(50));
    signal(&child, "TERM");
    let stopped = Instant::now();
    let status = wait_for_exit(&mut child, Duration::from_secs(25), &log);
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "exit after SIGTERM: {status}\n{text}");
    assert!(
        text.contains("stopped"),
        "no clean stop in the log:\n{text}"
    );
    let first_run = dump_paths_for(&s.rcpt).len();
    assert!(
        first_run < s.messages.len(),
        "SIGTERM came too late to interrupt anything ({first_run} delivered in {:?})",
        stopped.elapsed()
    );

    let log = s.config.dir.path().join("rerun.log");
    let mut child = spawn_popferry(&s.config.write(), &["run"], &log);
    wait_for_dumps(&s.rcpt, s.messages.len());
    assert_eq!(s.mailbox.wait_for_count(0, LIMIT), 0, "mailbox emptied");
    signal(&child, "TERM");
    assert!(wait_for_exit(&mut child, Duration::from_secs(10), &log).success());
    s.assert_each_delivered_once();
    s.assert_byte_identical();
}

#[test]
fn sighup_adds_and_removes_accounts_and_a_broken_config_changes_nothing() {
    let mut a = Scenario::new("hup-a", |_| Vec::new());
    let mut b = Scenario::new("hup-b", |_| Vec::new());
    let mut c = Scenario::new("hup-c", |_| Vec::new());
    for s in [&mut a, &mut b, &mut c] {
        s.account().poll_interval = "1s".into();
    }
    let account = |s: &Scenario| -> AccountConfig { s.config.accounts[0].clone() };
    let mut config = TestConfig::new(account(&a));
    config.accounts.push(account(&b));
    let log = config.dir.path().join("run.log");
    let mut child = spawn_popferry(&config.write(), &["run"], &log);
    drop_mail(&mut a, 2, 1_000);
    drop_mail(&mut b, 2, 1_000);
    wait_for_dumps(&a.rcpt, 2);
    wait_for_dumps(&b.rcpt, 2);

    // b out, c in; a untouched.
    config.accounts = vec![account(&a), account(&c)];
    config.write();
    signal(&child, "HUP");
    wait_for_log(&log, "configuration reloaded", 1);
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("added=1 changed=0 removed=1"),
        "reload summary:\n{text}"
    );
    drop_mail(&mut a, 1, 1_000);
    drop_mail(&mut b, 1, 1_000);
    drop_mail(&mut c, 2, 1_000);
    wait_for_dumps(&a.rcpt, 3);
    wait_for_dumps(&c.rcpt, 2);
    thread::sleep(Duration::from_secs(3));
    assert_eq!(
        dump_paths_for(&b.rcpt).len(),
        2,
        "removed account b still polled"
    );
    assert_eq!(b.mailbox.count(), 1, "b's new message stays on the server");

    // A broken file: reported, and the running accounts carry on.
    fs::write(config.path(), "this is [not toml").expect("break config");
    signal(&child, "HUP");
    wait_for_log(&log, "reload failed", 1);
    drop_mail(&mut a, 1, 1_000);
    drop_mail(&mut c, 1, 1_000);
    wait_for_dumps(&a.rcpt, 4);
    wait_for_dumps(&c.rcpt, 3);
    assert!(
        child.0.try_wait().expect("try_wait").is_none(),
        "still running"
    );

    signal(&child, "TERM");
    assert!(wait_for_exit(&mut child, Duration::from_secs(10), &log).success());
    for s in [&a, &c] {
        s.assert_each_delivered_once();
    }
}
