//! `popferry run` with `[daemon] metrics_listen`, scraped by a real
//! Prometheus (Debian's, started by `scripts/services.sh`, scraping
//! `POPFERRY_TEST_METRICS_PORT` every second): after the daemon moves N
//! messages from Dovecot to smtp-sink, Prometheus' query API reports N
//! delivered for the account and a last successful poll seconds ago,
//! `/healthz` answers 200, and `promtool check metrics` accepts the
//! exposition as Prometheus' own linter sees it.
#![cfg(feature = "real-servers")]

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::mail::mixed_messages;
use support::popferry::spawn_popferry;
use support::real::{dump_paths_for, env_num, env_var};
use support::scenario::Scenario;

const HINT: &str = "run scripts/test.sh, or scripts/services.sh start and source its env file";
const LIMIT: Duration = Duration::from_secs(60);
const MESSAGES: usize = 5;

fn get(url: &str) -> (u16, String) {
    let mut response = ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().expect("body");
    (status, body)
}

/// The value of an instant query's single result, if it has one.
fn query(prometheus: u16, promql: &str) -> Option<f64> {
    let encoded: String = form_urlencoded::byte_serialize(promql.as_bytes()).collect();
    let url = format!("http://127.0.0.1:{prometheus}/api/v1/query?query={encoded}");
    let (status, body) = get(&url);
    assert_eq!(status, 200, "{url}: {body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["status"], "success", "{body}");
    let result = answer["data"]["result"].as_array()?.first()?.clone();
    result["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_sees_every_delivery_and_promtool_accepts_the_exposition() {
    let prometheus: u16 = env_num("POPFERRY_TEST_PROMETHEUS_PORT", HINT);
    let metrics: u16 = env_num("POPFERRY_TEST_METRICS_PORT", HINT);
    let promtool = env_var("POPFERRY_TEST_PROMTOOL", HINT);

    let mut s = Scenario::new("metrics", |tag| mixed_messages(tag, MESSAGES));
    let name = s.mailbox.user.clone();
    s.account().name = name.clone();
    s.account().poll_interval = "1s".to_owned();
    s.config.daemon = format!("metrics_listen = \"127.0.0.1:{metrics}\"");
    let log = s.config.dir.path().join("run.log");
    let _daemon = spawn_popferry(&s.config.write(), &["run"], &log);

    let deadline = Instant::now() + LIMIT;
    while dump_paths_for(&s.rcpt).len() < MESSAGES {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(Instant::now() < deadline, "not delivered in time:\n{text}");
        thread::sleep(Duration::from_millis(50));
    }

    let delivered = format!("popferry_messages_delivered_total{{account=\"{name}\"}}");
    let mut seen = None;
    while seen != Some(MESSAGES as f64) {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "Prometheus says {delivered} = {seen:?}, not {MESSAGES}:\n{text}"
        );
        thread::sleep(Duration::from_millis(250));
        seen = query(prometheus, &delivered);
    }
    // The alert expression of the README: seconds since the last good poll.
    let age =
        format!("time() - popferry_last_successful_poll_timestamp_seconds{{account=\"{name}\"}}");
    let age = query(prometheus, &age).expect("the last-successful-poll gauge is scraped");
    assert!(
        (0.0..30.0).contains(&age),
        "last successful poll {age} s ago"
    );

    let (status, body) = get(&format!("http://127.0.0.1:{metrics}/healthz"));
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    let (status, exposition) = get(&format!("http://127.0.0.1:{metrics}/metrics"));
    assert_eq!(status, 200);
    assert!(
        exposition.contains(&format!("{delivered} {MESSAGES}\n")),
        "{exposition}"
    );
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("feed promtool");
    let checked = check.wait_with_output().expect("promtool");
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{exposition}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}
