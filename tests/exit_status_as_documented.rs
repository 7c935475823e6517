//! Every row of the exit status table (README, `popferry --help`):
//! 0 when every account polled and whatever is left waits on a relay's
//! temporary refusal or a recorded rejection; 1 when an account could not
//! poll or could not hand anything to its relay; 2 when nothing ran
//! because of how popferry was invoked or configured.

mod support;
mod tls_peer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use popferry::demo::smtp_receiver::{self, Envelope, SmtpReceiver, Verdict};
use support::popferry::RunOutput;
use tls_peer::{acceptor, config, plain_relay, popferry, write, Ca, Mailbox};

const MESSAGES: usize = 3;

/// A POP3S mailbox holding [`MESSAGES`] messages, an accepting relay, and
/// the `ca_file` line that trusts the mailbox.
struct World {
    dir: tempfile::TempDir,
    mailbox: Mailbox,
    ca: String,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::new("popferry test CA");
        let ca_file = write(dir.path(), "ca.pem", &ca.pem());
        let mailbox = Mailbox::start(acceptor(&ca.issue(&["localhost"]), None), MESSAGES).await;
        let ca = format!("ca_file = {:?}", ca_file.display().to_string());
        World { dir, mailbox, ca }
    }

    /// The config for the mailbox with `smtp` as the `[smtp]` table.
    fn config(&self, smtp: &str) -> PathBuf {
        config(
            self.dir.path(),
            "localhost",
            self.mailbox.pop3.port(),
            smtp,
            &self.ca,
        )
    }

    /// The config for the world's own accepting relay.
    fn accepting(&self) -> PathBuf {
        self.config(&plain_relay(self.mailbox.relay.port()))
    }

    async fn popferry(&self, config: &Path, args: &[&str]) -> RunOutput {
        popferry(config, args, &[]).await
    }
}

/// A relay that answers every message's data with the same verdict.
struct Always(Verdict);

impl smtp_receiver::Mailbox for Always {
    fn receive(&self, _envelope: Envelope, _data: Vec<u8>) -> Verdict {
        self.0
    }
}

async fn relay_answering(verdict: Verdict) -> SmtpReceiver {
    SmtpReceiver::start(Arc::new(Always(verdict)))
        .await
        .expect("relay")
}

