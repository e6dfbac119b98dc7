//! The SQL text of every statement the store runs, one [`Sql`] table per backend.
//!
//! The Any driver passes statements through unchanged, so each backend gets its own dialect:
//! placeholders (`$1` for PostgreSQL and SQLite, `?` for MySQL), upserts (`ON CONFLICT` versus
//! `ON DUPLICATE KEY UPDATE`) and batched deletes (by `rowid`, by `ctid`, or `DELETE … LIMIT`).
//! Everything is a `&'static str` (sqlx 0.9 `SqlSafeStr`); values are always bound, never
//! formatted in.
//!
//! Binding rule: `mod.rs` binds the same values in the same order on every backend, namely the
//! order of the `?` in the MySQL text. The `$n` texts refer to those values by number and may
//! use one more than once (the purge statements do).

/// The statements of one backend. Field names follow the `Store` methods that run them.
pub(super) struct Sql {
    /// Binds: client_net, sender, recipient.
    pub get: &'static str,
    /// Everything the request path reads, in one round trip: the triplet's row (NULLs when
    /// absent), the client's counted passes and the domain's promotion. Binds, in this order
    /// on every backend: client, domain, client_net, domain_cutoff, client_net, sender,
    /// recipient.
    pub lookup: &'static str,
    /// Inserts unless the triplet exists. Binds: client_net, sender, recipient, first_seen,
    /// last_seen, client_address.
    pub insert_first: &'static str,
    /// Binds: last_seen, client_address, client_net, sender, recipient.
    pub record_retry: &'static str,
    /// Binds: now (passed_at if unset), now (last_seen), client_net, sender, recipient.
    pub record_pass: &'static str,
    /// Starts an expired row over as a new first attempt, or inserts it again if expiry
    /// deleted it meanwhile. Binds: client_net, sender, recipient, now (first_seen), now
    /// (last_seen), client_address.
    pub restart: &'static str,
    /// Binds: sender, recipient, exclude_net, seen_before, limit.
    pub pool_candidates: &'static str,
    /// Binds: client, now, now, cutoff, cutoff, now, now (cutoff = now - min_interval).
    pub count_client_pass: &'static str,
    /// Binds: client.
    pub client_passes: &'static str,
    /// Binds: domain, client_net, sender, now.
    pub note_domain_pass: &'static str,
    /// Binds: domain, client_net.
    pub domain_state: &'static str,
    /// Batched deletes, each bound with: cutoff, batch size.
    pub purge_waiting: &'static str,
    pub purge_passed: &'static str,
    pub purge_awl_client: &'static str,
    pub purge_awl_domain: &'static str,
    /// Binds: the smallest count reported.
    pub pending_by_network: &'static str,
    /// No binds.
    pub count_pending: &'static str,
    /// Deletes the oldest pending rows. Binds: how many.
    pub trim_pending: &'static str,
    /// No binds.
    pub stats_counts: &'static str,
    /// Binds: first_seen cutoff (never-retried entries older than that).
    pub stats_top_clients: &'static str,
    pub stats_top_senders: &'static str,
    /// No binds.
    pub dump: &'static str,
}

// Statements PostgreSQL and SQLite share, written once.

const GET: &str = "SELECT first_seen, last_seen, passed_at, attempts, client_address FROM greylist \
     WHERE client_net = $1 AND sender = $2 AND recipient = $3";

const INSERT_FIRST: &str = "INSERT INTO greylist \
     (client_net, sender, recipient, first_seen, last_seen, passed_at, attempts, client_address) \
     VALUES ($1, $2, $3, $4, $5, NULL, 0, $6) \
     ON CONFLICT (client_net, sender, recipient) DO NOTHING";

const LOOKUP: &str = "SELECT g.first_seen, g.last_seen, g.passed_at, g.attempts, g.client_address, \
     (SELECT passes FROM awl_client WHERE client = $1), \
     (SELECT promoted_at FROM awl_domain WHERE domain = $2 AND client_net = $3 AND last_seen >= $4) \
     FROM (SELECT 1 AS one) o LEFT JOIN greylist g ON g.client_net = $5 AND g.sender = $6 AND g.recipient = $7";

const RECORD_RETRY: &str = "UPDATE greylist SET attempts = attempts + 1, last_seen = $1, client_address = $2 \
     WHERE client_net = $3 AND sender = $4 AND recipient = $5";

