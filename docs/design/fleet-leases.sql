-- Lease SQL for issue 16, as PREPAREd statements (psql: \i this file, then EXECUTE).
-- Run against the private cluster of scripts/lib/postgres.sh (PostgreSQL 15.18) on schema 7
-- (migrations/postgres/0001..0007); the scenarios in design16.md section 6 were run with it.

-- Parameters: $1 is always the instance id (or the account for fence).
PREPARE register(text, bigint, interval) AS
INSERT INTO instance (id, capacity, expires_at) VALUES ($1, $2, clock_timestamp() + $3)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = clock_timestamp(), expires_at = clock_timestamp() + $3,
    capacity = excluded.capacity;

PREPARE claim(text, text[], interval) AS
WITH live AS (
    SELECT sum(capacity) AS capacity FROM instance
    WHERE expires_at > clock_timestamp() AND NOT stopping
), me AS (
    SELECT capacity FROM instance WHERE id = $1 AND NOT stopping AND expires_at > clock_timestamp()
), held AS (
    SELECT count(*) AS n FROM lease WHERE owner = $1 AND expires_at > clock_timestamp()
), room AS (
    SELECT greatest(0, least(me.capacity,
               ceil(cardinality($2) * me.capacity::numeric / live.capacity)::bigint) - held.n) AS n
    FROM me, live, held
), pick AS (
    SELECT account FROM lease
    WHERE account = ANY ($2) AND (owner IS NULL OR expires_at <= clock_timestamp())
    ORDER BY coalesce(expires_at, released_at, '-infinity'), account
    LIMIT (SELECT n FROM room)
    FOR UPDATE SKIP LOCKED
)
UPDATE lease SET owner = $1, epoch = nextval('lease_epoch'),
    expires_at = clock_timestamp() + $3, claimed_at = clock_timestamp()
FROM pick WHERE lease.account = pick.account
RETURNING lease.account, lease.epoch;

PREPARE renew(text, interval) AS
UPDATE lease SET expires_at = clock_timestamp() + $2
WHERE owner = $1 AND expires_at > clock_timestamp()
RETURNING account, epoch;

PREPARE fence(text, text, bigint) AS
SELECT epoch FROM lease
WHERE account = $1 AND owner = $2 AND epoch = $3 AND expires_at > clock_timestamp()
FOR SHARE;

PREPARE release(text, text[]) AS
UPDATE lease SET owner = NULL, expires_at = NULL, released_at = clock_timestamp()
WHERE owner = $1 AND account = ANY ($2)
RETURNING account, epoch;

PREPARE balance(text, text[]) AS
WITH live AS (
    SELECT id, capacity FROM instance WHERE expires_at > clock_timestamp() AND NOT stopping
), held AS (
    SELECT owner, count(*) AS n FROM lease WHERE expires_at > clock_timestamp() GROUP BY owner
), shares AS (
    SELECT live.id, coalesce(held.n, 0) AS held,
           ceil(cardinality($2) * live.capacity::numeric / sum(live.capacity) OVER ())::bigint AS share
    FROM live LEFT JOIN held ON held.owner = live.id
)
SELECT (SELECT greatest(0, held - share) FROM shares WHERE id = $1) AS surplus,
       coalesce((SELECT bool_or(held < share) FROM shares WHERE id <> $1), false) AS others_have_room;
