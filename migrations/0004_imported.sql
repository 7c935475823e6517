-- Schema 4: unique-ids recorded as delivered from another tool's state.
--
-- `popferry import` reads the state file of fetchmail, mpop or getmail:
-- those files list unique-ids but no sizes, while a row's size is how a
-- reused unique-id is told apart from the message it was first given to.
-- A row with size_known = 0 has no size yet (size holds 0): it matches its
-- unique-id whatever size the server lists, until the first poll that
-- lists it writes the listed size and sets size_known = 1. Every other
-- row, old or new, knows its size.
--
-- ADD COLUMN rather than a rebuild: rebuilding `message` would drop it, and
-- with foreign keys on that cascades to every row of `recipient`.
ALTER TABLE message ADD COLUMN
    size_known INTEGER NOT NULL DEFAULT 1 CHECK (size_known IN (0, 1));