const RESTART: &str = "INSERT INTO greylist \
     (client_net, sender, recipient, first_seen, last_seen, passed_at, attempts, client_address) \
     VALUES ($1, $2, $3, $4, $5, NULL, 0, $6) \
     ON CONFLICT (client_net, sender, recipient) DO UPDATE SET first_seen = excluded.first_seen, \
     last_seen = excluded.last_seen, passed_at = NULL, attempts = 0, client_address = excluded.client_address";

const RECORD_PASS: &str = "UPDATE greylist SET passed_at = COALESCE(passed_at, $1), last_seen = $2 \
     WHERE client_net = $3 AND sender = $4 AND recipient = $5";

const POOL_CANDIDATES: &str = "SELECT client_address, first_seen FROM greylist \
     WHERE sender = $1 AND recipient = $2 AND client_net <> $3 AND first_seen <= $4 \
     ORDER BY first_seen DESC, client_net LIMIT $5";

const COUNT_CLIENT_PASS: &str = "INSERT INTO awl_client (client, passes, last_counted, last_seen) \
     VALUES ($1, 1, $2, $3) \
     ON CONFLICT (client) DO UPDATE SET \
     passes = CASE WHEN awl_client.last_counted <= $4 THEN awl_client.passes + 1 ELSE awl_client.passes END, \
     last_counted = CASE WHEN awl_client.last_counted <= $5 THEN $6 ELSE awl_client.last_counted END, \
     last_seen = $7";

const CLIENT_PASSES: &str = "SELECT passes FROM awl_client WHERE client = $1";

const NOTE_DOMAIN_PASS: &str = "INSERT INTO awl_domain (domain, client_net, first_sender, promoted_at, last_seen) \
     VALUES ($1, $2, $3, NULL, $4) \
     ON CONFLICT (domain, client_net) DO UPDATE SET \
     promoted_at = CASE \
         WHEN awl_domain.promoted_at IS NOT NULL THEN awl_domain.promoted_at \
         WHEN awl_domain.first_sender <> excluded.first_sender THEN excluded.last_seen \
         ELSE NULL END, \
     last_seen = excluded.last_seen";

const DOMAIN_STATE: &str = "SELECT promoted_at, last_seen FROM awl_domain WHERE domain = $1 AND client_net = $2";

const STATS_TOP_CLIENTS: &str = "SELECT client_net, COUNT(*) AS n FROM greylist \
     WHERE passed_at IS NULL AND attempts = 0 AND first_seen < $1 \
     GROUP BY client_net ORDER BY n DESC, client_net LIMIT 10";

const STATS_TOP_SENDERS: &str = "SELECT sender, COUNT(*) AS n FROM greylist \
     WHERE passed_at IS NULL AND attempts = 0 AND first_seen < $1 \
     GROUP BY sender ORDER BY n DESC, sender LIMIT 10";

const PENDING_BY_NETWORK: &str = "SELECT client_net, COUNT(*) AS n FROM greylist WHERE passed_at IS NULL \
     GROUP BY client_net HAVING COUNT(*) >= $1";

// Portable statements: no placeholders, no dialect.

const COUNT_PENDING: &str = "SELECT COUNT(*) FROM greylist WHERE passed_at IS NULL";

const STATS_COUNTS: &str = "SELECT g.total, g.passed, \
     (SELECT COUNT(*) FROM awl_client), \
     (SELECT COUNT(*) FROM awl_domain WHERE promoted_at IS NOT NULL) \
     FROM (SELECT COUNT(*) AS total, COUNT(passed_at) AS passed FROM greylist) g";

const DUMP: &str = "SELECT client_net, sender, recipient, first_seen, last_seen, passed_at, attempts, client_address \
     FROM greylist ORDER BY first_seen, client_net, sender, recipient";

