//! `popferry status ACCOUNT`: the recent polls, each waiting message with
//! the relay's reply and when it is tried again, and `--json` with every
//! documented field; an unknown account is a usage error naming the file.

mod harness;
mod pop3_server;
mod smtp_receiver;
mod status_cli;

use harness::within;
use popferry::ledger::{Ledger, MessageState};
use serde_json::Value;
use status_cli::{alice, Mailbox};

/// The retry time the ledger holds for `uid`, read after the CLI ran.
async fn retry_at(mailbox: &Mailbox, uid: &str) -> i64 {
    let ledger = Ledger::open(&mailbox.ledger()).expect("ledger");
    let record = ledger.messages("alice").await.expect("read")[uid].clone();
    assert_eq!(record.state, MessageState::Rejected);
    record
        .retry_at
        .expect("a rejected message has a retry time")
}

fn rfc3339(unix: i64) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp(unix).expect("time");
    time.format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

#[tokio::test]
async fn status_account_shows_a_waiting_message_with_its_reason_and_retry_time() {
    within(async {
        let mailbox = Mailbox::start("").await;
        mailbox.add(&["fine"], "");
        mailbox.add(&["refused"], "X-Test-Reject: 554");
        mailbox.fetch().await;
        let at = retry_at(&mailbox, "refused").await;

        let text = mailbox.popferry(&["status", "alice"]).await.ok();
        let line = (text.lines())
            .find(|l| l.trim_start().starts_with("refused,"))
            .unwrap_or_else(|| panic!("no waiting line in {text}"));
        assert!(line.contains("rejected (1 attempt): SMTP relay"), "{line}");
        assert!(
            line.contains("554 5.7.1 message refused; tried again"),
            "{line}"
        );
        assert!(
            line.contains(&format!(
                "tried again at the first poll after {}",
                rfc3339(at)
            )),
            "{line}"
        );
        assert!(text.contains("recent polls, newest first:"), "{text}");

        let document = mailbox.status_json(&["alice"]).await;
        let waiting = &alice(&document)["waiting"][0];
        assert_eq!(waiting["uid"], "refused");
        assert_eq!(waiting["state"], "rejected");
        let reason = waiting["reason"].as_str().expect("a reason");
        assert!(reason.ends_with("554 5.7.1 message refused"), "{reason}");
        assert_eq!(waiting["retry"], "after_retry_at");
        assert_eq!(waiting["retry_at_unix"], at);
        assert_eq!(waiting["retry_at"], rfc3339(at));
    })
    .await;
}

#[tokio::test]
async fn status_account_lists_the_last_ten_polls_newest_first() {
    within(async {
        let mailbox = Mailbox::start("").await;
        for n in 0..12 {
            mailbox.add(&[&format!("m{n}")], "");
            mailbox.fetch().await;
        }
        let document = mailbox.status_json(&["alice"]).await;
        let polls = alice(&document)["recent_polls"].as_array().expect("polls");
        assert_eq!(polls.len(), 10);
        let ids: Vec<i64> = polls
            .iter()
            .map(|p| p["started_at_unix"].as_i64().expect("time"))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] >= w[1]), "{ids:?}");
        assert!(polls
            .iter()
            .all(|p| p["outcome"] == "ok" && p["delivered"] == 1));
    })
    .await;
}

#[tokio::test]
async fn an_unknown_account_is_a_usage_error_naming_the_config() {
    within(async {
        let mailbox = Mailbox::start("").await;
        let ran = mailbox.popferry(&["status", "alice", "bob"]).await;
        assert_eq!(ran.code, Some(2), "{ran:?}");
        let config = mailbox.config().display().to_string();
        assert!(ran.stderr.contains("no account named \"bob\""), "{ran:?}");
        assert!(ran.stderr.contains(&config), "{ran:?}");
        assert!(ran.stdout.is_empty(), "{ran:?}");
    })
    .await;
}

/// The keys of a JSON object, sorted.
fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = (value.as_object().expect("an object").keys())
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn json_has_every_documented_field() {
    within(async {
        let mailbox = Mailbox::start("").await;
        mailbox.add(&["ok"], "");
        mailbox.add(&["no"], "X-Test-Reject: 554");
        mailbox.fetch().await;
        let document = mailbox.status_json(&["alice"]).await;
        assert_eq!(
            keys(&document),
            [
                "accounts",
                "counting_since",
                "counting_since_unix",
                "ledger",
                "ledger_state"
            ]
        );
        assert_eq!(document["ledger_state"], "ok");
        let account = alice(&document);
        assert_eq!(
            keys(account),
            [
                "interval",
                "keep",
                "last_poll",
                "name",
                "on_server",
                "recent_polls",
                "refused_recipients",
                "totals",
                "waiting"
            ]
        );
        assert_eq!(
            keys(&account["totals"]),
            ["deleted", "delivered", "quarantined", "rejected"]
        );
        assert_eq!(
            keys(&account["on_server"]),
            [
                "delivered_not_deleted",
                "quarantined_not_deleted",
                "rejected",
                "waiting"
            ]
        );
        assert_eq!(account["on_server"]["rejected"], 1);
        assert_eq!(
            keys(&account["last_poll"]),
            [
                "deferred",
                "deleted",
                "delivered",
                "empty_polls",
                "error",
                "finished_at",
                "finished_at_unix",
                "listed",
                "new_listed",
                "outcome",
                "quiet_polls",
                "rejected",
                "started_at",
                "started_at_unix"
            ]
        );
        assert_eq!(
            keys(&account["interval"]),
            [
                "adaptive",
                "max_seconds",
                "min_seconds",
                "quiet_polls",
                "seconds"
            ]
        );
        assert_eq!(
            keys(&account["waiting"][0]),
            [
                "attempts",
                "reason",
                "recipients",
                "retry",
                "retry_at",
                "retry_at_unix",
                "size",
                "state",
                "uid"
            ]
        );
        let summary = mailbox.status_json(&[]).await;
        let account = alice(&summary);
        assert!(account.get("recent_polls").is_none(), "{summary}");
        assert!(account.get("waiting").is_none(), "{summary}");
    })
    .await;
}
