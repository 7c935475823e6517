//! How the SQLite ledger writes a [`Change`].

use rusqlite::{params, Connection};

use super::{sql_int, totals};
use crate::ledger::change::{Attempt, Step};
use crate::ledger::recipients::{RecipientState, REFUSAL_HISTORY};
use crate::ledger::totals::Kind;
use crate::ledger::Change;

impl Change {
    /// Writes the change at time `at`; returns the attempt count of the
    /// message (0 for a deletion).
    pub(super) fn apply(&self, conn: &Connection, account: &str, at: i64) -> rusqlite::Result<u32> {
        let (uid, size, attempt) = match self.step(at) {
            Step::Message { uid, size, attempt } => (uid, size, attempt),
            Step::Recipient {
                uid,
                address,
                state,
                reply,
            } => {
                conn.prepare_cached(
                    "INSERT INTO recipient (account, uid, address, state, reply, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (account, uid, address) DO UPDATE SET
                         state = excluded.state, reply = excluded.reply, at = excluded.at",
                )?
                .execute(params![account, uid, address, state, reply, at])?;
                remember_refusal(conn, account, uid, address, state, reply, at)?;
                return Ok(0);
            }
            Step::Deleted { uid } => {
                mark_deleted(conn, account, uid, at)?;
                return Ok(0);
            }
        };
        if let Some(kind) = Kind::of(attempt.state) {
            totals::count(conn, account, uid, size, kind)?;
        }
        upsert(conn, account, uid, size, &attempt)
    }
}

/// Keeps the refusal history `status` shows in step with one recipient's
/// new state: a refusal is added (and the account's oldest dropped beyond
/// [`REFUSAL_HISTORY`]), a delivery clears the recipient's refusals.
fn remember_refusal(
    conn: &Connection,
    account: &str,
    uid: &str,
    address: &str,
    state: RecipientState,
    reply: Option<&str>,
    at: i64,
) -> rusqlite::Result<()> {
    let Some(reply) = reply.filter(|_| state != RecipientState::Delivered) else {
        conn.prepare_cached(
            "DELETE FROM refusal WHERE account = ?1 AND uid = ?2 AND address = ?3",
        )?
        .execute(params![account, uid, address])?;
        return Ok(());
    };
    conn.prepare_cached(
        "INSERT INTO refusal (account, uid, address, state, reply, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![account, uid, address, state, reply, at])?;
    conn.prepare_cached(
        "DELETE FROM refusal WHERE account = ?1 AND id <= (
             SELECT id FROM refusal WHERE account = ?1
             ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )?
    .execute(params![account, REFUSAL_HISTORY])?;
    Ok(())
}

/// Only messages that were safe to delete change state. A uid the ledger
/// has no delivery for is left as it is and logged: the server deleted
/// something popferry had not recorded, which is a bug upstream worth
/// hearing about, but overwriting a rejection would hide it.
fn mark_deleted(conn: &Connection, account: &str, uid: &str, at: i64) -> rusqlite::Result<()> {
    totals::count_deletion(conn, account, uid)?;
    let changed = conn
        .prepare_cached(
            "UPDATE message SET state = 'deleted', deleted_at = ?3
             WHERE account = ?1 AND uid = ?2
               AND state IN ('delivered', 'quarantined', 'deleted')",
        )?
        .execute(params![account, uid, at])?;
    if changed == 0 {
        tracing::warn!(
            account,
            uid,
            "server deleted a message the ledger has no delivery for"
        );
    }
    Ok(())
}

/// Records an attempt and returns the attempt count that results.
///
/// An existing row with the same size is the same message, so its count
/// goes up; a different size means the server reused the uid for a new
/// message, whose history starts again at one. Either way every other
/// column is overwritten, so nothing from an older attempt (a stale
/// `retry_at`, a quarantine path) lingers beside the new state.
fn upsert(
    conn: &Connection,
    account: &str,
    uid: &str,
    size: u64,
    attempt: &Attempt,
) -> rusqlite::Result<u32> {
    // A new message under a reused uid starts without recipients.
    conn.prepare_cached(
        "DELETE FROM recipient WHERE account = ?1 AND uid = ?2
           AND EXISTS (SELECT 1 FROM message
                       WHERE account = ?1 AND uid = ?2 AND size <> ?3)",
    )?
    .execute(params![account, uid, sql_int(size)?])?;
    // Cached: a batch commit runs this once per message.
    conn.prepare_cached(
        "INSERT INTO message
             (account, uid, size, state, delivered_at, attempts, last_error, retry_at,
              quarantine_path)
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8)
         ON CONFLICT (account, uid) DO UPDATE SET
             attempts = CASE WHEN size = excluded.size THEN attempts + 1 ELSE 1 END,
             size = excluded.size,
             size_known = 1,
             state = excluded.state,
             delivered_at = excluded.delivered_at,
             deleted_at = NULL,
             last_error = excluded.last_error,
             retry_at = excluded.retry_at,
             quarantine_path = excluded.quarantine_path
         RETURNING attempts",
    )?
    .query_row(
        params![
            account,
            uid,
            sql_int(size)?,
            attempt.state,
            attempt.delivered_at,
            attempt.last_error,
            attempt.retry_at,
            attempt.quarantine_path,
        ],
        |row| row.get(0),
    )
}
