//! RFC 2449 PIPELINING: where the server offers it, UIDL with LIST and the
//! RETRs and DELEs go out ahead of their replies, in a window bounded in
//! bytes as well as commands; where it does not, popferry waits for every
//! reply. Either way each message arrives once and is deleted only after
//! its delivery is recorded.

mod harness;
mod pop3_server;
mod smtp_receiver;

use harness::{message, within, Rig};
use pop3_server::{Extensions, Options};
use popferry::ledger::MessageState;
use popferry::poll::FETCH_AHEAD;

fn pipelining() -> Options {
    Options {
        extensions: Extensions {
            pipelining: true,
            ..Extensions::default()
        },
        ..Options::default()
    }
}

fn uids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("p{i:03}")).collect()
}

#[tokio::test]
async fn a_pipelining_server_gets_commands_ahead_and_every_message_once() {
    within(async {
        let rig = Rig::with_server(pipelining(), "").await;
        let uids = uids(40);
        for uid in &uids {
            rig.add(uid, "");
        }
        let report = rig.poll().await.expect("poll");
        assert_eq!((report.delivered, report.deleted), (40, 40), "{report:?}");
        assert!(rig.pop3.maildrop().is_empty());
        let uids: Vec<&str> = uids.iter().map(String::as_str).collect();
        rig.assert_delivered_once(&uids);
        for uid in &uids {
            let record = rig.record(uid).await.expect("recorded");
            assert_eq!(record.state, MessageState::Deleted, "{uid}");
        }
        assert!(
            rig.pop3.most_retrs_ahead() > 1,
            "RETRs were not pipelined (most ahead: {})",
            rig.pop3.most_retrs_ahead()
        );
        assert_eq!(rig.pop3.commands("RETR"), 40, "each message fetched once");
    })
    .await;
}

#[tokio::test]
async fn without_pipelining_every_command_waits_for_its_reply() {
    within(async {
        let rig = Rig::start("").await;
        let uids = uids(12);
        for uid in &uids {
            rig.add(uid, "");
        }
        let report = rig.poll().await.expect("poll");
        assert_eq!(report.delivered, 12, "{report:?}");
        assert!(rig.pop3.maildrop().is_empty());
        let uids: Vec<&str> = uids.iter().map(String::as_str).collect();
        rig.assert_delivered_once(&uids);
        assert_eq!(
            rig.pop3.most_commands_ahead(),
            0,
            "a command was sent before the previous reply"
        );
    })
    .await;
}

#[tokio::test]
async fn large_messages_are_requested_ahead_only_within_the_byte_window() {
    within(async {
        let rig = Rig::with_server(pipelining(), "").await;
        const SIZE: usize = 3 * 1024 * 1024;
        let uids = uids(5);
        for uid in &uids {
            let mut bytes = message(uid, "");
            let line = [b"x".repeat(998), b"\r\n".to_vec()].concat();
            while bytes.len() < SIZE {
                bytes.extend_from_slice(&line);
            }
            rig.pop3.add(uid, &bytes);
        }
        let report = rig.poll().await.expect("poll");
        assert_eq!(report.delivered, 5, "{report:?}");
        assert!(rig.pop3.maildrop().is_empty());
        let uids: Vec<&str> = uids.iter().map(String::as_str).collect();
        rig.assert_delivered_once(&uids);
        // Requested and not yet recorded stays within FETCH_AHEAD: the one
        // being read plus what fits beside it.
        let fit = usize::try_from(FETCH_AHEAD).unwrap() / SIZE;
        assert!(fit >= 2, "the test needs room for two messages");
        assert!(
            rig.pop3.most_retrs_ahead() < fit,
            "{} RETRs waited behind the one being answered; at most {} fit in {FETCH_AHEAD} bytes",
            rig.pop3.most_retrs_ahead(),
            fit
        );
    })
    .await;
}
