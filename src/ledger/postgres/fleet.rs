//! Leases: how the `popferry run` instances sharing one database divide the
//! accounts among themselves, one owner per account at a time.
//!
//! Each instance has a row in `instance` (its capacity, and a heartbeat
//! that keeps it counted), and each account a row in `lease` (its owner,
//! expiry and epoch; migration 0007 says what each column is for). Every
//! lease time is the database's clock, never an instance's. The keeper
//! ([`Store::keep_leases`]) runs a round every sixth of the lease:
//!
//! 1. every third of the lease, the heartbeat and the renewal of every
//!    lease held, in one transaction; a lease it does not return is lost;
//! 2. a claim of free or expired leases of the configured accounts, up to
//!    this instance's fair share (the accounts split in proportion to the
//!    live instances' capacities), `FOR UPDATE SKIP LOCKED` so that two
//!    instances claiming at once take different accounts; every claim
//!    takes a new epoch from the `lease_epoch` sequence;
//! 3. when it holds more than its share and another live instance has
//!    room, it gives back the surplus, choosing accounts not being polled;
//! 4. it gives back the connection slots it no longer needs (`slots.rs`);
//!    the heartbeat renews the others.
//!
//! At SIGTERM an instance marks itself stopping (the others stop counting
//! it), lets its polls finish, then gives back every lease at once, so the
//! others take over within a round, not a lease time.
//!
//! The fence ([`fence`]) is what makes this safe: every ledger write of a
//! poll checks in its own transaction that its lease still has this owner
//! and its epoch and has not expired, and holds the row `FOR SHARE` until
//! it commits, so a claim cannot slip in between. A poll whose lease was
//! lost records nothing and, with the deadline of `leases.rs`, deletes
//! nothing.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use deadpool_postgres::Transaction;
use tracing::{debug, info, warn};

use super::{Failure, Store};
use crate::ledger::leases::{Epoch, Leases};
use crate::ledger::LedgerError;

const HEARTBEAT: &str = "INSERT INTO instance (id, capacity, expires_at)
    VALUES ($1, $2, clock_timestamp() + $3::bigint * interval '1 millisecond')
    ON CONFLICT (id) DO UPDATE SET heartbeat_at = clock_timestamp(),
        expires_at = excluded.expires_at, capacity = excluded.capacity";

const RENEW: &str = "UPDATE lease
    SET expires_at = clock_timestamp() + $2::bigint * interval '1 millisecond'
    WHERE owner = $1 AND expires_at > clock_timestamp()
    RETURNING account, epoch";

/// Instance rows an hour past their expiry say nothing `status` needs.
const FORGET_DEAD: &str = "DELETE FROM instance
    WHERE expires_at < clock_timestamp() - interval '1 hour'";

const SEED: &str = "INSERT INTO lease (account) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING";

/// The claim of up to the fair share: `room` is what this instance may
/// still take (0 when its own row is missing, expired or stopping), and
/// the oldest-expired leases go first.
const CLAIM: &str = "WITH live AS (
        SELECT sum(capacity) AS capacity FROM instance
        WHERE expires_at > clock_timestamp() AND NOT stopping
    ), me AS (
        SELECT capacity FROM instance
        WHERE id = $1 AND NOT stopping AND expires_at > clock_timestamp()
    ), held AS (
        SELECT count(*) AS n FROM lease WHERE owner = $1 AND expires_at > clock_timestamp()
    ), room AS (
        SELECT greatest(0, least(me.capacity,
                   ceil(cardinality($2::text[]) * me.capacity::numeric / live.capacity)::bigint)
               - held.n) AS n
        FROM me, live, held
    ), pick AS (
        SELECT account FROM lease
        WHERE account = ANY ($2) AND (owner IS NULL OR expires_at <= clock_timestamp())
        ORDER BY coalesce(expires_at, released_at, '-infinity'), account
        LIMIT coalesce((SELECT n FROM room), 0)
        FOR UPDATE SKIP LOCKED
    )
    UPDATE lease SET owner = $1, epoch = nextval('lease_epoch'),
        expires_at = clock_timestamp() + $3::bigint * interval '1 millisecond',
        claimed_at = clock_timestamp()
    FROM pick WHERE lease.account = pick.account
    RETURNING lease.account, lease.epoch";

