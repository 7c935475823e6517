//! Connection slots across the fleet: the rows of `server_slot` (migration
//! 0007), one per connection the whole fleet may have open to a server.
//! What this instance holds, and when a slot goes back, is `slots.rs`;
//! this is the SQL. A claim takes the lowest free or expired row within
//! the cap (rows above a lowered cap are never claimed again), `FOR UPDATE
//! SKIP LOCKED` so that two instances claiming at once take different
//! rows; a claim that finds none marks the rows others hold as wanted
//! (migration 0008), skipping rows locked by a renewal rather than waiting
//! for them, so a claim and a renewal can never deadlock.

use std::time::Instant;

use deadpool_postgres::Transaction;

use super::fleet::millis;
use super::{Failure, Store};
use crate::ledger::leases::Leases;
use crate::ledger::slots::{Renewed, SlotNo};
use crate::ledger::LedgerError;

const SEED: &str = "INSERT INTO server_slot (server, slot)
    SELECT $1, generate_series(1, $2::bigint) ON CONFLICT DO NOTHING";

const CLAIM: &str = "UPDATE server_slot
    SET owner = $2, expires_at = clock_timestamp() + $4::bigint * interval '1 millisecond',
        wanted_at = NULL
    WHERE (server, slot) IN (
        SELECT server, slot FROM server_slot
        WHERE server = $1 AND slot <= $3 AND (owner IS NULL OR expires_at <= clock_timestamp())
        ORDER BY slot LIMIT 1
        FOR UPDATE SKIP LOCKED)
    RETURNING slot";

const WANT: &str = "UPDATE server_slot SET wanted_at = clock_timestamp()
    WHERE (server, slot) IN (
        SELECT server, slot FROM server_slot
        WHERE server = $1 AND owner <> $2 AND expires_at > clock_timestamp()
        FOR UPDATE SKIP LOCKED)";

/// Renews every slot held and reads (and clears) whether another
/// instance waits for one of its server.
const RENEW: &str = "WITH mine AS (
        SELECT server, slot, wanted_at IS NOT NULL AS wanted FROM server_slot
        WHERE owner = $1 AND expires_at > clock_timestamp()
        ORDER BY server, slot
        FOR UPDATE
    )
    UPDATE server_slot s
    SET expires_at = clock_timestamp() + $2::bigint * interval '1 millisecond', wanted_at = NULL
    FROM mine WHERE s.server = mine.server AND s.slot = mine.slot
    RETURNING s.server, s.slot, mine.wanted";

const LIVE: &str = "SELECT count(*) FROM instance
    WHERE expires_at > clock_timestamp() AND NOT stopping";

const RELEASE: &str = "UPDATE server_slot s SET owner = NULL, expires_at = NULL
    FROM unnest($2::text[], $3::bigint[]) AS r(server, slot)
    WHERE s.server = r.server AND s.slot = r.slot AND s.owner = $1";

pub(super) const RELEASE_ALL: &str =
    "UPDATE server_slot SET owner = NULL, expires_at = NULL WHERE owner = $1";

/// Renews this instance's slots inside the heartbeat's transaction; what
/// it returns goes to [`crate::ledger::slots::Slots::renewed`] once the
/// transaction commits, with the number of live instances.
pub(super) async fn renew(
    tx: &Transaction<'_>,
    leases: &Leases,
) -> Result<(Vec<Renewed>, usize), Failure> {
    let renew = tx.prepare_cached(RENEW).await?;
    let lease = millis(leases.terms.lease);
    let rows = tx.query(&renew, &[&leases.owner, &lease]).await?;
    let kept = (rows.iter())
        .map(|row| {
            Ok(Renewed {
                server: row.try_get(0)?,
                slot: row.try_get(1)?,
                wanted: row.try_get(2)?,
            })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let live: i64 = tx.query_one(LIVE, &[]).await?.try_get(0)?;
    Ok((kept, usize::try_from(live).unwrap_or(1)))
}

impl Store {
    /// Takes one of `server`'s slots for a new connection: one this
    /// instance holds and no connection uses, else a free one from the
    /// database, under a fleet-wide cap of `cap`. `false` when every slot
    /// is taken; the holders then learn that this instance is waiting, if
    /// it holds less than its share.
    pub(in crate::ledger) async fn claim_slot(
        &self,
        leases: &Leases,
        server: &str,
        cap: usize,
    ) -> Result<bool, LedgerError> {
        if leases.slots.take_held(server) {
            return Ok(true);
        }
        if !leases.slots.may_claim(server) {
            return Ok(false);
        }
        let result = async {
            let client = self.pool.get().await?;
            let cap = i64::try_from(cap).unwrap_or(i64::MAX);
            if leases.slots.needs_seeding(server) {
                let seed = client.prepare_cached(SEED).await?;
                client.execute(&seed, &[&server, &cap]).await?;
                leases.slots.seeded(server);
            }
            let lease = millis(leases.terms.lease);
            let sent = Instant::now();
            let claim = client.prepare_cached(CLAIM).await?;
            let won = (client.query_opt(&claim, &[&server, &leases.owner, &cap, &lease])).await?;
            let cap = usize::try_from(cap).unwrap_or(usize::MAX);
            let Some(row) = won else {
                if leases.slots.may_want(server, cap) {
                    let want = client.prepare_cached(WANT).await?;
                    client.execute(&want, &[&server, &leases.owner]).await?;
                }
                return Ok(false);
            };
            let slot: SlotNo = row.try_get(0)?;
            leases
                .slots
                .granted(server, slot, leases.deadline(sent), cap);
            Ok(true)
        };
        self.finish("claim a connection slot", result.await)
    }

    /// Gives back the slots this instance no longer needs or owes.
    pub(super) async fn release_slots(
        &self,
        leases: &Leases,
        leaving: Vec<(String, SlotNo)>,
    ) -> Result<(), LedgerError> {
        let (servers, slots): (Vec<String>, Vec<SlotNo>) = leaving.into_iter().unzip();
        let result = async {
            let client = self.pool.get().await?;
            let release = client.prepare_cached(RELEASE).await?;
            (client.execute(&release, &[&leases.owner, &servers, &slots])).await?;
            Ok(())
        };
        self.finish("give back connection slots", result.await)
    }
}
