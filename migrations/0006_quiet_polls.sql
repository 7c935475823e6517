-- Schema 6: what adaptive poll intervals need to survive a restart.
--
-- An account with `poll_interval_max` is polled less often the longer its
-- polls find nothing (src/scheduler/interval.rs), so the daemon and
-- `popferry status` must know how many polls in a row found nothing. Both
-- read it from the account's latest row, which the poll_by_account index
-- finds at once, instead of walking back through up to 1000 rows of
-- history per account.
--
-- new_listed: messages in the poll's listing that the ledger had no row
-- for (or a row of another size), delivered or not.
-- quiet_polls: consecutive successful polls that found nothing new, up to
-- and including this row; 0 when this poll found mail. A running or failed
-- poll carries the count of the row before it, and a run of empty pooled
-- polls (0005) adds its `empty_polls`.
--
-- Rows written before this schema read 0: an upgraded ledger starts every
-- account at its shortest interval, once. ADD COLUMN, as in 0004.
ALTER TABLE poll ADD COLUMN
    new_listed INTEGER NOT NULL DEFAULT 0 CHECK (new_listed >= 0);
ALTER TABLE poll ADD COLUMN
    quiet_polls INTEGER NOT NULL DEFAULT 0 CHECK (quiet_polls >= 0);