/// How far this instance is over its share, and whether another live
/// instance is under its own (only then is giving back worth a handover).
const BALANCE: &str = "WITH live AS (
        SELECT id, capacity FROM instance WHERE expires_at > clock_timestamp() AND NOT stopping
    ), held AS (
        SELECT owner, count(*) AS n FROM lease WHERE expires_at > clock_timestamp() GROUP BY owner
    ), shares AS (
        SELECT live.id, coalesce(held.n, 0) AS held,
               ceil(cardinality($2::text[]) * live.capacity::numeric
                    / sum(live.capacity) OVER ())::bigint AS share
        FROM live LEFT JOIN held ON held.owner = live.id
    )
    SELECT coalesce((SELECT greatest(0, held - share) FROM shares WHERE id = $1), 0),
           coalesce((SELECT bool_or(held < share) FROM shares WHERE id <> $1), false)";

const RELEASE: &str = "UPDATE lease SET owner = NULL, expires_at = NULL,
        released_at = clock_timestamp()
    WHERE owner = $1 AND account = ANY ($2)";

/// Every lease of the instance, whether or not it knew it had won it (a
/// claim whose answer was lost on the way).
const RELEASE_ALL: &str = "UPDATE lease SET owner = NULL, expires_at = NULL,
        released_at = clock_timestamp()
    WHERE owner = $1";

/// The check at the start of every fenced write of a poll.
const FENCE: &str = "SELECT 1 FROM lease
    WHERE account = $1 AND owner = $2 AND epoch = $3 AND expires_at > clock_timestamp()
    FOR SHARE";

pub(super) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Checks, inside `tx`, that the poll's lease on `account` still holds
/// under `epoch`, and holds its row until `tx` ends. The local deadline is
/// asked first: a lease it no longer trusts is not worth a round trip.
pub(super) async fn fence(
    tx: &Transaction<'_>,
    leases: &Leases,
    account: &str,
    epoch: Option<Epoch>,
) -> Result<(), Failure> {
    let fenced = || {
        Failure::Ledger(LedgerError::Fenced {
            account: account.to_owned(),
        })
    };
    let epoch = epoch.ok_or_else(fenced)?;
    if !leases.valid(account, epoch) {
        return Err(fenced());
    }
    let check = tx.prepare_cached(FENCE).await?;
    match tx
        .query_opt(&check, &[&account, &leases.owner, &epoch])
        .await?
    {
        Some(_) => Ok(()),
        None => Err(fenced()),
    }
}

impl Store {
    /// Adds a lease row for each of `accounts` that has none, so that it
    /// can be claimed.
    pub(in crate::ledger) async fn offer(&self, accounts: &[String]) -> Result<(), LedgerError> {
        let result = async {
            let client = self.pool.get().await?;
            let seed = client.prepare_cached(SEED).await?;
            client.execute(&seed, &[&accounts]).await?;
            Ok(())
        };
        self.finish("add the accounts' leases", result.await)
    }

    /// The keeper: claims, renews and balances this instance's leases
    /// until the task is dropped. `accounts` gives the configured accounts
    /// at each round (a reload changes them).
    pub(in crate::ledger) async fn keep_leases(
        &self,
        leases: &Leases,
        accounts: impl Fn() -> Vec<String>,
    ) {
        let lease = leases.terms.lease;
        let round = (lease / 6).max(Duration::from_millis(100));
        let mut renew_at = Instant::now();
        // The first claim waits a round after the first heartbeat, so that
        // instances started together count each other before they claim.
        let mut claim_at = Instant::now() + round;
        loop {
            let now = Instant::now();
            if now >= renew_at {
                match self.renew(leases).await {
                    Ok(()) => renew_at = now + lease / 3,
                    Err(e) => warn!(
                        error = crate::poll::line_with_causes(&e),
                        "cannot renew this instance's leases; trying again"
                    ),
                }
            }
            let lost = leases.expire();
            if lost > 0 {
                warn!(
                    lost,
                    "leases ran out before they could be renewed: their polls stop, and other \
                     instances take the accounts over"
                );
            }
            let leaving = if now >= claim_at {
                let accounts = accounts();
                if let Err(e) = self.claim_and_balance(leases, &accounts).await {
                    warn!(
                        error = crate::poll::line_with_causes(&e),
                        "cannot claim or balance leases; trying again"
                    );
                }
                claim_at = now + round;
                leases.slots.end_round()
            } else {
                leases.slots.leaving()
            };
            if !leaving.is_empty() {
                // Slots not given back run out with their lease instead.
                if let Err(e) = self.release_slots(leases, leaving).await {
                    debug!(
                        error = crate::poll::line_with_causes(&e),
                        "slots not given back"
                    );
                }
            }
            tokio::select! {
                () = tokio::time::sleep(round) => {}
                () = leases.slots.give_back.notified() => {}
            }
        }
    }

