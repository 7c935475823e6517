//! A server that lists one unique-id for several messages, as popa3d does
//! for identical copies (it derives the id from the content; RFC 1939
//! allows it). Byte-identical copies are delivered once, recorded once,
//! and all deleted; copies that differ are all left on the server, said
//! so, and the rest of the mailbox still moves.

mod harness;
mod pop3_server;
mod smtp_receiver;
mod support;

use harness::{message, within, Rig};
use pop3_server::{Extensions, Fault, Options};
use popferry::ledger::MessageState;
use support::popferry::{AccountConfig, TestConfig};

/// Plain RFC 1939; then PIPELINING, where the copies' RETRs and DELEs
/// share the window, with UID-PARAM, where `UID:twin` would be ambiguous;
/// then all the reference server's extensions, DELI deleting each copy at
/// once.
fn servers() -> [Options; 3] {
    let with = |extensions| Options {
        extensions,
        ..Options::default()
    };
    [
        Options::default(),
        with(Extensions {
            pipelining: true,
            uid_param: true,
            ..Extensions::default()
        }),
        with(Extensions::all()),
    ]
}

/// `a`, then `copies` identical messages under `twin`, then `b`.
async fn rig_with_copies(options: Options, copies: usize, extra: &str) -> Rig {
    let rig = Rig::with_server(options, extra).await;
    rig.add("a", "");
    for _ in 0..copies {
        rig.add("twin", "");
    }
    rig.add("b", "");
    rig
}

#[tokio::test]
async fn identical_copies_are_delivered_once_and_every_copy_is_deleted() {
    within(async {
        for options in servers() {
            let rig = rig_with_copies(options, 2, "").await;
            let report = rig.poll().await.expect("poll");
            assert_eq!((report.listed, report.delivered), (4, 3), "{report:?}");
            assert_eq!((report.deleted, report.rejected), (4, 0), "{report:?}");
            rig.assert_delivered_once(&["a", "twin", "b"]);
            assert_eq!(rig.offered_count("twin"), 1);
            assert_eq!(rig.pop3.commands("RETR"), 4, "every copy read");
            assert!(rig.pop3.maildrop().is_empty(), "{:?}", rig.pop3.uids());
            let record = rig.record("twin").await.expect("twin recorded");
            assert_eq!(record.state, MessageState::Deleted);
            assert_eq!(record.attempts, 1, "recorded once");
        }
    })
    .await;
}

#[tokio::test]
async fn three_identical_copies_are_delivered_once_and_all_three_deleted() {
    within(async {
        for options in servers() {
            let rig = rig_with_copies(options, 3, "").await;
            let report = rig.poll().await.expect("poll");
            assert_eq!((report.delivered, report.deleted), (3, 5), "{report:?}");
            rig.assert_delivered_once(&["a", "twin", "b"]);
            assert_eq!(rig.pop3.commands("RETR"), 5);
            assert_eq!(rig.pop3.commands("DELE") + rig.pop3.commands("DELI"), 5);
            assert!(rig.pop3.maildrop().is_empty(), "{:?}", rig.pop3.uids());
        }
    })
    .await;
}

/// Two copies of one size whose bytes differ (the digests tell), and two
/// whose LIST sizes already differ (not read at all).
#[tokio::test]
async fn differing_copies_are_all_left_and_the_other_messages_move() {
    within(async {
        for (variants, retrs) in [
            (["X-Variant: 1", "X-Variant: 2"], 4),
            (["", "X-Longer: yes"], 2),
        ] {
            for options in servers() {
                let rig = Rig::with_server(options, "").await;
                rig.add("a", "");
                let twins: Vec<Vec<u8>> = variants.iter().map(|v| message("twin", v)).collect();
                for twin in &twins {
                    rig.pop3.add("twin", twin);
                }
                rig.add("b", "");

                let report = rig.poll().await.expect("the rest of the mailbox moves");
                assert_eq!((report.delivered, report.deleted), (2, 2), "{report:?}");
                assert_eq!(report.rejected, 1, "{report:?}");
                rig.assert_delivered_once(&["a", "b"]);
                assert_eq!(rig.offered_count("twin"), 0, "neither twin relayed");
                assert_eq!(rig.pop3.commands("RETR"), retrs);
                let left: Vec<Vec<u8>> = rig.pop3.maildrop().into_iter().map(|m| m.bytes).collect();
                assert_eq!(left, twins, "both twins stay");
                let record = rig.record("twin").await.expect("twin recorded");
                assert_eq!(record.state, MessageState::Rejected);
                let reason = record.last_error.unwrap_or_default();
                assert!(
                    reason.contains("different messages under one unique-id"),
                    "{reason}"
                );
                assert!(reason.contains("(messages 2, 3)"), "{reason}");

                // Left alone until the retry time, not read every poll.
                let again = rig.poll().await.expect("second poll");
                assert_eq!((again.delivered, again.rejected), (0, 0), "{again:?}");
                assert_eq!(rig.pop3.commands("RETR"), retrs);
                assert_eq!(rig.pop3.maildrop().len(), 2);
            }
        }
    })
    .await;
}

