//! `popferry oauth login`: the device flow and the browser flow with PKCE
//! against the test token endpoint, then a fetch with the refresh token
//! they wrote; and `popferry oauth status`.
#![cfg(feature = "real-servers")]

mod oauth_world;
mod support;
mod token_endpoint;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use oauth_world::World;
use support::popferry::popferry_command;
use token_endpoint::client::browse;
use token_endpoint::Settings;

fn signed_out(name: &str) -> World {
    let world = World::new(name, "xoauth2", Settings::default(), 1);
    std::fs::remove_file(&world.refresh_token_file).unwrap();
    world
}

#[test]
fn the_device_flow_writes_a_refresh_token_that_the_next_fetch_uses() {
    let world = signed_out("odevice");
    let out = world.config.fetch();
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.text().contains("popferry oauth login odevice"), "{out}");

    let path = world.config.write();
    let mut login = popferry_command(&path, &["oauth", "login", "odevice", "--flow", "device"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(login.stdout.take().unwrap()).lines();
    let prompt = lines.next().unwrap().unwrap();
    let codes = world.endpoint.pending_user_codes();
    assert_eq!(codes.len(), 1, "{prompt}");
    assert!(prompt.contains(&codes[0]), "the code is shown: {prompt}");
    assert!(
        prompt.contains("http://127.0.0.1"),
        "the URL is shown: {prompt}"
    );
    // The user takes a moment: popferry polls, pending, until approval.
    std::thread::sleep(Duration::from_millis(1500));
    world
        .endpoint
        .approve_device(&codes[0], &world.mailbox.user);
    let status = login.wait().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(status.success(), "{prompt}\n{rest:?}");
    assert!(std::fs::metadata(&world.refresh_token_file).is_ok());

    let out = world.config.fetch();
    assert_eq!(out.code, Some(0), "{out}");
    world.assert_all_moved_once(&out);
    assert_eq!(
        world.endpoint.refresh_grants(),
        0,
        "the sign-in's access token is used:\n{out}"
    );
}

#[test]
fn a_declined_device_sign_in_says_so_and_writes_nothing() {
    let world = signed_out("odeny");
    let path = world.config.write();
    let login = popferry_command(&path, &["oauth", "login", "odeny", "--flow", "device"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(code) = world.endpoint.pending_user_codes().pop() {
            break code;
        }
        assert!(Instant::now() < deadline, "no device code requested");
        std::thread::sleep(Duration::from_millis(50));
    };
    world.endpoint.deny_device(&code);
    let out = login.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("access_denied"), "{stderr}");
    assert!(std::fs::metadata(&world.refresh_token_file).is_err());
}

#[test]
fn the_browser_flow_with_pkce_writes_a_refresh_token() {
    let world = signed_out("obrowser");
    world.endpoint.auto_approve(&world.mailbox.user);
    let path = world.config.write();
    let mut login = popferry_command(&path, &["oauth", "login", "obrowser", "--flow", "browser"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(login.stdout.take().unwrap()).lines();
    let url = (&mut lines)
        .map_while(Result::ok)
        .find(|line| line.starts_with("http"))
        .expect("an authorization URL");
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let (status, page) = browse(&url);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("signed in"), "{page}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(login.wait().unwrap().success(), "{rest:?}");
    assert!(rest.iter().any(|l| l.starts_with("Signed in")), "{rest:?}");

    let out = world.config.fetch();
    assert_eq!(out.code, Some(0), "{out}");
    world.assert_all_moved_once(&out);
}

#[test]
fn oauth_status_shows_the_token_file_expiry_last_refresh_and_last_error() {
    let world = World::new("ostatus", "xoauth2", Settings::default(), 1);
    let before = world.config.run(&["oauth", "status"]);
    assert!(before.text().contains("no access token cached"), "{before}");
    assert_eq!(world.config.fetch().code, Some(0));
    let after = world.config.run(&["oauth", "status"]);
    let text = after.text();
    assert!(text.contains("valid until"), "{after}");
    assert!(text.contains("(1 so far)"), "{after}");
    assert!(!text.contains("eyJ"), "no token is shown:\n{after}");
    world.endpoint.revoke_all();
    std::fs::remove_file(world.refresh_token_file.with_extension("refresh.cache")).unwrap();
    assert_eq!(world.config.fetch().code, Some(1));
    let failed = world.config.run(&["oauth", "status"]);
    assert!(failed.text().contains("last error"), "{failed}");
    assert!(failed.text().contains("invalid_grant"), "{failed}");
}

#[test]
fn a_sign_in_whose_token_could_not_be_kept_fails_before_anyone_consents() {
    let mut world = signed_out("onofolder");
    let missing = world.config.dir.path().join("missing");
    let unreachable = missing.join("onofolder.refresh");
    let account = world.config.account();
    account.extra = account.extra.replace(
        &world.refresh_token_file.display().to_string(),
        &unreachable.display().to_string(),
    );
    // A user who would consent at once if asked.
    let endpoint = &world.endpoint;
    let done = std::sync::atomic::AtomicBool::new(false);
    let out = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for code in endpoint.pending_user_codes() {
                    endpoint.approve_device(&code, "onofolder");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let out = (world.config).run(&["oauth", "login", "onofolder", "--flow", "device"]);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    });
    assert_eq!(out.code, Some(1), "{out}");
    let text = out.text();
    assert!(text.contains(&missing.display().to_string()), "{out}");
    assert!(text.contains("must exist"), "says what to fix:\n{out}");
    assert_eq!(text.matches("No such file").count(), 1, "once:\n{out}");
    assert!(
        !text.contains("enter the code"),
        "no sign-in offered:\n{out}"
    );
    assert!(endpoint.requests().is_empty(), "{out}");
}

#[test]
fn oauth_login_for_an_account_without_a_token_table_is_a_usage_error_and_status_says_how_to_sign_in(
) {
    let world = signed_out("ousage");
    let unknown = world.config.run(&["oauth", "login", "nosuch"]);
    assert_eq!(unknown.code, Some(2), "{unknown}");
    assert!(unknown.text().contains("(it has: ousage)"), "{unknown}");
    let no_table = world.config.run(&["oauth", "login", "ousage", "--smtp"]);
    assert_eq!(no_table.code, Some(2), "{no_table}");
    assert!(
        no_table.text().contains("has no [smtp.oauth2] table"),
        "{no_table}"
    );
    let status = world.config.run(&["oauth", "status"]);
    assert_eq!(status.code, Some(0), "{status}");
    assert!(
        status
            .text()
            .contains("sign in with `popferry oauth login ousage`"),
        "{status}"
    );
    assert!(world.endpoint.requests().is_empty());
}

#[test]
fn before_the_first_sign_in_fetch_says_to_sign_in_even_if_the_folder_is_missing() {
    let mut world = signed_out("onofolder");
    let missing = world
        .config
        .dir
        .path()
        .join("not-made-yet/onofolder.refresh");
    let account = world.config.account();
    account.extra = account.extra.replace(
        &world.refresh_token_file.display().to_string(),
        &missing.display().to_string(),
    );
    let out = world.config.fetch();
    assert_eq!(out.code, Some(1), "{out}");
    let text = out.text();
    assert!(text.contains("no refresh token yet"), "{out}");
    assert!(text.contains("popferry oauth login onofolder"), "{out}");
    assert!(!text.contains(".lock"), "the sign-in comes first:\n{out}");
}
