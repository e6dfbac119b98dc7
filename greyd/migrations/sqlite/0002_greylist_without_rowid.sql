-- SQLite only: fewer B-trees touched per write, since every page a commit touches is written
-- to the WAL (4 KiB each) and later copied back by a checkpoint. A first attempt went to five
-- B-trees (rowid table, key, sender pools, two purge indexes), now to two.
-- * WITHOUT ROWID: the rows live in the primary-key B-tree itself, so an insert no longer
--   writes a rowid table and a key index, and a retry finds and updates its row in one tree.
-- * The key starts with (sender, recipient): pool_candidates reads that prefix, so the
--   sender-pool index is gone. Lookups give all three columns and do not mind the order.
-- * Partial purge indexes: waiting rows by first_seen, passed rows by last_seen. An early
--   retry changes last_seen of a waiting row and so touches neither; a pass moves the row from
--   one to the other once.
-- PostgreSQL and MySQL keep 0001's layout (MySQL has no partial indexes; PostgreSQL's heap
-- and write path differ).
CREATE TABLE greylist_compact (
    client_net     TEXT    NOT NULL,
    sender         TEXT    NOT NULL,
    recipient      TEXT    NOT NULL,
    first_seen     INTEGER NOT NULL,
    last_seen      INTEGER NOT NULL,
    passed_at      INTEGER NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    client_address TEXT    NOT NULL,
    PRIMARY KEY (sender, recipient, client_net)
) WITHOUT ROWID;
INSERT INTO greylist_compact
    SELECT client_net, sender, recipient, first_seen, last_seen, passed_at, attempts, client_address FROM greylist;
DROP TABLE greylist;
ALTER TABLE greylist_compact RENAME TO greylist;
-- purge of rows that never passed (passed_at IS NULL AND first_seen < cutoff). New rows go to
-- its right edge, so a batch of first attempts shares that page.
CREATE INDEX greylist_waiting ON greylist (first_seen) WHERE passed_at IS NULL;
-- purge of passed rows (passed_at IS NOT NULL AND last_seen < cutoff).
CREATE INDEX greylist_passed ON greylist (last_seen) WHERE passed_at IS NOT NULL;