pub(super) static SQLITE: Sql = Sql {
    get: GET,
    insert_first: INSERT_FIRST,
    lookup: LOOKUP,
    record_retry: RECORD_RETRY,
    record_pass: RECORD_PASS,
    restart: RESTART,
    pool_candidates: POOL_CANDIDATES,
    count_client_pass: COUNT_CLIENT_PASS,
    client_passes: CLIENT_PASSES,
    note_domain_pass: NOTE_DOMAIN_PASS,
    domain_state: DOMAIN_STATE,
    // SQLite has no DELETE … LIMIT unless compiled with SQLITE_ENABLE_UPDATE_DELETE_LIMIT; a
    // rowid subquery does the same. SQLite has one writer, so no predicate re-check is needed.
    purge_waiting: "DELETE FROM greylist WHERE rowid IN \
         (SELECT rowid FROM greylist WHERE passed_at IS NULL AND first_seen < $1 LIMIT $2)",
    purge_passed: "DELETE FROM greylist WHERE rowid IN \
         (SELECT rowid FROM greylist WHERE passed_at IS NOT NULL AND last_seen < $1 LIMIT $2)",
    purge_awl_client: "DELETE FROM awl_client WHERE rowid IN \
         (SELECT rowid FROM awl_client WHERE last_seen < $1 LIMIT $2)",
    purge_awl_domain: "DELETE FROM awl_domain WHERE rowid IN \
         (SELECT rowid FROM awl_domain WHERE last_seen < $1 LIMIT $2)",
    pending_by_network: PENDING_BY_NETWORK,
    count_pending: COUNT_PENDING,
    // The waiting index is (first_seen) WHERE passed_at IS NULL: oldest first, no sort.
    trim_pending: "DELETE FROM greylist WHERE rowid IN (\
         SELECT rowid FROM greylist WHERE passed_at IS NULL ORDER BY first_seen LIMIT $1)",
    stats_counts: STATS_COUNTS,
    stats_top_clients: STATS_TOP_CLIENTS,
    stats_top_senders: STATS_TOP_SENDERS,
    dump: DUMP,
};

pub(super) static POSTGRES: Sql = Sql {
    get: GET,
    insert_first: INSERT_FIRST,
    lookup: LOOKUP,
    record_retry: RECORD_RETRY,
    record_pass: RECORD_PASS,
    restart: RESTART,
    pool_candidates: POOL_CANDIDATES,
    count_client_pass: COUNT_CLIENT_PASS,
    client_passes: CLIENT_PASSES,
    note_domain_pass: NOTE_DOMAIN_PASS,
    domain_state: DOMAIN_STATE,
    // `ctid = ANY(ARRAY(…))` is a TID scan. The outer predicate is repeated on purpose: if
    // another host updates a selected row meanwhile (a retry, a pass), PostgreSQL re-checks the
    // new row version against it and leaves the row alone.
    purge_waiting: "DELETE FROM greylist WHERE passed_at IS NULL AND first_seen < $1 AND ctid = ANY(ARRAY(\
         SELECT ctid FROM greylist WHERE passed_at IS NULL AND first_seen < $1 LIMIT $2))",
    purge_passed: "DELETE FROM greylist WHERE passed_at IS NOT NULL AND last_seen < $1 AND ctid = ANY(ARRAY(\
         SELECT ctid FROM greylist WHERE passed_at IS NOT NULL AND last_seen < $1 LIMIT $2))",
    purge_awl_client: "DELETE FROM awl_client WHERE last_seen < $1 AND ctid = ANY(ARRAY(\
         SELECT ctid FROM awl_client WHERE last_seen < $1 LIMIT $2))",
    purge_awl_domain: "DELETE FROM awl_domain WHERE last_seen < $1 AND ctid = ANY(ARRAY(\
         SELECT ctid FROM awl_domain WHERE last_seen < $1 LIMIT $2))",
    pending_by_network: PENDING_BY_NETWORK,
    count_pending: COUNT_PENDING,
    trim_pending: "DELETE FROM greylist WHERE passed_at IS NULL AND ctid = ANY(ARRAY(\
         SELECT ctid FROM greylist WHERE passed_at IS NULL ORDER BY first_seen LIMIT $1))",
    stats_counts: STATS_COUNTS,
    stats_top_clients: STATS_TOP_CLIENTS,
    stats_top_senders: STATS_TOP_SENDERS,
    dump: DUMP,
};