fn assert_exit(out: &RunOutput, code: i32, why: &str) {
    assert_eq!(out.code, Some(code), "{why}\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_delivered_is_0() {
    let world = World::new().await;
    let out = world.popferry(&world.accepting(), &["fetch"]).await;
    assert_exit(&out, 0, "all delivered");
    assert_eq!(world.mailbox.accepted.count(), MESSAGES, "{out}");
    assert_eq!(world.mailbox.pop3.count(), 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_waiting_on_a_temporary_refusal_is_0() {
    let world = World::new().await;
    let relay = relay_answering(Verdict::Defer).await;
    let out = world
        .popferry(&world.config(&plain_relay(relay.port())), &["fetch"])
        .await;
    assert_exit(
        &out,
        0,
        "the relay said 451: the mail waits, nothing failed",
    );
    assert_eq!(world.mailbox.pop3.count(), MESSAGES, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_the_relay_rejected_and_the_ledger_recorded_is_0() {
    let world = World::new().await;
    let relay = relay_answering(Verdict::Reject).await;
    let out = world
        .popferry(&world.config(&plain_relay(relay.port())), &["fetch"])
        .await;
    assert_exit(&out, 0, "554 recorded as rejected");
    assert!(
        out.stdout.contains(&format!("{MESSAGES} rejected")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_relay_is_1_and_says_so_once() {
    let world = World::new().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let out = world
        .popferry(&world.config(&plain_relay(port)), &["fetch"])
        .await;
    assert_exit(&out, 1, "nothing could be handed to the relay");
    assert_eq!(
        out.text().matches("Connection refused").count(),
        2,
        "once in the summary, once in the log line\n{out}"
    );
    assert_eq!(world.mailbox.pop3.count(), MESSAGES, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_relay_password_file_is_1_and_says_so_once() {
    let world = World::new().await;
    let smtp = format!(
        "{}\nusername = \"relay\"\npassword_file = \"{}/relay.pass\"",
        plain_relay(world.mailbox.relay.port()),
        world.dir.path().display()
    );
    let out = world.popferry(&world.config(&smtp), &["fetch", "-q"]).await;
    assert_exit(&out, 1, "the relay cannot log in");
    let summary = out
        .stdout
        .lines()
        .find(|l| l.contains("FAILED"))
        .unwrap_or_default();
    assert_eq!(
        summary.matches("No such file or directory").count(),
        1,
        "each cause once\n{out}"
    );
    assert!(summary.contains("relay.pass"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_pop3_login_is_1() {
    let world = World::new().await;
    let path = world.accepting();
    let text = std::fs::read_to_string(&path).expect("config");
    let wrong = text.replace(tls_peer::PASSWORD, "not-the-password");
    std::fs::write(&path, wrong).expect("config");
    let out = world.popferry(&path, &["fetch"]).await;
    assert_exit(&out, 1, "login refused");
    assert_eq!(world.mailbox.accepted.count(), 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_locked_by_another_popferry_is_2() {
    let world = World::new().await;
    let path = world.accepting();
    let ledger = popferry::ledger::Ledger::open(&world.dir.path().join("popferry.db"))
        .expect("hold the ledger");
    let out = world.popferry(&path, &["fetch"]).await;
    drop(ledger);
    assert_exit(&out, 2, "nothing ran: the ledger is in use");
    assert!(out.stderr.contains("in use by another popferry"), "{out}");
    assert_eq!(world.mailbox.pop3.count(), MESSAGES, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_that_cannot_be_opened_is_2_for_fetch_and_run() {
    let world = World::new().await;
    let path = world.accepting();
    let blocker = write(world.dir.path(), "not-a-folder", "");
    let text = std::fs::read_to_string(&path).expect("config");
    let state = format!(
        "state = {:?}",
        blocker.join("popferry.db").display().to_string()
    );
    std::fs::write(&path, text.replace("state = \"popferry.db\"", &state)).expect("config");
    for command in ["fetch", "run"] {
        let out = world.popferry(&path, &[command]).await;
        assert_exit(&out, 2, command);
        assert!(out.stderr.contains("not-a-folder"), "{command}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_address_already_taken_is_2_for_run() {
    let world = World::new().await;
    let path = world.accepting();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address");
    let mut text = std::fs::read_to_string(&path).expect("config");
    text.push_str(&format!("\n[daemon]\nmetrics_listen = \"{addr}\"\n"));
    std::fs::write(&path, text).expect("config");
    let out = world.popferry(&path, &["run"]).await;
    assert_exit(&out, 2, "the daemon never started");
    assert!(out.stderr.contains(&addr.to_string()), "{out}");
    assert_eq!(world.mailbox.pop3.count(), MESSAGES, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_are_2() {
    let world = World::new().await;
    let path = world.accepting();
    let unknown = world.popferry(&path, &["fetch", "bob"]).await;
    assert_exit(&unknown, 2, "no account bob");
    assert!(
        unknown.stderr.contains("no account named \"bob\""),
        "{unknown}"
    );
    let flag = world.popferry(&path, &["fetch", "--no-such-flag"]).await;
    assert_exit(&flag, 2, "an unknown flag");
    let broken = write(world.dir.path(), "broken.toml", "state = \n");
    let out = world.popferry(&broken, &["fetch"]).await;
    assert_exit(&out, 2, "a config that does not parse");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_demo_folder_is_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let full = dir.path().join("full");
    std::fs::create_dir(&full).expect("mkdir");
    write(&full, "something", "already here");
    let file = write(dir.path(), "a-file", "");
    let nowhere = dir.path().join("unused.toml");
    for (folder, words) in [
        (full, "is not empty"),
        (file.join("demo"), "cannot make the demo folder"),
    ] {
        let folder = folder.display().to_string();
        let out = popferry(&nowhere, &["demo", "--dir", &folder], &[]).await;
        assert_exit(&out, 2, &folder);
        assert!(out.stderr.contains(words), "{out}");
    }
}