    /// The heartbeat and the renewal of every lease held.
    async fn renew(&self, leases: &Leases) -> Result<(), LedgerError> {
        let result = async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let capacity = i64::try_from(leases.terms.capacity).unwrap_or(i64::MAX);
            let lease = millis(leases.terms.lease);
            let sent = Instant::now();
            let heartbeat = tx.prepare_cached(HEARTBEAT).await?;
            tx.execute(&heartbeat, &[&leases.owner, &capacity, &lease])
                .await?;
            let renew = tx.prepare_cached(RENEW).await?;
            let kept = rows(tx.query(&renew, &[&leases.owner, &lease]).await?)?;
            let unknown = leases.unknown(&kept);
            if !unknown.is_empty() {
                let release = tx.prepare_cached(RELEASE).await?;
                tx.execute(&release, &[&leases.owner, &unknown]).await?;
            }
            let (slots, live) = super::slots::renew(&tx, leases).await?;
            tx.execute(FORGET_DEAD, &[]).await?;
            tx.commit().await?;
            // Only a committed renewal moves the deadlines on.
            let lost = leases.renewed(&kept, sent);
            if lost > 0 {
                warn!(lost, "leases lost to other instances: their polls stop");
            }
            let lost = (leases.slots).renewed(&slots, live, leases.deadline(sent));
            if lost > 0 {
                warn!(
                    lost,
                    "connection slots ran out before they could be renewed: other instances \
                     may open connections to those servers while this one's are still open"
                );
            }
            Ok(())
        };
        self.finish("renew the leases", result.await)
    }

    async fn claim_and_balance(
        &self,
        leases: &Leases,
        accounts: &[String],
    ) -> Result<(), LedgerError> {
        let result = async {
            let client = self.pool.get().await?;
            let lease = millis(leases.terms.lease);
            let sent = Instant::now();
            let claim = client.prepare_cached(CLAIM).await?;
            let won = rows(
                client
                    .query(&claim, &[&leases.owner, &accounts, &lease])
                    .await?,
            )?;
            if !won.is_empty() {
                info!(
                    claimed = won.len(),
                    held = leases.count() + won.len(),
                    "claimed leases"
                );
            }
            leases.granted(won, sent);
            let balance = client.prepare_cached(BALANCE).await?;
            let row = client
                .query_one(&balance, &[&leases.owner, &accounts])
                .await?;
            let (surplus, others_have_room): (i64, bool) = (row.try_get(0)?, row.try_get(1)?);
            let surplus = match others_have_room {
                true => usize::try_from(surplus).unwrap_or(0),
                false => 0,
            };
            let configured: HashSet<&str> = accounts.iter().map(String::as_str).collect();
            let given = leases.take_idle(surplus, &configured);
            if !given.is_empty() {
                let release = client.prepare_cached(RELEASE).await?;
                client.execute(&release, &[&leases.owner, &given]).await?;
                debug!(
                    released = given.len(),
                    "gave back leases over this instance's share"
                );
            }
            Ok(())
        };
        self.finish("claim leases", result.await)
    }

    /// Marks this instance as stopping: the others no longer count it as
    /// a place for accounts, and it claims nothing more.
    pub(in crate::ledger) async fn stopping(&self, leases: &Leases) -> Result<(), LedgerError> {
        let result = async {
            let client = self.pool.get().await?;
            (client.execute(
                "UPDATE instance SET stopping = true WHERE id = $1",
                &[&leases.owner],
            ))
            .await?;
            Ok(())
        };
        self.finish("mark this instance as stopping", result.await)
    }

    /// Gives back every lease and removes this instance's row, once its
    /// polls have ended.
    pub(in crate::ledger) async fn leave(&self, leases: &Leases) -> Result<(), LedgerError> {
        let result = async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            leases.take_all();
            let released = tx.execute(RELEASE_ALL, &[&leases.owner]).await?;
            leases.slots.take_all();
            (tx.execute(super::slots::RELEASE_ALL, &[&leases.owner])).await?;
            tx.execute("DELETE FROM instance WHERE id = $1", &[&leases.owner])
                .await?;
            tx.commit().await?;
            info!(released, "gave back every lease");
            Ok(())
        };
        self.finish("give back the leases", result.await)
    }
}

fn rows(rows: Vec<tokio_postgres::Row>) -> Result<Vec<(String, Epoch)>, Failure> {
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}
