-- greyd schema, MySQL/MariaDB (InnoDB). Times are unix seconds (BIGINT). Keep in step with
-- ../sqlite and ../postgres.
--
-- Keys are VARCHAR(255) (the caller guarantees at most 255 bytes each) in utf8mb4 with a binary
-- collation, so that matching is exact as in SQLite and PostgreSQL (no case folding, no
-- trailing-space padding). InnoDB limits an index to 3072 bytes: the greylist key is
-- 3 x 255 x 4 = 3060 bytes.

-- One row per triplet. passed_at is NULL until the first retry after the delay.
CREATE TABLE greylist (
    client_net     VARCHAR(255) NOT NULL,
    sender         VARCHAR(255) NOT NULL,
    recipient      VARCHAR(255) NOT NULL,
    first_seen     BIGINT       NOT NULL,
    last_seen      BIGINT       NOT NULL,
    passed_at      BIGINT       NULL,
    attempts       BIGINT       NOT NULL DEFAULT 0,
    client_address VARCHAR(255) NOT NULL,
    PRIMARY KEY (client_net, sender, recipient),
    -- pool_candidates: same sender and recipient, newest first.
    KEY greylist_sender_recipient (sender, recipient, first_seen),
    -- purge of passed rows.
    KEY greylist_last_seen (last_seen),
    -- purge of rows that never passed (passed_at IS NULL AND first_seen < cutoff).
    KEY greylist_waiting (passed_at, first_seen)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

-- Client auto-whitelist (postgrey): passes counted at most once per interval.
CREATE TABLE awl_client (
    client       VARCHAR(255) NOT NULL PRIMARY KEY,
    passes       BIGINT       NOT NULL,
    last_counted BIGINT       NOT NULL,
    last_seen    BIGINT       NOT NULL,
    KEY awl_client_last_seen (last_seen)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

-- Domain auto-whitelist (sqlgrey): promoted once a second sender of the domain passes from the net.
CREATE TABLE awl_domain (
    domain       VARCHAR(255) NOT NULL,
    client_net   VARCHAR(255) NOT NULL,
    first_sender VARCHAR(255) NOT NULL,
    promoted_at  BIGINT       NULL,
    last_seen    BIGINT       NOT NULL,
    PRIMARY KEY (domain, client_net),
    KEY awl_domain_last_seen (last_seen)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;
