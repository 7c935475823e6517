-- Schema 1 of the popferry ledger.
--
-- Applied by src/ledger/migrate.rs inside one transaction together with
-- `PRAGMA user_version = 1`. Once released this file is never edited: a
-- schema change is a new numbered file, so every ledger in the field walks
-- the same path to the current schema.
--
-- Tables are STRICT so a bug that binds the wrong type fails loudly instead
-- of being stored silently; the ledger is the only evidence that a message
-- may be deleted, so it should refuse nonsense rather than keep it.

-- One row per message popferry has handled on an account, keyed by the
-- server's unique-id (UIDL). The states, in the order a message moves
-- through them:
--
--   rejected     the relay refused it for now; it stays on the server and
--                is tried again from retry_at on.
--   delivered    the relay accepted it; a DELE may have been sent, but the
--                server has not yet confirmed the deletion.
--   quarantined  the relay refused it for good and a copy was written to
--                quarantine_path; like 'delivered', it may now be deleted.
--   deleted      the server confirmed the deletion (+OK to QUIT). The row
--                stays until the server's listing stops showing the uid, so
--                a deletion the server did not really carry out is noticed
--                instead of causing a second delivery.
--
-- size is kept because RFC 1939 allows a server to hand an old unique-id to
-- a new message: a listed uid whose size differs from the recorded one is a
-- different message and must be delivered.
--
-- WITHOUT ROWID: every lookup is by (account, uid), so the table is stored
-- as the primary-key b-tree itself rather than as a rowid table plus an
-- index holding the same keys.
CREATE TABLE message (
    account         TEXT    NOT NULL,
    uid             TEXT    NOT NULL,
    size            INTEGER NOT NULL CHECK (size >= 0),
    state           TEXT    NOT NULL
        CHECK (state IN ('delivered', 'deleted', 'rejected', 'quarantined')),
    -- Unix seconds at which the message became safe to delete: when the
    -- relay accepted it or when it was quarantined.
    delivered_at    INTEGER,
    -- Unix seconds at which the server confirmed the deletion.
    deleted_at      INTEGER,
    -- Delivery attempts made for this uid and size; a new size restarts at 1.
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- The relay's reply to the last refused attempt.
    last_error      TEXT,
    -- Unix seconds before which a rejected message is not tried again.
    retry_at        INTEGER,
    quarantine_path TEXT,
    PRIMARY KEY (account, uid),
    -- Only a message the relay (or the quarantine) has taken may be deleted,
    -- so every other state must say when that happened.
    CHECK (state = 'rejected' OR delivered_at IS NOT NULL),
    CHECK (state <> 'deleted' OR deleted_at IS NOT NULL),
    CHECK (state <> 'rejected' OR retry_at IS NOT NULL),
    CHECK (state <> 'quarantined' OR quarantine_path IS NOT NULL)
) STRICT, WITHOUT ROWID;

-- One row per poll of one account, written when the poll starts and
-- completed when it ends, so a poll cut short by a crash or kill stays
-- visible as 'running' instead of vanishing.
CREATE TABLE poll (
    id          INTEGER PRIMARY KEY,
    account     TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    outcome     TEXT    NOT NULL DEFAULT 'running'
        CHECK (outcome IN ('running', 'ok', 'failed')),
    listed      INTEGER NOT NULL DEFAULT 0 CHECK (listed >= 0),
    delivered   INTEGER NOT NULL DEFAULT 0 CHECK (delivered >= 0),
    deleted     INTEGER NOT NULL DEFAULT 0 CHECK (deleted >= 0),
    deferred    INTEGER NOT NULL DEFAULT 0 CHECK (deferred >= 0),
    rejected    INTEGER NOT NULL DEFAULT 0 CHECK (rejected >= 0),
    error       TEXT,
    CHECK ((outcome = 'running') = (finished_at IS NULL))
) STRICT;

-- The status view asks for the latest poll of each account, and the history
-- of an account is trimmed by id; both walk this index.
CREATE INDEX poll_by_account ON poll (account, id);
