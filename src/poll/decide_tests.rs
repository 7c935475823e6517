use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::{
    AuthMethod, Credential, PasswordSource, Pop3Server, Protocol, Secret, SmtpConfig, TlsMode,
    Trust,
};

fn account(keep: bool) -> Account {
    Account {
        name: "alice".into(),
        pop3: Pop3Server {
            host: "pop.example.com".into(),
            port: 995,
            tls: TlsMode::Implicit,
            trust: Trust::default(),
            client_identity: None,
        },
        username: "alice".into(),
        credential: Credential::Password(PasswordSource::Inline(Secret::new("pw".into()))),
        auth: AuthMethod::Auto,
        deliver_to: vec!["alice@example.org".into()],
        multidrop: None,
        keep,
        deli: true,
        poll_interval: Duration::from_secs(60),
        poll_interval_max: None,
        timeout: Duration::from_secs(60),
        max_message_size: 1000,
        quarantine_dir: None,
        smtp: Arc::new(SmtpConfig {
            host: "127.0.0.1".into(),
            port: 25,
            socket: None,
            protocol: Protocol::Smtp,
            tls: TlsMode::None,
            credentials: None,
            trust: Trust::default(),
            client_identity: None,
            envelope_from: None,
            helo_name: None,
            timeout: Duration::from_secs(60),
            max_connections: 1,
        }),
    }
}

fn record(state: MessageState, size: u64, retry_at: Option<i64>) -> MessageRecord {
    MessageRecord {
        uid: "u1".into(),
        size: Some(size),
        state,
        attempts: 1,
        retry_at,
        last_error: None,
        recipients: Vec::new(),
    }
}

const NOW: i64 = 1_000_000;

#[test]
fn new_messages_are_fetched() {
    assert_eq!(decide(None, 10, &account(false), NOW, false), Action::Fetch);
}

#[test]
fn delivered_messages_are_deleted_not_redelivered() {
    for state in [
        MessageState::Delivered,
        MessageState::Deleted,
        MessageState::Quarantined,
    ] {
        let r = record(state, 10, None);
        assert_eq!(
            decide(Some(&r), 10, &account(false), NOW, false),
            Action::Delete
        );
        assert_eq!(
            decide(Some(&r), 10, &account(true), NOW, false),
            Action::Skip
        );
    }
}

#[test]
fn partial_messages_are_fetched_again_even_when_kept() {
    let r = record(MessageState::Partial, 10, None);
    for keep in [false, true] {
        assert_eq!(
            decide(Some(&r), 10, &account(keep), NOW, false),
            Action::Fetch
        );
    }
}

#[test]
fn reused_uid_with_another_size_is_a_new_message() {
    let r = record(MessageState::Delivered, 10, None);
    assert_eq!(
        decide(Some(&r), 11, &account(false), NOW, false),
        Action::Fetch
    );
}

#[test]
fn imported_uid_without_a_size_matches_any_listed_size() {
    let mut r = record(MessageState::Delivered, 0, None);
    r.size = None;
    for size in [1, 10, 999] {
        assert_eq!(
            decide(Some(&r), size, &account(false), NOW, false),
            Action::Delete
        );
        assert_eq!(
            decide(Some(&r), size, &account(true), NOW, false),
            Action::Skip
        );
    }
}

#[test]
fn rejected_messages_wait_for_their_retry_time() {
    let later = record(MessageState::Rejected, 10, Some(NOW + 1));
    assert_eq!(
        decide(Some(&later), 10, &account(false), NOW, false),
        Action::Skip
    );
    let due = record(MessageState::Rejected, 10, Some(NOW));
    assert_eq!(
        decide(Some(&due), 10, &account(false), NOW, false),
        Action::Fetch
    );
    assert_eq!(
        decide(Some(&later), 10, &account(false), NOW, true),
        Action::Fetch
    );
}

#[test]
fn oversized_messages_are_not_fetched() {
    assert_eq!(
        decide(None, 1001, &account(false), NOW, false),
        Action::TooLarge
    );
}

#[test]
fn rejected_retry_backs_off_to_a_day() {
    assert_eq!(retry_at(None, NOW), NOW + 3600);
    let mut r = record(MessageState::Rejected, 10, None);
    r.attempts = 2;
    assert_eq!(retry_at(Some(&r), NOW), NOW + 4 * 3600);
    r.attempts = 30;
    assert_eq!(retry_at(Some(&r), NOW), NOW + 24 * 3600);
}
