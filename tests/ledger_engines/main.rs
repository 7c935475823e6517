//! The ledger's semantics on both engines: the same calls and the same
//! assertions against a SQLite file and against the private PostgreSQL of
//! `scripts/lib/postgres.sh` (each test in a database of its own), so the
//! code above the ledger cannot tell them apart. Then what only the
//! PostgreSQL engine has: its schema runner, its poller lock and fence.
//!
//! Needs the database: run with `scripts/test.sh`, or by hand with
//! `scripts/lib/postgres.sh start`, its env file sourced, and
//! `cargo test --features real-servers --test ledger_engines`.
#![cfg(feature = "real-servers")]

mod history;
#[path = "../pg/mod.rs"]
mod pg;
mod postgres_only;
mod rows;

use std::path::Path;

use popferry::config::{Config, State};
use popferry::ledger::{Ledger, PollOutcome, PollReport};

#[derive(Debug, Clone, Copy)]
pub(crate) enum Engine {
    Sqlite,
    Postgres,
}

/// A ledger opened as a poller opens it, with the `state` it came from.
pub(crate) struct Opened {
    pub(crate) ledger: Ledger,
    pub(crate) state: State,
    _dir: tempfile::TempDir,
}

/// The configuration text of a ledger at `state_lines`, with the one
/// account and relay every configuration needs.
pub(crate) fn config(state_lines: &str, dir: &Path) -> Config {
    let toml = format!(
        "{state_lines}[smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n\n\
         [[account]]\nname = \"alice\"\nhost = \"127.0.0.1\"\nusername = \"alice\"\n\
         password_env = \"UNUSED\"\ndeliver_to = [\"alice@example.org\"]\n"
    );
    Config::from_toml(&toml, &dir.join("popferry.toml")).expect("test config")
}

/// The `state` of a fresh ledger of `engine`, not opened yet.
pub(crate) async fn fresh_state(engine: Engine, test: &str, dir: &Path) -> State {
    let lines = match engine {
        Engine::Sqlite => "state = \"ledger.db\"\n".to_owned(),
        Engine::Postgres => {
            let pg = pg::env();
            let database = pg.fresh_database(test).await;
            pg.state_toml(&database, dir)
        }
    };
    config(&lines, dir).state
}

pub(crate) async fn open(engine: Engine, test: &str) -> Opened {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = fresh_state(engine, test, dir.path()).await;
    let ledger = Ledger::open_state(&state).await.expect("open the ledger");
    Opened {
        ledger,
        state,
        _dir: dir,
    }
}

pub(crate) fn report(outcome: PollOutcome) -> PollReport {
    PollReport {
        outcome,
        listed: 5,
        delivered: 2,
        deleted: 2,
        deferred: 1,
        rejected: 1,
        new_listed: 3,
        error: None,
    }
}

/// Each check once per engine, as `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_engines {
    ($($module:ident::$check:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $check() {
                let opened = super::open(super::Engine::Sqlite, stringify!($check)).await;
                super::$module::$check(&opened).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $check() {
                let opened = super::open(super::Engine::Postgres, stringify!($check)).await;
                super::$module::$check(&opened).await;
            })*
        }
    };
}

on_both_engines!(
    rows::rows_states_and_attempts,
    history::totals_and_the_latest_poll,
    history::quiet_polls_count_and_reset,
    rows::recipients_and_refusals,
    rows::reconcile_keeps_exactly_the_listed_uids,
    rows::imported_uids_and_learned_sizes,
    history::status_snapshot,
    history::a_poll_finishes_once,
);
