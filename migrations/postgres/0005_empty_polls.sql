-- Schema 5: runs of pooled polls that found nothing, one row each.
-- PostgreSQL version of ../0005_empty_polls.sql.
ALTER TABLE poll ADD COLUMN
    empty_polls BIGINT NOT NULL DEFAULT 0 CONSTRAINT poll_empty_polls_check CHECK (empty_polls >= 0);
