-- Schema 2: what each recipient of a message made of it.
--
-- A relay judges recipients one by one (at RCPT, and for LMTP after the
-- data), so one message can be delivered to one recipient, refused for good
-- for a second and refused for now for a third. Recording that per message
-- would either deliver twice to the first (retrying the message) or lose the
-- third (deleting it); so each recipient gets a row, and the message a new
-- state:
--
--   partial      some recipients have it or refused it for good, others are
--                still to be tried (a 4xx); it stays on the server and the
--                next poll delivers to those others alone.
--
-- A message becomes 'delivered' (and may be deleted) once at least one
-- recipient has it and every other one has it or refused it for good; it
-- becomes 'rejected' (or 'quarantined') when none has it.
--
-- SQLite cannot change a CHECK constraint in place, so the message table is
-- rebuilt with the new state and the same rows.
CREATE TABLE message_v2 (
    account         TEXT    NOT NULL,
    uid             TEXT    NOT NULL,
    size            INTEGER NOT NULL CHECK (size >= 0),
    state           TEXT    NOT NULL
        CHECK (state IN ('delivered', 'deleted', 'rejected', 'quarantined', 'partial')),
    delivered_at    INTEGER,
    deleted_at      INTEGER,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      TEXT,
    retry_at        INTEGER,
    quarantine_path TEXT,
    PRIMARY KEY (account, uid),
    CHECK (state IN ('rejected', 'partial') OR delivered_at IS NOT NULL),
    CHECK (state <> 'deleted' OR deleted_at IS NOT NULL),
    CHECK (state <> 'rejected' OR retry_at IS NOT NULL),
    CHECK (state <> 'quarantined' OR quarantine_path IS NOT NULL)
) STRICT, WITHOUT ROWID;

INSERT INTO message_v2 SELECT
    account, uid, size, state, delivered_at, deleted_at, attempts, last_error,
    retry_at, quarantine_path
FROM message;
DROP TABLE message;
ALTER TABLE message_v2 RENAME TO message;

-- One row per envelope recipient popferry has tried a message for. The
-- states:
--
--   delivered  the relay took the message for this recipient.
--   deferred   refused for now (4xx, or no answer): tried again, alone.
--   rejected   refused for good (5xx): not tried again while another
--              recipient's delivery is pending; reply says why.
--
-- Rows go with their message: when the server's listing stops showing the
-- uid, the message row is forgotten and these with it.
CREATE TABLE recipient (
    account TEXT    NOT NULL,
    uid     TEXT    NOT NULL,
    address TEXT    NOT NULL,
    state   TEXT    NOT NULL CHECK (state IN ('delivered', 'deferred', 'rejected')),
    -- The relay's words for a refusal.
    reply   TEXT,
    -- Unix seconds of the attempt that set this state.
    at      INTEGER NOT NULL,
    PRIMARY KEY (account, uid, address),
    FOREIGN KEY (account, uid) REFERENCES message (account, uid) ON DELETE CASCADE,
    CHECK (state = 'delivered' OR reply IS NOT NULL)
) STRICT, WITHOUT ROWID;

-- Every refusal of a recipient, for `popferry status`: recipient rows go with
-- their message, within a poll of its deletion, but a refusal is worth seeing
-- after that. A recipient that gets the message later loses its refusals here
-- (they no longer matter); the latest 1000 per account are kept, like the
-- poll history.
CREATE TABLE refusal (
    id      INTEGER PRIMARY KEY,
    account TEXT    NOT NULL,
    uid     TEXT    NOT NULL,
    address TEXT    NOT NULL,
    state   TEXT    NOT NULL CHECK (state IN ('deferred', 'rejected')),
    reply   TEXT    NOT NULL,
    at      INTEGER NOT NULL
) STRICT;
CREATE INDEX refusal_by_account ON refusal (account, id);
CREATE INDEX refusal_by_recipient ON refusal (account, uid, address);
