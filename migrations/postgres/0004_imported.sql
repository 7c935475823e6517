-- Schema 4: unique-ids recorded as delivered from another tool's state.
-- PostgreSQL version of ../0004_imported.sql, which explains size_known.
--
-- BOOLEAN rather than SQLite's INTEGER 0/1 under CHECK (size_known IN
-- (0, 1)): the same two values, and Rust's bool binds to it as rusqlite
-- binds it to the integer. SQL that compares it with 0 or 1 is written
-- per engine (NOT size_known here), below the storage interface. Adding a
-- column with a constant default rewrites no rows (PostgreSQL 11 and
-- later), so old rows read true, as they read 1 on SQLite.
ALTER TABLE message ADD COLUMN size_known BOOLEAN NOT NULL DEFAULT true;
