-- SQLite only: the greylist table in insertion order again (a rowid table), its key in a
-- unique index. Each page a commit touches is written to the WAL and copied back by a
-- checkpoint, and under load that copying was a third of greyd's SQLite work.
-- * 0002 stored the rows in the key's own B-tree. Keys are random, so every first attempt
--   wrote a random leaf of the table, and a random leaf of the purge index too (its entries
--   carry the key, and one second's first attempts all have the same first_seen). Every early
--   retry wrote yet another random leaf.
-- * Here a new row goes to the right edge of the table, and its waiting-index entry (first_seen,
--   rowid) to the right edge of that index, so a batch of first attempts shares those pages;
--   only the key index takes a random leaf. Early retries come soon after the first attempt,
--   so they update rows in the table's last pages.
-- * Measured on a simulation of greyd's writes (batches of 10 first attempts, early retries in
--   chunks of 64): 3.3 WAL pages per new triplet under 0002, 1.8 here.
-- The key index still starts with (sender, recipient) for pool_candidates, and the purge
-- indexes stay partial. PostgreSQL and MySQL keep 0001's layout.
CREATE TABLE greylist_ordered (
    client_net     TEXT    NOT NULL,
    sender         TEXT    NOT NULL,
    recipient      TEXT    NOT NULL,
    first_seen     INTEGER NOT NULL,
    last_seen      INTEGER NOT NULL,
    passed_at      INTEGER NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    client_address TEXT    NOT NULL
);
INSERT INTO greylist_ordered
    SELECT client_net, sender, recipient, first_seen, last_seen, passed_at, attempts, client_address FROM greylist
    ORDER BY first_seen;
DROP TABLE greylist;
ALTER TABLE greylist_ordered RENAME TO greylist;
CREATE UNIQUE INDEX greylist_key ON greylist (sender, recipient, client_net);
-- purge of rows that never passed (passed_at IS NULL AND first_seen < cutoff).
CREATE INDEX greylist_waiting ON greylist (first_seen) WHERE passed_at IS NULL;
-- purge of passed rows (passed_at IS NOT NULL AND last_seen < cutoff).
CREATE INDEX greylist_passed ON greylist (last_seen) WHERE passed_at IS NOT NULL;
