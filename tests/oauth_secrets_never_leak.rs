//! OAuth2 secrets are secrets like passwords: no access token, refresh
//! token or client secret appears in anything popferry prints at the most
//! verbose level (every crate at trace, HTTP and TLS included), in the
//! ledger, or in `oauth status` — on success, after a rotation, and when
//! the server and the token endpoint refuse.
#![cfg(feature = "real-servers")]

mod oauth_world;
mod support;
mod token_endpoint;

use std::os::unix::fs::PermissionsExt as _;

use oauth_world::World;
use support::popferry::popferry_command;
use token_endpoint::{Rotation, Settings};

const CLIENT_SECRET: &str = "client-secret-5e1f0c-never-print-me";

fn traced(world: &World, args: &[&str]) -> String {
    let path = world.config.write();
    let mut command = popferry_command(&path, args);
    command.arg("-vv").env("RUST_LOG", "trace");
    let out = command.output().expect("run popferry");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn no_oauth_secret_is_printed_or_stored_in_the_ledger() {
    let settings = Settings {
        rotation: Rotation::Strict,
        client_secret: Some(CLIENT_SECRET.into()),
        ..Settings::default()
    };
    let mut world = World::new("oleak", "xoauth2", settings, 2);
    let secret_file = world.config.dir.path().join("client.secret");
    std::fs::write(&secret_file, CLIENT_SECRET).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let line = format!("client_secret_file = \"{}\"\n", secret_file.display());
    world.config.account().extra += &line;
    world.relay_through_postfix("oauthbearer");
    if let Some(smtp) = world.config.smtp_table.as_mut() {
        smtp.push_str(&line);
    }

    let mut printed = traced(&world, &["fetch"]);
    assert!(
        printed.contains("refreshed"),
        "the run did refresh:\n{printed}"
    );
    printed += &traced(&world, &["oauth", "status"]);
    printed += &traced(&world, &["status"]);
    // A refused token, then a refused refresh token.
    world.sign_in_as("someone-else");
    std::fs::remove_file(world.refresh_token_file.with_extension("refresh.cache")).unwrap();
    printed += &traced(&world, &["fetch"]);
    world.endpoint.revoke_all();
    std::fs::remove_file(world.refresh_token_file.with_extension("refresh.cache")).unwrap();
    printed += &traced(&world, &["fetch"]);
    assert!(
        printed.contains("invalid_grant"),
        "the refusal was provoked:\n{printed}"
    );

    let ledger = std::fs::read(world.config.dir.path().join("popferry.db")).unwrap();
    let ledger = String::from_utf8_lossy(&ledger);
    let mut needles: Vec<String> = world.minted.lock().unwrap().clone();
    assert!(needles.len() >= 2, "tokens were issued");
    needles.extend(
        world
            .endpoint
            .requests()
            .into_iter()
            .filter_map(|r| r.refresh_token),
    );
    needles.push(
        std::fs::read_to_string(&world.refresh_token_file)
            .unwrap()
            .trim()
            .to_owned(),
    );
    needles.push(CLIENT_SECRET.to_owned());
    for needle in &needles {
        // A JWT's header is the same for every token; its signature part
        // is what makes it secret.
        let secret_part = needle.rsplit('.').next().unwrap_or(needle);
        assert!(
            !printed.contains(secret_part),
            "printed a secret: {secret_part}"
        );
        assert!(
            !ledger.contains(secret_part),
            "ledger holds a secret: {secret_part}"
        );
    }
}
