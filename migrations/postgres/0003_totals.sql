-- Schema 3: running totals per account. PostgreSQL version of
-- ../0003_totals.sql, which says what the counters are for.
CREATE TABLE total (
    account TEXT    NOT NULL,
    kind    TEXT    NOT NULL CONSTRAINT total_kind_check
        CHECK (kind IN ('delivered', 'deleted', 'rejected', 'quarantined')),
    count   BIGINT  NOT NULL CONSTRAINT total_count_check CHECK (count >= 0),
    CONSTRAINT total_pkey PRIMARY KEY (account, kind)
);

CREATE TABLE counting (
    id    BIGINT  CONSTRAINT counting_pkey PRIMARY KEY CONSTRAINT counting_id_check CHECK (id = 1),
    since BIGINT  NOT NULL
);
-- Unix seconds, truncated like SQLite's strftime('%s'): extract() returns
-- numeric with a fraction, and a plain cast to bigint would round it up
-- half the time. now() is the start of the migration's transaction.
INSERT INTO counting (id, since) VALUES (1, floor(extract(epoch FROM now()))::bigint);
