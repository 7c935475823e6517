//! A popferry configuration with a PostgreSQL `state` of its own, the
//! in-process test POP3 server holding one account's mail, and the test
//! SMTP receiver: what the end-to-end tests of the PostgreSQL ledger run
//! the real binary against.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::harness::{message, uid_of};
use crate::pg;
use crate::pop3_server::{Options, Pop3Server};
use crate::smtp_receiver::SmtpReceiver;
use crate::support::popferry::{run_popferry, RunOutput};

pub struct World {
    pub dir: tempfile::TempDir,
    pub pop3: Pop3Server,
    pub smtp: SmtpReceiver,
    pub config: PathBuf,
    /// The `state` URL, as `status` and `check` show it.
    pub url: String,
}

impl World {
    /// A world whose database is named after `test`.
    pub async fn new(test: &str) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let pg = pg::env();
        let database = pg.fresh_database(test).await;
        let options = Options::default();
        let (user, password) = (options.user.clone(), options.password.clone());
        let pop3 = Pop3Server::start(options).await;
        let smtp = SmtpReceiver::start().await;
        let text = format!(
            "{state}[smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\n\n\
             [[account]]\nname = \"alice\"\nhost = \"127.0.0.1\"\nport = {pop3_port}\n\
             tls = \"none\"\nusername = \"{user}\"\npassword = \"{password}\"\n\
             deliver_to = [\"alice@example.org\"]\npoll_interval = \"1s\"\ntimeout = \"5s\"\n",
            state = pg.state_toml(&database, dir.path()),
            smtp_port = smtp.port(),
            pop3_port = pop3.port(),
        );
        let config = dir.path().join("popferry.toml");
        fs::write(&config, text).expect("write the config");
        fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).expect("chmod");
        let url = format!(
            "postgresql://{}@{}:{}/{database}",
            pg.user, pg.host, pg.port
        );
        World {
            dir,
            pop3,
            smtp,
            config,
            url,
        }
    }

    /// Puts a test message with this uid in the mailbox.
    pub fn add(&self, uid: &str) {
        self.pop3.add(uid, &message(uid, ""));
    }

    /// How often the receiver accepted each uid.
    pub fn accepted(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for offer in self.smtp.accepted() {
            let uid = uid_of(&offer.data).expect("a test message");
            *counts.entry(uid).or_insert(0) += 1;
        }
        counts
    }

    /// The binary run to completion, off the runtime that serves POP3 and
    /// SMTP to it.
    pub async fn run(&self, args: &'static [&'static str]) -> RunOutput {
        let config = self.config.clone();
        tokio::task::spawn_blocking(move || run_popferry(&config, args))
            .await
            .expect("popferry run")
    }
}
