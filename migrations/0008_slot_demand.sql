-- Schema 8: nothing, on SQLite.
--
-- The PostgreSQL ledger learns which servers' connection slots another
-- instance of the fleet is waiting for (postgres/0008_slot_demand.sql). A
-- SQLite ledger has one poller and no fleet-wide slots; this step keeps
-- schema n the same ledger on both engines.
SELECT 1;
