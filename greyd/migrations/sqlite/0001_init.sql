-- greyd schema, SQLite. Times are unix seconds (INTEGER = i64). Ordinary rowid tables: purge
-- deletes by rowid in small batches. Keep in step with ../postgres and ../mysql.

-- One row per triplet. passed_at is NULL until the first retry after the delay.
CREATE TABLE greylist (
    client_net     TEXT    NOT NULL,
    sender         TEXT    NOT NULL,
    recipient      TEXT    NOT NULL,
    first_seen     INTEGER NOT NULL,
    last_seen      INTEGER NOT NULL,
    passed_at      INTEGER NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    client_address TEXT    NOT NULL,
    PRIMARY KEY (client_net, sender, recipient)
);
-- pool_candidates: same sender and recipient, newest first.
CREATE INDEX greylist_sender_recipient ON greylist (sender, recipient, first_seen);
-- purge of passed rows.
CREATE INDEX greylist_last_seen ON greylist (last_seen);
-- purge of rows that never passed (passed_at IS NULL AND first_seen < cutoff).
CREATE INDEX greylist_waiting ON greylist (passed_at, first_seen);

-- Client auto-whitelist (postgrey): passes counted at most once per interval.
CREATE TABLE awl_client (
    client       TEXT    NOT NULL PRIMARY KEY,
    passes       INTEGER NOT NULL,
    last_counted INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL
);
CREATE INDEX awl_client_last_seen ON awl_client (last_seen);

-- Domain auto-whitelist (sqlgrey): promoted once a second sender of the domain passes from the net.
CREATE TABLE awl_domain (
    domain       TEXT    NOT NULL,
    client_net   TEXT    NOT NULL,
    first_sender TEXT    NOT NULL,
    promoted_at  INTEGER NULL,
    last_seen    INTEGER NOT NULL,
    PRIMARY KEY (domain, client_net)
);
CREATE INDEX awl_domain_last_seen ON awl_domain (last_seen);
