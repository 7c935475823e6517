//! The private PostgreSQL of `scripts/lib/postgres.sh` (started by
//! `scripts/services.sh`, hence `scripts/test.sh`), for the tests of the
//! PostgreSQL ledger: its `POPFERRY_TEST_PG_*` variables, a fresh database
//! per test (the role has CREATEDB), and the `state` lines that name it.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use popferry::config::Trust;
use tokio_postgres::config::SslMode;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

const HINT: &str = "run scripts/test.sh, or start the database alone with \
                    `scripts/lib/postgres.sh start` and source the env file it names";

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {HINT}"))
}

/// The server, and the role every test connects as.
pub struct Pg {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub ca_file: PathBuf,
    /// `$POPFERRY_TEST_PG_CTL`: the script, for `restart fast`.
    pub ctl: PathBuf,
}

pub fn env() -> Pg {
    let password_file = var("POPFERRY_TEST_PG_PASSWORD_FILE");
    Pg {
        host: var("POPFERRY_TEST_PG_HOST"),
        port: var("POPFERRY_TEST_PG_PORT")
            .parse()
            .expect("POPFERRY_TEST_PG_PORT is a port"),
        user: var("POPFERRY_TEST_PG_USER"),
        password: fs::read_to_string(&password_file)
            .unwrap_or_else(|e| panic!("{password_file}: {e}: {HINT}"))
            .trim_end()
            .to_owned(),
        ca_file: var("POPFERRY_TEST_PG_CA").into(),
        ctl: var("POPFERRY_TEST_PG_CTL").into(),
    }
}

impl Pg {
    /// A connection of the tests' own to `database`, over verified TLS.
    pub async fn connect(&self, database: &str) -> Client {
        let trust = Trust::Roots {
            ca_file: Some(self.ca_file.clone()),
        };
        let tls = popferry::tls::client_config(&trust, None).expect("TLS config");
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .password(&self.password)
            .dbname(database)
            .ssl_mode(SslMode::Require);
        let (client, connection) = config
            .connect(MakeRustlsConnect::new((*tls).clone()))
            .await
            .unwrap_or_else(|e| panic!("connect to {database}: {e}: {HINT}"));
        tokio::spawn(connection);
        client
    }

    /// A new, empty database for one test, named after it and this
    /// process so that parallel tests and reruns never share one.
    pub async fn fresh_database(&self, test: &str) -> String {
        let name = format!("t_{test}_{}", std::process::id());
        let admin = self.connect("popferry").await;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .await
            .expect("drop an old test database");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        name
    }

    /// `state` naming `database`, and the `[database]` table with the
    /// password in a 0600 file in `dir` (popferry refuses a password file
    /// others can read, and the server's copy is 0644 for the tests).
    pub fn state_toml(&self, database: &str, dir: &Path) -> String {
        let password_file = dir.join("pg-password");
        fs::write(&password_file, &self.password).expect("write the password file");
        fs::set_permissions(&password_file, fs::Permissions::from_mode(0o600))
            .expect("chmod the password file");
        format!(
            "state = \"postgresql://{user}@{host}:{port}/{database}\"\n\n\
             [database]\npassword_file = {password:?}\nca_file = {ca:?}\n\n",
            user = self.user,
            host = self.host,
            port = self.port,
            password = password_file.display().to_string(),
            ca = self.ca_file.display().to_string(),
        )
    }
}
