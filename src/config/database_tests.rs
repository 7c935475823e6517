//! `state` URLs and the `[database]` table.

use std::path::Path;

use super::*;
use crate::config::Config;

const ACCOUNT: &str = "[smtp]\nhost = \"relay\"\n[[account]]\nname = \"a\"\n\
    host = \"pop\"\nusername = \"u\"\npassword_env = \"P\"\ndeliver_to = [\"a@b.c\"]\n";

fn load(head: &str) -> Result<Config, String> {
    Config::from_toml(
        &format!("{head}\n{ACCOUNT}"),
        Path::new("/etc/popferry/p.toml"),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn a_url_state_with_its_table_is_a_database() {
    let config = load(
        "state = \"postgresql://popferry@db.example.org/mail\"\n[database]\n\
         password_file = \"db.pass\"\nca_file = \"ca.pem\"\nmax_connections = 8",
    )
    .unwrap();
    let State::Postgres(database) = config.state else {
        panic!("{:?}", config.state);
    };
    assert_eq!(database.host, DatabaseHost::Tcp("db.example.org".into()));
    assert_eq!((database.port, database.name.as_str()), (5432, "mail"));
    assert_eq!(
        database.password,
        Some(PasswordSource::File("/etc/popferry/db.pass".into()))
    );
    let ca_file = Some(PathBuf::from("/etc/popferry/ca.pem"));
    assert_eq!(database.trust, Trust::Roots { ca_file });
    assert_eq!(database.max_connections, 8);
    let plain = load("state = \"postgres://popferry@db\"").unwrap();
    let State::Postgres(database) = plain.state else {
        panic!("a database");
    };
    assert_eq!((database.password, database.max_connections), (None, 4));
}

#[test]
fn database_mistakes_name_the_line_and_the_fix() {
    let err = load("state = \"ledger.db\"\n[database]\npassword_env = \"X\"").unwrap_err();
    assert!(
        err.contains(":2: [database]: is for a PostgreSQL ledger"),
        "{err}"
    );
    let err = load("state = \"postgresql://u:secret@db/x\"").unwrap_err();
    assert!(err.contains(":1: key `state`: holds a password"), "{err}");
    assert!(!err.contains("secret"), "{err}");
    let err =
        load("state = \"postgresql://u@db/x\"\n[database]\nsslmode = \"disable\"").unwrap_err();
    assert!(err.contains("unknown field `sslmode`"), "{err}");
    let err =
        load("state = \"postgresql://u@%2Frun%2Fpg/x\"\n[database]\nca_file = \"c\"").unwrap_err();
    assert!(err.contains("a Unix socket is local"), "{err}");
    let err = load("state = \"postgresql://u@db/x\"\n[database]\nmax_connections = 0").unwrap_err();
    assert!(err.contains("max_connections"), "{err}");
}

fn tcp(user: &str, host: &str, port: u16, name: &str) -> Url {
    Url {
        user: user.into(),
        host: DatabaseHost::Tcp(host.into()),
        port,
        name: name.into(),
    }
}

#[test]
fn urls_name_user_host_port_and_database() {
    assert_eq!(
        parse_url("postgresql://popferry@db.example.org/mail"),
        Ok(tcp("popferry", "db.example.org", 5432, "mail"))
    );
    assert_eq!(
        parse_url("postgres://p%40x@[::1]:6432"),
        Ok(tcp("p@x", "::1", 6432, "p@x")),
        "the database defaults to the user's name"
    );
    assert_eq!(
        parse_url("postgresql://popferry@%2Frun%2Fpostgresql/popferry"),
        Ok(Url {
            user: "popferry".into(),
            host: DatabaseHost::Socket("/run/postgresql".into()),
            port: 5432,
            name: "popferry".into(),
        })
    );
}

#[test]
fn a_password_or_parameters_in_the_url_are_refused() {
    let err = parse_url("postgresql://popferry:hunter2@db/popferry").unwrap_err();
    assert!(err.contains("password_file"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let err = parse_url("postgresql://popferry@db/popferry?sslmode=disable").unwrap_err();
    assert!(err.contains("[database]"), "{err}");
    assert!(parse_url("postgresql://db/popferry").is_err(), "no user");
    assert!(parse_url("postgresql://u@db:0/x").is_err(), "port 0");
}

#[test]
fn the_url_shown_is_the_one_written() {
    let database = Database {
        host: DatabaseHost::Socket("/run/postgresql".into()),
        port: 5432,
        user: "popferry".into(),
        name: "mail".into(),
        password: None,
        trust: Trust::default(),
        max_connections: 4,
        fleet: crate::config::Fleet::default(),
    };
    let url = database.url();
    assert_eq!(url, "postgresql://popferry@%2Frun%2Fpostgresql:5432/mail");
    let again = parse_url(&url).unwrap();
    assert_eq!(again.host, database.host);
}

#[test]
fn an_inline_database_password_stays_out_of_debug_output() {
    let config = load(
        "state = \"postgresql://popferry@db/popferry\"\n[database]\npassword = \"hunter2-db\"",
    )
    .unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2-db"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
}

#[test]
fn fleet_terms_come_from_the_fleet_table_of_a_database_state() {
    let config =
        load("state = \"postgresql://popferry@db/mail\"\n[fleet]\nlease = \"10s\"\ncapacity = 50")
            .unwrap();
    let State::Postgres(database) = config.state else {
        panic!("a database");
    };
    assert_eq!(database.fleet.lease, Duration::from_secs(10));
    assert_eq!(database.fleet.capacity, 50);
    let plain = load("state = \"postgresql://popferry@db/mail\"").unwrap();
    let State::Postgres(database) = plain.state else {
        panic!("a database");
    };
    assert_eq!(database.fleet, Fleet::default());
}

#[test]
fn fleet_mistakes_name_the_line_and_the_fix() {
    let file = load("state = \"popferry.db\"\n[fleet]\nlease = \"30s\"").unwrap_err();
    assert!(file.contains("[fleet]"), "{file}");
    assert!(file.contains("names a SQLite file"), "{file}");
    let short =
        load("state = \"postgresql://popferry@db/mail\"\n[fleet]\nlease = \"1s\"").unwrap_err();
    assert!(
        short.contains("lease") && short.contains("too short"),
        "{short}"
    );
    let none =
        load("state = \"postgresql://popferry@db/mail\"\n[fleet]\ncapacity = 0").unwrap_err();
    assert!(none.contains("capacity"), "{none}");
    let unknown =
        load("state = \"postgresql://popferry@db/mail\"\n[fleet]\nleases = \"9s\"").unwrap_err();
    assert!(unknown.contains("leases"), "{unknown}");
}
