//! A fleet for the tests of issue 16: several `popferry run` processes
//! sharing one PostgreSQL ledger (a fresh database per test), polling
//! hundreds of accounts on one in-process test POP3 server (`any_user`:
//! every user name logs in to a mailbox of its own) and delivering to one
//! in-process SMTP receiver, whose markers tell how often each message
//! arrived.
//!
//! Lease times are short (a few seconds) so each scenario runs in
//! seconds; the lease table is read straight from the database, which is
//! the authority on who holds what.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::harness::{message, uid_of};
use crate::pg::{self, Pg};
use crate::pop3_server::{Extensions, Options, Pop3Server};
use crate::smtp_receiver::SmtpReceiver;
use crate::support::popferry::{spawn_popferry, KillOnDrop};

/// The shape of one fleet.
pub struct Plan {
    pub accounts: usize,
    pub lease: Duration,
    pub interval: Duration,
    /// Refuse a second session on a mailbox with `[IN-USE]` and end silent
    /// sessions, as a real server would for a frozen client.
    pub lock_maildrops: bool,
    /// `[daemon] max_connections_per_server`: the whole fleet's cap.
    pub per_server: usize,
    /// The server offers SLEE-WAKE, so sessions are parked between polls.
    pub pooled: bool,
}

impl Default for Plan {
    fn default() -> Plan {
        Plan {
            accounts: 30,
            lease: Duration::from_secs(3),
            interval: Duration::from_secs(1),
            lock_maildrops: false,
            // Enough that the tests of leases are not held up by slots.
            per_server: 32,
            pooled: false,
        }
    }
}

pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub pop3: Pop3Server,
    pub smtp: SmtpReceiver,
    pub pg: Pg,
    /// Connected to the test's database, for the lease table.
    pub db: Client,
    pub plan: Plan,
    pub instances: Vec<Instance>,
    pub database: String,
    added: usize,
}

/// One `popferry run` of the fleet.
pub struct Instance {
    pub process: KillOnDrop,
    pub log: PathBuf,
}

impl Instance {
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.process.0.id()
    }
}

/// The user name, account name and mailbox of account `i`.
pub fn user(i: usize) -> String {
    format!("user{i:03}")
}

impl Fleet {
    pub async fn new(test: &str, plan: Plan) -> Fleet {
        let dir = tempfile::tempdir().expect("temp dir");
        let pg = pg::env();
        let database = pg.fresh_database(test).await;
        let db = pg.connect(&database).await;
        let pop3 = Pop3Server::start(Options {
            any_user: true,
            lock_maildrops: plan.lock_maildrops,
            autologout: plan.lock_maildrops.then_some(Duration::from_secs(2)),
            extensions: Extensions {
                sleep_wake: plan.pooled,
                ..Extensions::default()
            },
            ..Options::default()
        })
        .await;
        let smtp = SmtpReceiver::start().await;
        let fleet = Fleet {
            dir,
            pop3,
            smtp,
            pg,
            db,
            plan,
            instances: Vec::new(),
            database,
            added: 0,
        };
        fleet.write_config("popferry.toml", fleet.pop3.port());
        fleet
    }

    /// Writes a config of every account on the POP3 server at `port` (the
    /// server itself, or a proxy in front of it).
    fn write_config(&self, name: &str, port: u16) -> PathBuf {
        let password = Options::default().password;
        let mut text = self.pg.state_toml(&self.database, self.dir.path());
        text.push_str(&format!(
            "[fleet]\nlease = \"{}ms\"\n\n\
             [daemon]\nmax_logins_per_second = 1000\nshutdown_timeout = \"5s\"\n\
             max_connections_per_server = {}\n\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\n",
            self.plan.lease.as_millis(),
            self.plan.per_server,
            self.smtp.port()
        ));
        for i in 0..self.plan.accounts {
            text.push_str(&format!(
                "[[account]]\nname = \"{user}\"\nhost = \"127.0.0.1\"\nport = {port}\n\
                 tls = \"none\"\nusername = \"{user}\"\npassword = \"{password}\"\n\
                 deliver_to = [\"{user}@example.org\"]\npoll_interval = \"{}ms\"\n\
                 timeout = \"5s\"\n\n",
                self.plan.interval.as_millis(),
                user = user(i),
            ));
        }
        let path = self.dir.path().join(name);
        fs::write(&path, text).expect("write the config");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    }

