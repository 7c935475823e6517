//! The first-poll guard against the real Dovecot: a kept mailbox the
//! ledger knows nothing of is not delivered wholesale when it lists more
//! than 50 messages, until the user adopts it, imports another tool's
//! state or asks for everything with `fetch --deliver-existing`.
#![cfg(feature = "real-servers")]

mod support;

use std::thread;
use std::time::Duration;

use support::mail::{message, messages_of_size};
use support::popferry::spawn_popferry;
use support::scenario::Scenario;
use support::watch::wait_for_lines;

fn mailbox(name: &str, count: usize, keep: bool) -> Scenario {
    let mut s = Scenario::new(name, |tag| messages_of_size(tag, count, 300));
    s.account().keep = keep;
    s
}

#[test]
fn fifty_one_kept_messages_are_refused_until_deliver_existing() {
    let s = mailbox("guard-51", 51, true);
    let name = s.config.accounts[0].name.clone();
    for round in 1..=2 {
        let out = s.fetch_expecting(&[1], "first poll of 51 kept messages");
        let text = out.text();
        for hint in [
            format!("popferry adopt {name}"),
            format!("popferry import fetchmail|mpop|getmail FILE --account {name}"),
            format!("popferry fetch --deliver-existing {name}"),
        ] {
            assert!(text.contains(&hint), "round {round}: names `{hint}`\n{out}");
        }
        assert!(s.dumps().is_empty(), "round {round}: nothing sent\n{out}");
        s.assert_pop3_holds(51, &out);
    }
    let out = s.config.run(&["fetch", "--deliver-existing", &name]);
    assert_eq!(out.code, Some(0), "{out}");
    s.assert_each_delivered_once();
    s.assert_pop3_holds(51, &out);
    let out = s.fetch_expecting(&[0], "the next poll knows the account");
    s.assert_each_delivered_once();
    s.assert_pop3_holds(51, &out);
}

#[test]
fn fifty_kept_messages_pass_the_guard() {
    let s = mailbox("guard-50", 50, true);
    let out = s.fetch_expecting(&[0], "first poll of 50 kept messages");
    s.assert_each_delivered_once();
    s.assert_pop3_holds(50, &out);
}

#[test]
fn a_deleting_account_is_not_guarded() {
    let s = mailbox("guard-delete", 51, false);
    let out = s.fetch_expecting(&[0], "first poll of 51 messages, keep = false");
    s.assert_each_delivered_once();
    s.assert_pop3_holds(0, &out);
}

#[test]
fn adopt_then_fetch_delivers_only_new_mail() {
    let mut s = mailbox("guard-adopt", 51, true);
    let name = s.config.accounts[0].name.clone();
    let out = s.config.run(&["adopt", &name]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains(&format!(
            "adopted 51 messages of account {name} as delivered, without fetching them; \
             0 already known"
        )),
        "{out}"
    );
    assert!(s.dumps().is_empty(), "adopt sends nothing\n{out}");
    s.assert_pop3_holds(51, &out);

    let out = s.fetch_expecting(&[0], "fetch after adopt");
    assert!(s.dumps().is_empty(), "nothing delivered\n{out}");

    let newer = message(&s.mailbox.user, 51, 300);
    s.mailbox.add(&newer);
    s.messages.push(newer.clone());
    let out = s.fetch_expecting(&[0], "fetch after new mail");
    let dumps = s.dumps();
    assert_eq!(dumps.len(), 1, "only the new message\n{out}");
    assert_eq!(dumps[0].message_id(), Some(newer.message_id));
    s.assert_pop3_holds(52, &out);
}

#[test]
fn the_daemon_refuses_too_and_waits_its_longest_backoff() {
    let mut s = mailbox("guard-daemon", 51, true);
    s.account().poll_interval = "1s".to_owned();
    s.config.daemon = "max_backoff = \"1h\"".to_owned();
    let log = s.config.dir.path().join("run.log");
    let daemon = spawn_popferry(&s.config.write(), &["run"], &log);
    let hint = "popferry adopt guard-daemon";
    wait_for_lines(&log, hint, 1, Duration::from_secs(30));
    // Polled every second, it would have refused three more times by now.
    thread::sleep(Duration::from_secs(3));
    let refusals = wait_for_lines(&log, hint, 1, Duration::ZERO);
    drop(daemon);
    assert_eq!(
        refusals.len(),
        1,
        "one refusal, then the backoff: {refusals:?}"
    );
    assert!(s.dumps().is_empty(), "the daemon sent nothing");
    assert_eq!(s.mailbox.count(), 51);
}
