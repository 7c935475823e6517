//! The totals of `popferry status` count what happened since the ledger
//! began, and a quarantined message counts as quarantined, not delivered.

mod harness;
mod pop3_server;
mod smtp_receiver;
mod status_cli;

use harness::within;
use status_cli::{alice, Mailbox};

#[tokio::test]
async fn totals_after_two_fetches_add_up() {
    within(async {
        let mailbox = Mailbox::start("").await;
        mailbox.add(&["a1", "a2", "a3", "a4", "a5"], "");
        mailbox.fetch().await;
        mailbox.add(&["b1", "b2"], "");
        mailbox.fetch().await;
        assert_eq!(mailbox.smtp.accepted().len(), 7);

        let document = mailbox.status_json(&[]).await;
        let account = alice(&document);
        let totals = &account["totals"];
        assert_eq!(
            (&totals["delivered"], &totals["deleted"]),
            (&7.into(), &7.into()),
            "{document}"
        );
        assert_eq!(account["last_poll"]["delivered"], 2);
        let text = mailbox.popferry(&["status"]).await.ok();
        assert!(
            text.contains("totals:     delivered 7, deleted 7, rejected 0, quarantined 0"),
            "{text}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_quarantined_message_counts_as_quarantined_not_delivered() {
    within(async {
        let mailbox = Mailbox::start("quarantine_dir = \"quarantine\"").await;
        mailbox.add(&["good"], "");
        mailbox.add(&["spam"], "X-Test-Reject: 554");
        mailbox.fetch().await;
        assert!(mailbox.pop3.uids().is_empty(), "both may go");
        assert!(mailbox.dir.path().join("quarantine").is_dir());

        let document = mailbox.status_json(&[]).await;
        let totals = &alice(&document)["totals"];
        let expected = serde_json::json!({
            "delivered": 1, "deleted": 2, "rejected": 0, "quarantined": 1
        });
        assert_eq!(totals, &expected, "{document}");
        let text = mailbox.popferry(&["status"]).await.ok();
        assert!(
            text.contains("delivered 1, deleted 2, rejected 0, quarantined 1"),
            "{text}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_poll_that_fails_midway_still_counts_what_it_committed() {
    within(async {
        let mailbox = Mailbox::start("").await;
        mailbox.add(&["a1", "a2"], "");
        mailbox.add(&["a3"], "X-Test-Reject: 421");
        let failed = mailbox.popferry(&["fetch"]).await;
        assert_eq!(failed.code, Some(1), "the relay closed: {failed:?}");
        assert_eq!(mailbox.smtp.accepted().len(), 2, "{failed:?}");

        let document = mailbox.status_json(&[]).await;
        let account = alice(&document);
        assert_eq!(account["last_poll"]["outcome"], "failed", "{document}");
        assert_eq!(
            account["last_poll"]["delivered"], 2,
            "the failed poll's own count of what it committed: {document}"
        );
        assert_eq!(account["totals"]["delivered"], 2, "{document}");
    })
    .await;
}
