-- A counter the admin commands (`postward-greyd delete`, `whitelist`) raise after they change
-- the greylist. Every running greyd reads it every few seconds and drops its in-memory
-- caches when it moved, so a change made on one host applies on all hosts sharing the store.
-- One row, made here. Keep in step with ../sqlite and ../mysql.
CREATE TABLE admin_epoch (
    id    INTEGER NOT NULL PRIMARY KEY,
    epoch BIGINT  NOT NULL
);
INSERT INTO admin_epoch (id, epoch) VALUES (1, 0);