    /// Starts one more instance, on the server itself or, with `port`, on
    /// a proxy in front of it; returns its index.
    pub fn spawn(&mut self, port: Option<u16>) -> usize {
        let n = self.instances.len();
        let config = match port {
            None => self.dir.path().join("popferry.toml"),
            Some(port) => self.write_config(&format!("popferry-{n}.toml"), port),
        };
        let log = self.dir.path().join(format!("run-{n}.log"));
        let process = spawn_popferry(&config, &["run"], &log);
        self.instances.push(Instance { process, log });
        n
    }

    /// Puts a new message in account `i`'s mailbox; returns its uid.
    pub fn add(&mut self, i: usize) -> String {
        self.added += 1;
        let uid = format!("{}-m{}", user(i), self.added);
        self.pop3.add_for(&user(i), &uid, &message(&uid, ""));
        uid
    }

    pub fn added(&self) -> usize {
        self.added
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

    /// Messages still in a mailbox.
    pub fn on_server(&self) -> usize {
        (0..self.plan.accounts)
            .map(|i| self.pop3.maildrop_of(&user(i)).len())
            .sum()
    }

    /// Unexpired leases per owner, as the database has them.
    pub async fn held(&self) -> HashMap<String, usize> {
        let rows = self
            .db
            .query(
                "SELECT owner, count(*) FROM lease WHERE expires_at > clock_timestamp() \
                 GROUP BY owner",
                &[],
            )
            .await;
        let rows = match rows {
            Ok(rows) => rows,
            // The instances have not made their tables yet.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
                return HashMap::new()
            }
            Err(e) => panic!("read the leases: {e}"),
        };
        rows.iter()
            .map(|row| {
                let n: i64 = row.get(1);
                (row.get(0), n as usize)
            })
            .collect()
    }

    /// The owner id of instance `n`: the lease owners name the process's
    /// PID.
    pub async fn owner_of(&self, n: usize) -> Option<String> {
        let pid = format!(" pid {} ", self.instances[n].pid());
        let rows = (self.db.query("SELECT id FROM instance", &[]).await).ok()?;
        rows.iter()
            .map(|row| row.get::<_, String>(0))
            .find(|id| id.contains(&pid))
    }

    /// Waits up to `limit` for `done`, checking every 100 ms; returns how
    /// long it took, or `None`.
    pub async fn wait_for<F, Fut>(&self, limit: Duration, mut done: F) -> Option<Duration>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while started.elapsed() < limit {
            if done().await {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// Waits up to `limit` until every message added was delivered and
    /// deleted; panics with the logs otherwise. Nothing may be lost.
    pub async fn wait_delivered(&self, limit: Duration) {
        let delivered = self
            .wait_for(limit, || async {
                self.accepted().len() == self.added() && self.on_server() == 0
            })
            .await;
        assert!(
            delivered.is_some(),
            "lost: {} of {} delivered, {} on the server\n{}",
            self.accepted().len(),
            self.added(),
            self.on_server(),
            self.logs()
        );
    }

    /// [`Fleet::wait_delivered`], then checks that each message arrived
    /// exactly once.
    pub async fn wait_delivered_once(&self, limit: Duration) {
        self.wait_delivered(limit).await;
        let twice: Vec<_> = (self.accepted().into_iter())
            .filter(|(_, n)| *n > 1)
            .collect();
        assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    }

    /// Every instance's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for (n, instance) in self.instances.iter().enumerate() {
            let log = instance.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            all.push_str(&format!("--- instance {n} (last lines)\n"));
            for line in tail.into_iter().rev() {
                all.push_str(line);
                all.push('\n');
            }
        }
        all
    }
}
