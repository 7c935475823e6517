-- Schema 6: what adaptive poll intervals need to survive a restart.
-- PostgreSQL version of ../0006_quiet_polls.sql.
ALTER TABLE poll
    ADD COLUMN new_listed BIGINT NOT NULL DEFAULT 0
        CONSTRAINT poll_new_listed_check CHECK (new_listed >= 0),
    ADD COLUMN quiet_polls BIGINT NOT NULL DEFAULT 0
        CONSTRAINT poll_quiet_polls_check CHECK (quiet_polls >= 0);
