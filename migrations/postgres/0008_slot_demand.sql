-- Schema 8: demand for a server's connection slots.
--
-- An instance that finds none of a server's slots free marks the rows
-- other instances hold with the time it asked. A holder sees the mark when
-- it renews its slots, clears it, and gives back what it holds beyond its
-- share of the server's cap as its connections close, so one busy instance
-- cannot keep every slot of a server to itself while the others wait.
ALTER TABLE server_slot ADD COLUMN wanted_at TIMESTAMPTZ;
