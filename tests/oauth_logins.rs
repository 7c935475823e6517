//! XOAUTH2 and OAUTHBEARER logins with tokens from a token endpoint,
//! against the real Dovecot (POP3, JWTs checked locally) and the real
//! Postfix submission server (SASL through that Dovecot), with tokens
//! longer than Postfix's 2048-byte command line.
#![cfg(feature = "real-servers")]

mod oauth_world;
mod support;
mod token_endpoint;

use oauth_world::{spoil_cached_token, World, BIG_TOKEN};
use token_endpoint::Settings;

fn big_tokens() -> Settings {
    Settings {
        min_token_len: BIG_TOKEN,
        ..Settings::default()
    }
}

#[test]
fn xoauth2_reads_pop3_and_sends_through_postfix_with_big_tokens() {
    let mut world = World::new("xo2", "xoauth2", big_tokens(), 3);
    world.relay_through_postfix("xoauth2");
    let out = world.config.fetch();
    assert_eq!(out.code, Some(0), "{out}");
    world.assert_all_moved_once(&out);
    let refreshes = world.endpoint.refresh_grants();
    assert_eq!(refreshes, 1, "one token serves POP3 and SMTP:\n{out}");
}

#[test]
fn oauthbearer_reads_pop3_and_sends_through_postfix_with_big_tokens() {
    let mut world = World::new("obear", "oauthbearer", big_tokens(), 2);
    world.relay_through_postfix("oauthbearer");
    let out = world.config.fetch();
    assert_eq!(out.code, Some(0), "{out}");
    world.assert_all_moved_once(&out);
}

#[test]
fn auto_picks_xoauth2_for_an_account_with_an_oauth2_table() {
    let world = World::new("oauto", "auto", Settings::default(), 1);
    let out = world.config.fetch();
    assert_eq!(out.code, Some(0), "{out}");
    world.assert_all_moved_once(&out);
}

#[test]
fn a_refused_cached_token_is_refreshed_once_and_the_login_retried() {
    let world = World::new("ostale", "xoauth2", Settings::default(), 1);
    // A first fetch caches a good token; then the server stops accepting
    // it (as after an early revocation): the cache must not be trusted.
    let out = world.config.fetch();
    assert_eq!(out.code, Some(0), "{out}");
    spoil_cached_token(&world.refresh_token_file);
    world
        .mailbox
        .add_all(&support::mail::messages_of_size("ostale-2", 1, 500));
    let out = world.config.fetch();
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        world.endpoint.refresh_grants(),
        2,
        "one refresh for the refused token:\n{out}"
    );
    assert_eq!(world.mailbox.count(), 0, "{out}");
}

#[test]
fn a_server_that_refuses_even_a_fresh_token_fails_clearly_after_one_retry() {
    // Tokens for another user: Dovecot refuses them every time.
    let world = World::new("owrong", "xoauth2", Settings::default(), 2);
    world.sign_in_as("somebody-else");
    let out = world.config.fetch();
    assert_eq!(out.code, Some(1), "{out}");
    let text = out.text();
    assert!(text.contains("refused"), "{out}");
    assert!(text.contains("owrong"), "names the account:\n{out}");
    assert!(
        text.contains("is the mailbox address"),
        "says what to check:\n{out}"
    );
    assert_eq!(
        world.endpoint.refresh_grants(),
        1,
        "a fresh token is not refreshed again:\n{out}"
    );
    assert_eq!(world.mailbox.count(), 2, "nothing deleted:\n{out}");
    assert!(world.dumps().is_empty(), "nothing delivered:\n{out}");
}

#[test]
fn the_relay_refreshes_a_refused_cached_token_once_and_sends() {
    let mut world = World::new("osmtpstale", "xoauth2", Settings::default(), 1);
    world.relay_through_postfix("xoauth2");
    // The relay signs in with a refresh token of its own.
    let relay_file = world.config.dir.path().join("relay.refresh");
    let token = world.endpoint.issue_refresh_token(&world.mailbox.user);
    std::fs::write(&relay_file, format!("{token}\n")).unwrap();
    let table = world.config.smtp_table.take().unwrap();
    let own = world.refresh_token_file.display().to_string();
    world.config.smtp_table = Some(table.replace(&own, &relay_file.display().to_string()));
    let out = world.config.fetch();
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        world.endpoint.refresh_grants(),
        2,
        "one per token file:\n{out}"
    );

    spoil_cached_token(&relay_file);
    world
        .mailbox
        .add_all(&support::mail::messages_of_size("osmtpstale-2", 1, 500));
    let out = world.config.fetch();
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        world.endpoint.refresh_grants(),
        3,
        "one refresh for the relay:\n{out}"
    );
    assert_eq!(world.dumps_awaited(2).len(), 2, "{out}");
}
