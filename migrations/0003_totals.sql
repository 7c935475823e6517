-- Schema 3: running totals per account, for `popferry status`.
--
-- The message table forgets a message once the server's listing no longer
-- shows it, and the poll history keeps only the latest polls, so neither can
-- say how many messages an account has moved since the ledger began. These
-- counters can: each is raised in the same transaction as the message change
-- it counts, so a total never disagrees with the rows it was counted from.
-- src/ledger/totals.rs says what each kind counts.
CREATE TABLE total (
    account TEXT    NOT NULL,
    kind    TEXT    NOT NULL
        CHECK (kind IN ('delivered', 'deleted', 'rejected', 'quarantined')),
    count   INTEGER NOT NULL CHECK (count >= 0),
    PRIMARY KEY (account, kind)
) STRICT, WITHOUT ROWID;

-- When the counting began, in unix seconds: when this schema was applied,
-- which for a new ledger is when it was created. A ledger upgraded from
-- schema 2 counts from its upgrade, and `status` says so.
CREATE TABLE counting (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    since INTEGER NOT NULL
) STRICT;
INSERT INTO counting (id, since) VALUES (1, CAST(strftime('%s', 'now') AS INTEGER));
