-- Schema 5: runs of pooled polls that found nothing, one row each.
--
-- A daemon parks its sessions with SLEE and polls by WAKE; a WAKE answered
-- `[ACTIVITY/NONE]` is a poll that found nothing and did nothing. Writing a
-- row for each would make those writes most of the poll's cost, so the
-- daemon counts them in memory and writes them in batches
-- (src/ledger/empty_polls.rs): consecutive ones of an account become one
-- row, its started_at the first one's start and finished_at the last one's
-- end, and `empty_polls` how many it stands for.
--
-- 0 is every other poll, which is written when it starts and when it ends
-- as before. ADD COLUMN rather than a rebuild, as in 0004.
ALTER TABLE poll ADD COLUMN
    empty_polls INTEGER NOT NULL DEFAULT 0 CHECK (empty_polls >= 0);
