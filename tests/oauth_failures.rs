//! A token endpoint that refuses, fails or disappears: clear errors, the
//! mail stays on the server, and the endpoint is not hammered. And a crash
//! right after a rotation loses no refresh token.
#![cfg(feature = "real-servers")]

mod faults;
mod oauth_world;
mod support;
mod token_endpoint;

use std::time::{Duration, Instant};

use faults::tmpfs::{fill_up, Tmpfs};
use oauth_world::World;
use support::link_proxy::{Cut, CutAt, LinkProxy};
use support::popferry::{spawn_popferry, TlsMode};
use token_endpoint::{Rotation, Settings};

#[test]
fn a_revoked_refresh_token_fails_the_account_once_and_says_how_to_sign_in_again() {
    let world = World::new("orevoke", "xoauth2", Settings::default(), 2);
    world.endpoint.revoke_all();
    let out = world.config.fetch();
    assert_eq!(out.code, Some(1), "{out}");
    let text = out.text();
    for needle in ["invalid_grant", "popferry oauth login orevoke", "revoked"] {
        assert!(text.contains(needle), "lacks {needle:?}:\n{out}");
    }
    assert_eq!(world.mailbox.count(), 2, "nothing deleted:\n{out}");
    assert!(world.dumps().is_empty(), "{out}");
    // The next run (cron, a minute later) does not ask the endpoint again
    // with the same refused token.
    let asked = world.endpoint.requests().len();
    let again = world.config.fetch();
    assert_eq!(again.code, Some(1), "{again}");
    assert_eq!(world.endpoint.requests().len(), asked, "{again}");
    // A new sign-in is picked up at once.
    world.sign_in_as(&world.mailbox.user.clone());
    let healed = world.config.fetch();
    assert_eq!(healed.code, Some(0), "{healed}");
    world.assert_all_moved_once(&healed);
}

#[test]
fn an_endpoint_that_is_down_or_failing_is_a_temporary_failure_and_the_mail_stays() {
    let world = World::new("odown", "xoauth2", Settings::default(), 1);
    world
        .endpoint
        .fail_next(1, 503, r#"{"error":"temporarily_unavailable"}"#);
    let out = world.config.fetch();
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.text().contains("not available"), "{out}");
    world
        .endpoint
        .fail_next(1, 502, "<html><body>502 Bad Gateway</body></html>");
    let out = world.config.fetch();
    assert!(out.text().contains("HTTP 502"), "{out}");
    world.endpoint.stop();
    let out = world.config.fetch();
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.text().contains("not available"), "{out}");
    assert_eq!(world.mailbox.count(), 1, "the mail stays:\n{out}");
    world.endpoint.resume();
    let healed = world.config.fetch();
    assert_eq!(healed.code, Some(0), "{healed}");
    world.assert_all_moved_once(&healed);
}

#[test]
fn a_rotated_refresh_token_survives_sigkill_right_after_the_refresh() {
    let settings = Settings {
        rotation: Rotation::Strict,
        ..Settings::default()
    };
    let mut world = World::new("okill", "xoauth2", settings, 1);
    world.config.account().poll_interval = "1s".into();
    let before = std::fs::read_to_string(&world.refresh_token_file).unwrap();
    let path = world.config.write();
    let log = world.config.dir.path().join("run.log");
    let mut daemon = spawn_popferry(&path, &["run"], &log);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&world.refresh_token_file).unwrap() == before {
        assert!(Instant::now() < deadline, "no rotation within 20 s");
        std::thread::sleep(Duration::from_millis(1));
    }
    daemon.0.kill().unwrap();
    daemon.0.wait().unwrap();
    let after = std::fs::read_to_string(&world.refresh_token_file).unwrap();
    let issued: Vec<_> = (world.endpoint.requests().into_iter())
        .filter_map(|r| r.refresh_token)
        .collect();
    assert_eq!(issued, [before.trim()], "one refresh, with the first token");
    assert!(
        !after.trim().is_empty() && after.ends_with('\n'),
        "written whole: {after:?}"
    );
    // Strict rotation voided the old token: only the new one on disk can
    // refresh now. Drop the cached access token (the kill usually lands
    // before it is written) so the next run must refresh.
    let cache = world.refresh_token_file.with_extension("refresh.cache");
    match std::fs::remove_file(&cache) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("{}: {e}", cache.display()),
    }
    let out = world.config.fetch();
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(world.endpoint.refresh_grants(), 2, "{out}");
    assert_eq!(world.mailbox.count(), 0, "{out}");
}

/// Gmail closes an OAuth session when its token expires, even in the
/// middle of a message. Here the link drops halfway through the second
/// RETR and the token has expired by the next poll: that poll refreshes,
/// logs in afresh and moves the rest; nothing is lost or delivered twice.
#[test]
fn a_session_closed_mid_message_at_token_expiry_loses_and_duplicates_nothing() {
    let settings = Settings {
        lifetime: Duration::from_secs(2),
        ..Settings::default()
    };
    let mut world = World::new("omidpoll", "xoauth2", settings, 3);
    let cut = CutAt::new("RETR", 2, Cut::MidReply);
    let proxy = LinkProxy::start(support::real::env().oauth.pop3_port, Some(cut));
    let account = world.config.account();
    account.tls = TlsMode::None;
    account.ca_file = None;
    account.port = proxy.port();
    let cut_short = world.config.fetch();
    assert_eq!(cut_short.code, Some(1), "{cut_short}");
    std::thread::sleep(Duration::from_secs(2));
    let next = world.config.fetch();
    assert_eq!(next.code, Some(0), "{next}");
    assert_eq!(
        world.endpoint.refresh_grants(),
        2,
        "the next poll refreshed:\n{next}"
    );
    world.assert_all_moved_once(&next);
}

/// A full disk where the refresh token lives: the rotated token cannot be
/// written, so popferry keeps it in memory (under strict rotation it is
/// the only valid one), refreshes with it, and writes it once there is
/// space again.
#[test]
fn a_rotated_refresh_token_that_cannot_be_written_is_kept_and_written_later() {
    let settings = Settings {
        lifetime: Duration::from_secs(3),
        rotation: Rotation::Strict,
        ..Settings::default()
    };
    let mut world = World::new("ofull", "xoauth2", settings, 0);
    let disk = Tmpfs::mount("64k");
    let file = disk.path().join("ofull.refresh");
    std::fs::copy(&world.refresh_token_file, &file).unwrap();
    let account = world.config.account();
    account.poll_interval = "1s".into();
    account.extra = account.extra.replace(
        &world.refresh_token_file.display().to_string(),
        &file.display().to_string(),
    );
    let first = std::fs::read_to_string(&file).unwrap();
    let filler = fill_up(disk.path());
    let path = world.config.write();
    let log = world.config.dir.path().join("run.log");
    let daemon = spawn_popferry(&path, &["run"], &log);
    let until = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "{what} within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    until("three refreshes", &|| world.endpoint.refresh_grants() >= 3);
    let statuses: Vec<u16> = world.endpoint.requests().iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|&s| s == 200),
        "each refresh used the valid token: {statuses:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        first,
        "nothing could be written"
    );
    std::fs::remove_file(filler).unwrap();
    until("the rotated token on disk", &|| {
        std::fs::read_to_string(&file).is_ok_and(|now| now != first)
    });
    drop(daemon);
    // Only the newest token works under strict rotation; the one on disk
    // must be it.
    let _ = std::fs::remove_file(file.with_extension("refresh.cache"));
    let out = world.config.fetch();
    assert_eq!(out.code, Some(0), "{out}");
}
