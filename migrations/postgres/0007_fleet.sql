-- Schema 7: what a fleet of popferry instances sharing this database needs
-- to agree on who polls what (issue 16). PostgreSQL only: a SQLite ledger
-- has one poller, kept alone by its file lock, so ../0007_fleet.sql is an
-- empty step that only keeps the version numbers of the two engines equal.
--
-- Times here are TIMESTAMPTZ, unlike the ledger's unix seconds: every
-- lease is judged by the database's clock alone (clock_timestamp() in the
-- statement that reads or writes it), never by an instance's, so that two
-- instances whose clocks disagree still agree on whether a lease holds.

-- One row per live (or recently live) popferry process. id is made fresh by
-- each process start (host name, PID and random bits), so a restarted
-- process never inherits the leases or epochs of the one before it.
-- expires_at is pushed on by every heartbeat; an instance whose row has
-- expired is dead to the others, which no longer count it when they work
-- out their fair share, and any instance may delete its row an hour later.
CREATE TABLE instance (
    id           TEXT        CONSTRAINT instance_pkey PRIMARY KEY,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    expires_at   TIMESTAMPTZ NOT NULL,
    -- How many accounts it is willing to hold; the fair share is split in
    -- proportion to it, so a bigger machine may carry more.
    capacity     BIGINT      NOT NULL CONSTRAINT instance_capacity_check CHECK (capacity > 0),
    -- Set when it got SIGTERM: from then on it claims nothing, gives back
    -- each account as its poll ends, and is not counted as a place where
    -- accounts could go.
    stopping     BOOLEAN     NOT NULL DEFAULT false,
    CONSTRAINT instance_expiry_check CHECK (expires_at >= heartbeat_at)
);

-- Every lease ever handed out takes the next value, so an epoch is never
-- reused, not even by a lease row deleted and made again.
CREATE SEQUENCE lease_epoch AS BIGINT MINVALUE 1;

-- One row per account any instance has in its config (each instance adds
-- its accounts' rows with INSERT ... ON CONFLICT DO NOTHING at start and
-- on reload). A lease is held while owner is set and expires_at is ahead
-- of the database's clock; a lease that expired is free to claim, whoever
-- its owner was.
--
-- epoch is the fencing token: it takes the next value of lease_epoch on
-- every claim (also when the previous owner claims it again after it had
-- expired), and a renewal keeps it. A poll carries the epoch of the claim
-- it runs under, and every ledger write of the poll checks, in its own
-- transaction, that the lease still has that owner and epoch and has not
-- expired (holding the row with FOR SHARE until it commits, so a claim
-- cannot slip in between). 0 means never claimed.
--
-- No foreign key to instance: instance rows are deleted some time after
-- they expire, while the lease row and its last owner stay for `status`.
CREATE TABLE lease (
    account     TEXT        CONSTRAINT lease_pkey PRIMARY KEY,
    owner       TEXT,
    expires_at  TIMESTAMPTZ,
    epoch       BIGINT      NOT NULL DEFAULT 0 CONSTRAINT lease_epoch_check CHECK (epoch >= 0),
    -- When the current owner claimed it, and when the last owner gave it
    -- back (SIGTERM, or its share shrank): for `status` and the takeover
    -- measurements, never for a decision.
    claimed_at  TIMESTAMPTZ,
    released_at TIMESTAMPTZ,
    CONSTRAINT lease_owner_check CHECK ((owner IS NULL) = (expires_at IS NULL)),
    CONSTRAINT lease_claimed_check CHECK (owner IS NULL OR (claimed_at IS NOT NULL AND epoch > 0))
);
-- Renewal and release find an instance's leases by owner.
CREATE INDEX lease_by_owner ON lease (owner) WHERE owner IS NOT NULL;

-- The per-server connection cap across the fleet: for each POP3 server
-- (host:port as the config names it) one row per connection the whole
-- fleet may have open to it ([daemon] max_connections_per_server). An
-- instance opens a connection to a server only while it holds a slot of
-- it, and holds its slots under leases renewed with its heartbeat, so the
-- slots of a dead instance come free within the lease time. Slots are not
-- fenced: a stale holder can overshoot the cap by its own slots until its
-- sessions notice the expiry, which costs a refused login, not a message.
CREATE TABLE server_slot (
    server     TEXT        NOT NULL,
    slot       BIGINT      NOT NULL CONSTRAINT server_slot_slot_check CHECK (slot >= 1),
    owner      TEXT,
    expires_at TIMESTAMPTZ,
    CONSTRAINT server_slot_pkey PRIMARY KEY (server, slot),
    CONSTRAINT server_slot_owner_check CHECK ((owner IS NULL) = (expires_at IS NULL))
);
CREATE INDEX server_slot_by_owner ON server_slot (owner) WHERE owner IS NOT NULL;
