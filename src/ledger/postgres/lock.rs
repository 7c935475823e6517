//! The poller lock: who may write to a PostgreSQL ledger. `popferry fetch`,
//! `import` and `adopt` hold it alone, as the file lock keeps one poller
//! per SQLite file; the `popferry run` instances of a fleet hold it
//! shared, and divide the accounts among themselves with leases
//! (`fleet.rs`). So a fetch is refused while a fleet runs, and an
//! instance is refused while a fetch runs.
//!
//! The lock is a session-level advisory lock held by a connection of its
//! own for as long as the ledger is open.
//!
//! A session lock ends with its session, and a database restart ends every
//! session, so the lock alone would let another process take over while
//! this one still writes. Every write transaction therefore checks, as its
//! first statement, that the lock is still held by this process's lock
//! session ([`FENCE`]), and holds a shared transaction lock on a second key
//! while it runs. A process that takes the poller lock takes that second
//! key exclusively once before it polls, which waits for every write that
//! passed its check under the old holder; any later write of the old
//! holder fails its check. (A fleet's instances share a key of their own,
//! which a joining instance leaves alone: see [`POLLER`].) So the writes of two holders never overlap, and
//! a write that passed is seen by the next holder's first read.

use std::path::PathBuf;

use tokio::sync::Mutex;
use tokio_postgres::Client;

use super::connect::{check_durable, Connector};
use super::Failure;
use crate::ledger::LedgerError;

/// The advisory lock keys, beside the migrations' 7466356: taken by the
/// process that polls, and shared by its writes: a lone holder's writes
/// share one key, a fleet's instances' another, so that an instance
/// joining waits for a lone predecessor's writes but not for its peers'
/// (which their leases fence instead). Taken exclusively, even for a
/// moment, the peers' key would fail every peer's write that asked for
/// it meanwhile.
const POLLER: i64 = 7_466_357;
const WRITERS: i64 = 7_466_358;
const FLEET_WRITERS: i64 = 7_466_359;

/// The first statement of every fenced write: the shared writer lock `$2`,
/// then whether the poller lock is held by the session `$1` (a single
/// bigint key shows in `pg_locks` as classid 0, objid the key, objsubid
/// 1). `CASE` keeps that order. False means the transaction must write
/// nothing.
pub(super) const FENCE: &str = "SELECT CASE WHEN pg_try_advisory_xact_lock_shared($2)
    THEN EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = 0
                 AND objid = 7466357 AND objsubid = 1 AND pid = $1 AND granted)
    ELSE false END";

/// How a process holds the poller lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::ledger) enum Hold {
    /// The only writer: `fetch`, `import`, `adopt`.
    Alone,
    /// One of a fleet of `popferry run` instances, each writing only under
    /// its leases.
    Shared,
}

/// The lock, and the session that holds it.
pub(super) struct PollerLock {
    name: PathBuf,
    connector: Connector,
    hold: Hold,
    held: Mutex<Option<Held>>,
}

struct Held {
    client: Client,
    /// The backend process of `client`'s session, which `pg_locks` names.
    pid: i32,
}

impl PollerLock {
    /// The lock as taken by [`acquire`] on `client`'s session, whose
    /// backend is `pid`.
    pub fn held(connector: Connector, client: Client, pid: i32, name: &str, hold: Hold) -> Self {
        Self {
            name: PathBuf::from(name),
            connector,
            hold,
            held: Mutex::new(Some(Held { client, pid })),
        }
    }

    /// The backend PID of the session holding the lock, for [`FENCE`]. A
    /// session that ended (a database restart) is replaced by a new one
    /// that takes the lock again, unless another process took it first or
    /// the server came back without `fsync`.
    pub async fn holder(&self) -> Result<i32, Failure> {
        let mut held = self.held.lock().await;
        if let Some(held) = held.as_ref().filter(|held| !held.client.is_closed()) {
            return Ok(held.pid);
        }
        *held = None;
        let client = self.connector.connect().await?;
        // A restart is when a server's settings change: check them again.
        check_durable(&client, &self.name.to_string_lossy()).await?;
        let pid = acquire(&client, &self.name, self.hold).await?;
        tracing::info!(ledger = %self.name.display(), "ledger poller lock taken again");
        *held = Some(Held { client, pid });
        Ok(pid)
    }

    /// The writer key this process's writes share ([`FENCE`]'s `$2`).
    pub fn writers(&self) -> i64 {
        match self.hold {
            Hold::Alone => WRITERS,
            Hold::Shared => FLEET_WRITERS,
        }
    }

    /// Forgets the session, after a fence found it no longer holds the
    /// lock, so that the next write takes it again first.
    pub async fn lost(&self) {
        *self.held.lock().await = None;
    }
}

/// Takes the poller lock on `client`'s session, or refuses with
/// [`LedgerError::DatabaseInUse`], then waits once for the writes of any
/// earlier holder (for a fleet's instance, of a lone one: see [`POLLER`]);
/// returns the session's backend PID.
pub(super) async fn acquire(
    client: &Client,
    name: &std::path::Path,
    hold: Hold,
) -> Result<i32, Failure> {
    let take = match hold {
        Hold::Alone => "SELECT pg_try_advisory_lock($1), pg_backend_pid()",
        Hold::Shared => "SELECT pg_try_advisory_lock_shared($1), pg_backend_pid()",
    };
    let row = client.query_one(take, &[&POLLER]).await?;
    if !row.try_get::<_, bool>(0)? {
        let holder = holder(client).await?;
        return Err(Failure::Ledger(LedgerError::DatabaseInUse {
            path: name.to_owned(),
            holder,
        }));
    }
    let earlier = match hold {
        Hold::Alone => &[WRITERS, FLEET_WRITERS][..],
        Hold::Shared => &[WRITERS][..],
    };
    for key in earlier {
        (client.query_one(
            "SELECT pg_advisory_lock($1), pg_advisory_unlock($1)",
            &[key],
        ))
        .await?;
    }
    Ok(row.try_get(1)?)
}

/// The session holding the poller lock, in words: its application name
/// (popferry names its sessions after the host and PID, `connect.rs`), its
/// client address and when it connected. The lock may be gone by the time
/// this looks, which it says.
async fn holder(client: &Client) -> Result<String, Failure> {
    let row = client
        .query_opt(
            "SELECT a.application_name, coalesce(host(a.client_addr), 'a Unix socket'),
                    to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
             FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.classid = 0 AND l.objid = 7466357
               AND l.objsubid = 1 AND l.granted
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await?;
    Ok(match row {
        Some(row) => {
            let (name, from, since): (String, String, String) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            format!("{name}, connected from {from} since {since} UTC")
        }
        None => "which has just let go of it: try again".to_owned(),
    })
}