/// The deletions of the copies are lost with the QUIT: the next poll finds
/// the delivery on record, reads the copies again only to compare them
/// (identical bytes are what shows each is the delivered message) and
/// deletes every one without delivering it again.
#[tokio::test]
async fn copies_left_by_a_lost_quit_are_deleted_without_redelivery() {
    within(async {
        // With DELI nothing waits for the QUIT.
        for options in servers().into_iter().filter(|o| !o.extensions.deli) {
            let rig = rig_with_copies(options, 3, "").await;
            rig.pop3.set_fault(Some(Fault::CloseAfter { verb: "QUIT" }));
            rig.poll().await.expect_err("a closed QUIT fails the poll");
            assert_eq!(rig.pop3.faults_fired(), 1);
            rig.assert_delivered_once(&["a", "twin", "b"]);

            let retrs = rig.pop3.commands("RETR");
            let second = rig.poll().await.expect("second poll");
            assert_eq!(second.delivered, 0, "{second:?}");
            assert_eq!(rig.pop3.commands("RETR"), retrs + 3, "the copies compared");
            assert!(rig.pop3.maildrop().is_empty(), "{:?}", rig.pop3.uids());
            rig.assert_delivered_once(&["a", "twin", "b"]);
            assert_eq!(rig.smtp.offers().len(), 3, "nothing offered again");
        }
    })
    .await;
}

/// A delivered message left by a closed QUIT, and then `newcomer` under
/// its unique-id: the delete-only path must not take the newcomer for a
/// copy of what the ledger has, so neither is deleted and the delivery
/// stays on record.
async fn newcomer_joining_a_delivered_uid_deletes_neither(newcomer: Vec<u8>) {
    let rig = Rig::start("").await;
    rig.add("twin", "");
    rig.pop3.set_fault(Some(Fault::CloseAfter { verb: "QUIT" }));
    rig.poll().await.expect_err("a closed QUIT fails the poll");
    rig.pop3.add("twin", &newcomer);

    let report = rig.poll().await.expect("second poll");
    assert_eq!((report.delivered, report.deleted), (0, 0), "{report:?}");
    assert_eq!(rig.pop3.maildrop().len(), 2, "{:?}", rig.pop3.uids());
    assert_eq!(rig.pop3.commands("DELE"), 1, "only the first poll's");
    assert_eq!(rig.accepted_count("twin"), 1);
    let record = rig.record("twin").await.expect("twin recorded");
    assert_eq!(
        record.state,
        MessageState::Delivered,
        "the delivery stays on record"
    );
}

#[tokio::test]
async fn a_different_message_joining_a_delivered_uid_deletes_neither() {
    within(newcomer_joining_a_delivered_uid_deletes_neither(message(
        "twin",
        "X-Longer: yes",
    )))
    .await;
}

/// The same, with a newcomer of the very same size: only its bytes tell
/// it apart, so the copies must be read before any is deleted.
#[tokio::test]
async fn a_same_size_different_message_joining_a_delivered_uid_deletes_neither() {
    let mut newcomer = message("twin", "");
    let body = newcomer.windows(4).position(|w| w == b"Body").unwrap();
    newcomer[body] = b'b';
    within(newcomer_joining_a_delivered_uid_deletes_neither(newcomer)).await;
}

#[tokio::test]
async fn keep_mode_delivers_identical_copies_once_over_two_fetches() {
    within(async {
        for options in servers() {
            let rig = rig_with_copies(options, 2, "keep = true").await;
            let first = rig.poll().await.expect("first poll");
            assert_eq!((first.delivered, first.deleted), (3, 0), "{first:?}");
            let second = rig.poll().await.expect("second poll");
            assert_eq!((second.delivered, second.deleted), (0, 0), "{second:?}");
            rig.assert_delivered_once(&["a", "twin", "b"]);
            assert_eq!(rig.pop3.uids(), ["a", "twin", "twin", "b"], "all kept");
            assert_eq!(rig.pop3.commands("RETR"), 4, "read in the first poll only");
            let record = rig.record("twin").await.expect("twin recorded");
            assert_eq!(
                (record.state, record.attempts),
                (MessageState::Delivered, 1)
            );
        }
    })
    .await;
}

/// What an operator sees: `popferry fetch` warns naming the uid and the
/// message numbers, and `status` counts the group as not moved.
#[tokio::test]
async fn fetch_warns_of_differing_copies_and_status_shows_them_not_moved() {
    let rig = Rig::start("").await;
    rig.add("a", "");
    rig.pop3.add("twin", &message("twin", "X-Variant: 1"));
    rig.pop3.add("twin", &message("twin", "X-Variant: 2"));
    let config = TestConfig {
        dir: tempfile::tempdir().expect("temp dir"),
        smtp_port: rig.smtp.port(),
        smtp_table: None,
        daemon: String::new(),
        accounts: vec![AccountConfig::plain(
            "alice",
            rig.pop3.port(),
            "alice",
            "secret",
        )],
    };
    let fetched = tokio::task::spawn_blocking(move || (config.fetch(), config))
        .await
        .expect("fetch");
    let (fetch, config) = fetched;
    let text = fetch.text();
    assert_eq!(fetch.code, Some(0), "{fetch}");
    let warning = text
        .lines()
        .find(|l| l.contains("different messages under one unique-id"))
        .unwrap_or_else(|| panic!("no warning: {fetch}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains("twin") && warning.contains("(messages 2, 3)"),
        "{warning}"
    );
    assert!(fetch.stdout.contains("1 delivered"), "{fetch}");
    assert!(fetch.stdout.contains("1 rejected"), "{fetch}");
    assert_eq!(rig.pop3.uids(), ["twin", "twin"]);

    let status = tokio::task::spawn_blocking(move || config.status())
        .await
        .expect("status");
    assert_eq!(status.code, Some(0), "{status}");
    assert!(status.stdout.contains("1 rejected"), "last poll: {status}");
    assert!(
        status.stdout.contains("rejected 1"),
        "in the ledger: {status}"
    );
}
