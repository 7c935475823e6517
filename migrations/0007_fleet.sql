-- Schema 7: nothing, on SQLite.
--
-- The PostgreSQL ledger gets the tables a fleet of instances needs to share
-- it (postgres/0007_fleet.sql: instances, leases with their epochs, and the
-- fleet-wide connection slots per server). A SQLite ledger has exactly one
-- poller, kept alone by the lock on its file, so it needs none of them.
-- This step exists only so that schema n is the same ledger on both
-- engines and the next change to the ledger is 0008 on both.
SELECT 1;
