//! Within one run, fresh logins to a server ask CAPA once and then log in
//! with what it answered, with STLS too (the upgrade itself is never
//! skipped); a login that fails makes the next one ask again, and a new
//! run asks afresh.

mod harness;
mod pop3_server;
mod smtp_receiver;
mod support;
mod tls_peer;

use harness::{within, Rig};
use pop3_server::{Fault, Options, StlsFront};
use popferry::config::TlsMode;
use popferry::poll::{PollError, PollOptions};
use popferry::tls::Trust;
use tls_peer::{acceptor, Leaf};

/// A server whose CAPA lists SASL PLAIN, which `auth = "auto"` picks over
/// USER/PASS, so a login shows whether it had the listing.
fn lists_sasl() -> Options {
    Options {
        capabilities: ["USER", "UIDL", "SASL PLAIN"].map(str::to_owned).to_vec(),
        ..Options::default()
    }
}

#[tokio::test]
async fn fresh_logins_in_one_run_ask_capa_once() {
    within(async {
        let rig = Rig::with_server(lists_sasl(), "").await;
        let run = PollOptions::default();
        for i in 0..4 {
            rig.add(&format!("m{i}"), "");
            rig.poll_with(&run).await.expect("poll");
        }
        assert_eq!(rig.pop3.logins(), 4);
        assert_eq!(
            rig.pop3.commands("CAPA"),
            1,
            "asked at the first login only"
        );
        assert_eq!(
            (rig.pop3.commands("AUTH"), rig.pop3.commands("USER")),
            (4, 0),
            "every login used the SASL mechanism the one CAPA listed"
        );
        rig.assert_delivered_once(&["m0", "m1", "m2", "m3"]);

        rig.poll_with(&PollOptions::default()).await.expect("poll");
        assert_eq!(rig.pop3.commands("CAPA"), 2, "a new run asks again");
    })
    .await;
}

#[tokio::test]
async fn a_failed_login_makes_the_next_login_ask_again() {
    within(async {
        let rig = Rig::with_server(lists_sasl(), "").await;
        let run = PollOptions::default();
        rig.poll_with(&run).await.expect("first poll");
        rig.poll_with(&run).await.expect("second poll");
        assert_eq!(rig.pop3.commands("CAPA"), 1);

        rig.pop3.set_fault(Some(Fault::RefuseLogin));
        let refused = rig.poll_with(&run).await.expect_err("the login is refused");
        assert!(matches!(refused, PollError::Pop3(_)), "{refused:?}");
        assert_eq!(rig.pop3.faults_fired(), 1);
        assert_eq!(
            rig.pop3.commands("CAPA"),
            1,
            "the refused login used the answer"
        );

        rig.add("after", "");
        rig.poll_with(&run).await.expect("poll after the refusal");
        assert_eq!(
            rig.pop3.commands("CAPA"),
            2,
            "asked again after the refusal"
        );
        rig.poll_with(&run).await.expect("poll");
        assert_eq!(rig.pop3.commands("CAPA"), 2, "and remembered again");
        rig.assert_delivered_once(&["after"]);
    })
    .await;
}

#[tokio::test]
async fn starttls_logins_upgrade_every_time_but_ask_capa_once() {
    within(async {
        let mut rig = Rig::with_server(lists_sasl(), "").await;
        let leaf = Leaf::self_signed(&["localhost"]);
        let front = StlsFront::start(&rig.pop3, acceptor(&leaf, None)).await;
        let pop3 = &mut rig.account.pop3;
        pop3.port = front.port();
        pop3.tls = TlsMode::StartTls;
        pop3.trust = Trust::Pinned(leaf.fingerprint().parse().expect("fingerprint"));

        let run = PollOptions::default();
        for i in 0..3 {
            rig.add(&format!("m{i}"), "");
            rig.poll_with(&run).await.expect("poll over STLS");
        }
        assert_eq!(front.upgrades(), 3, "every login upgraded the link");
        assert_eq!(front.capas_in_clear(), 1, "CAPA before STLS, once");
        assert_eq!(rig.pop3.commands("CAPA"), 1, "CAPA after STLS, once");
        assert_eq!(rig.pop3.commands("AUTH"), 3);
        rig.assert_delivered_once(&["m0", "m1", "m2"]);
    })
    .await;
}