pub(super) static MYSQL: Sql = Sql {
    get: "SELECT first_seen, last_seen, passed_at, attempts, client_address FROM greylist \
         WHERE client_net = ? AND sender = ? AND recipient = ?",
    // Not INSERT IGNORE: that would also turn errors such as "data too long" into warnings and
    // store a truncated key. The no-op update changes nothing and reports 0 rows.
    insert_first: "INSERT INTO greylist \
         (client_net, sender, recipient, first_seen, last_seen, passed_at, attempts, client_address) \
         VALUES (?, ?, ?, ?, ?, NULL, 0, ?) \
         ON DUPLICATE KEY UPDATE client_net = client_net",
    lookup: "SELECT g.first_seen, g.last_seen, g.passed_at, g.attempts, g.client_address, \
         (SELECT passes FROM awl_client WHERE client = ?), \
         (SELECT promoted_at FROM awl_domain WHERE domain = ? AND client_net = ? AND last_seen >= ?) \
         FROM (SELECT 1 AS one) o LEFT JOIN greylist g ON g.client_net = ? AND g.sender = ? AND g.recipient = ?",
    record_retry: "UPDATE greylist SET attempts = attempts + 1, last_seen = ?, client_address = ? \
         WHERE client_net = ? AND sender = ? AND recipient = ?",
    record_pass: "UPDATE greylist SET passed_at = COALESCE(passed_at, ?), last_seen = ? \
         WHERE client_net = ? AND sender = ? AND recipient = ?",
    restart: "INSERT INTO greylist \
         (client_net, sender, recipient, first_seen, last_seen, passed_at, attempts, client_address) \
         VALUES (?, ?, ?, ?, ?, NULL, 0, ?) \
         ON DUPLICATE KEY UPDATE first_seen = VALUES(first_seen), last_seen = VALUES(last_seen), \
         passed_at = NULL, attempts = 0, client_address = VALUES(client_address)",
    pool_candidates: "SELECT client_address, first_seen FROM greylist \
         WHERE sender = ? AND recipient = ? AND client_net <> ? AND first_seen <= ? \
         ORDER BY first_seen DESC, client_net LIMIT ?",
    // MySQL applies the assignments left to right and later ones see earlier results, so
    // `passes` must come before `last_counted` (it tests the old value).
    count_client_pass: "INSERT INTO awl_client (client, passes, last_counted, last_seen) VALUES (?, 1, ?, ?) \
         ON DUPLICATE KEY UPDATE \
         passes = IF(last_counted <= ?, passes + 1, passes), \
         last_counted = IF(last_counted <= ?, ?, last_counted), \
         last_seen = ?",
    client_passes: "SELECT passes FROM awl_client WHERE client = ?",
    // VALUES(col) rather than the MySQL 8.0.19 row alias, which MariaDB does not have.
    // `promoted_at` comes before `last_seen` (left-to-right assignment, see above).
    note_domain_pass: "INSERT INTO awl_domain (domain, client_net, first_sender, promoted_at, last_seen) \
         VALUES (?, ?, ?, NULL, ?) \
         ON DUPLICATE KEY UPDATE \
         promoted_at = CASE \
             WHEN promoted_at IS NOT NULL THEN promoted_at \
             WHEN first_sender <> VALUES(first_sender) THEN VALUES(last_seen) \
             ELSE NULL END, \
         last_seen = VALUES(last_seen)",
    domain_state: "SELECT promoted_at, last_seen FROM awl_domain WHERE domain = ? AND client_net = ?",
    purge_waiting: "DELETE FROM greylist WHERE passed_at IS NULL AND first_seen < ? LIMIT ?",
    purge_passed: "DELETE FROM greylist WHERE passed_at IS NOT NULL AND last_seen < ? LIMIT ?",
    purge_awl_client: "DELETE FROM awl_client WHERE last_seen < ? LIMIT ?",
    purge_awl_domain: "DELETE FROM awl_domain WHERE last_seen < ? LIMIT ?",
    pending_by_network: "SELECT client_net, COUNT(*) AS n FROM greylist WHERE passed_at IS NULL \
         GROUP BY client_net HAVING COUNT(*) >= ?",
    count_pending: COUNT_PENDING,
    trim_pending: "DELETE FROM greylist WHERE passed_at IS NULL ORDER BY first_seen LIMIT ?",
    stats_counts: STATS_COUNTS,
    stats_top_clients: "SELECT client_net, COUNT(*) AS n FROM greylist \
         WHERE passed_at IS NULL AND attempts = 0 AND first_seen < ? \
         GROUP BY client_net ORDER BY n DESC, client_net LIMIT 10",
    stats_top_senders: "SELECT sender, COUNT(*) AS n FROM greylist \
         WHERE passed_at IS NULL AND attempts = 0 AND first_seen < ? \
         GROUP BY sender ORDER BY n DESC, sender LIMIT 10",
    dump: DUMP,
};
