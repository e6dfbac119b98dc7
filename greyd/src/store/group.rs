//! Multi-row statements for SQLite's writer: each statement is a round trip to SQLite's
//! connection thread, and those round trips, not SQLite's own work, bound a batch.

use sqlx::AnyConnection;

use super::write::{OwnedKey, OwnedPassBook, PassOutcome};
use super::{FirstRule, Lookup};

/// Early retries of one triplet, waiting to be written.
#[derive(Debug, Clone)]
pub(super) struct PendingRetry {
    pub key: OwnedKey,
    /// The latest attempt's client address and time.
    pub client_address: String,
    pub now: i64,
    /// Retries to add to `attempts`.
    pub count: i64,
}

/// The rows of a grouped statement, padded to a power of two by repeating the last one (a
/// repeated row changes nothing), so SQLite keeps a handful of prepared statements instead of
/// one per batch size.
fn padded<T>(rows: &[T]) -> impl Iterator<Item = &T> {
    let len = rows.len().next_power_of_two();
    (0..len).filter_map(move |i| rows.get(i).or(rows.last()))
}

/// A first attempt for [`insert_firsts`]: an `InsertFirst` write, or a lookup that may insert.
pub(super) struct First<'a> {
    pub key: &'a OwnedKey,
    pub client_address: &'a str,
    pub now: i64,
    /// The lookup this attempt comes from: insert only where its rule allows. `None` (an
    /// `InsertFirst` write): insert unless the row exists.
    pub guard: Option<&'a LookupOp>,
}

/// Every first attempt of the batch in one `INSERT … SELECT … ON CONFLICT DO NOTHING
/// RETURNING`. A guarded row is left out where its client or sender domain is auto-whitelisted
/// or a sender-pool candidate exists: `FirstRule` in SQL, with the same subqueries as
/// `Sql::lookup` and `Sql::pool_candidates`. One result per row of `firsts`, in order: whether
/// it was inserted.
pub(super) async fn insert_firsts(conn: &mut AnyConnection, firsts: &[First<'_>]) -> Result<Vec<bool>, sqlx::Error> {
    if firsts.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = sqlx::QueryBuilder::<sqlx::Any>::new(
        "WITH v (client_net, sender, recipient, now, client_address, awl_passes, domain, domain_cutoff, \
         pool_cutoff) AS (",
    );
    query.push_values(padded(firsts), |mut row, first| {
        let guard = first.guard;
        let awl_passes = guard.map(|g| g.rule.awl_client_passes).filter(|n| *n > 0);
        let domain = guard.filter(|g| g.rule.awl_domains).map(|g| g.domain.as_str());
        row.push_bind(first.key.client_net.as_str())
            .push_bind(first.key.sender.as_str())
            .push_bind(first.key.recipient.as_str())
            .push_bind(first.now)
            .push_bind(first.client_address)
            .push_bind(awl_passes)
            .push_bind(domain)
            .push_bind(guard.map_or(0, |g| g.domain_cutoff))
            .push_bind(guard.and_then(|g| g.pool_cutoff));
    });
    // `WHERE` before `ON CONFLICT` also settles SQLite's parsing ambiguity of upserts.
    query.push(
        ") INSERT INTO greylist (client_net, sender, recipient, first_seen, last_seen, passed_at, attempts, \
         client_address) \
         SELECT client_net, sender, recipient, now, now, NULL, 0, client_address FROM v \
         WHERE NOT EXISTS (SELECT 1 FROM awl_client WHERE client = v.client_address AND passes >= v.awl_passes) \
         AND NOT EXISTS (SELECT 1 FROM awl_domain WHERE domain = v.domain AND client_net = v.client_net \
          AND promoted_at IS NOT NULL AND last_seen >= v.domain_cutoff) \
         AND NOT (v.pool_cutoff IS NOT NULL AND EXISTS (SELECT 1 FROM greylist p \
          WHERE p.sender = v.sender AND p.recipient = v.recipient AND p.client_net <> v.client_net \
          AND p.first_seen <= v.pool_cutoff)) \
         ON CONFLICT (client_net, sender, recipient) DO NOTHING RETURNING client_net, sender, recipient",
    );
    let mut inserted: Vec<(String, String, String)> = query.build_query_as().fetch_all(&mut *conn).await?;
    Ok(firsts
        .iter()
        .map(|first| {
            let key = first.key;
            inserted
                .iter()
                .position(|(n, s, r)| *n == key.client_net && *s == key.sender && *r == key.recipient)
                .map(|at| inserted.swap_remove(at))
                .is_some()
        })
        .collect())
}

/// A lookup queued for the writer, which may insert (see `Store::lookup_or_insert`).
#[derive(Debug)]
pub(super) struct LookupOp {
    pub key: OwnedKey,
    pub client: String,
    pub domain: String,
    pub domain_cutoff: i64,
    pub pool_cutoff: Option<i64>,
    pub now: i64,
    pub rule: FirstRule,
}

/// One row of [`read_lookups`]: the op's index and the columns of `Sql::lookup`.
type LookupRow = (i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<String>, Option<i64>, Option<i64>);

/// What lookups read, in one statement: per op, in order, what `Sql::lookup` reads, with the
/// same subqueries over a `VALUES` list instead of bound scalars.
pub(super) async fn read_lookups(conn: &mut AnyConnection, ops: &[&LookupOp]) -> Result<Vec<Lookup>, sqlx::Error> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = sqlx::QueryBuilder::<sqlx::Any>::new(
        "WITH v (i, client, domain, domain_cutoff, client_net, sender, recipient) AS (",
    );
    let indexed: Vec<(i64, &LookupOp)> = (0_i64..).zip(ops.iter().copied()).collect();
    query.push_values(padded(&indexed), |mut row, (i, op)| {
        row.push_bind(*i)
            .push_bind(op.client.as_str())
            .push_bind(op.domain.as_str())
            .push_bind(op.domain_cutoff)
            .push_bind(op.key.client_net.as_str())
            .push_bind(op.key.sender.as_str())
            .push_bind(op.key.recipient.as_str());
    });
    query.push(
        ") SELECT v.i, g.first_seen, g.last_seen, g.passed_at, g.attempts, g.client_address, \
         (SELECT passes FROM awl_client WHERE client = v.client), \
         (SELECT promoted_at FROM awl_domain \
          WHERE domain = v.domain AND client_net = v.client_net AND last_seen >= v.domain_cutoff) \
         FROM v LEFT JOIN greylist g \
         ON g.client_net = v.client_net AND g.sender = v.sender AND g.recipient = v.recipient",
    );
    let rows: Vec<LookupRow> = query.build_query_as().fetch_all(&mut *conn).await?;
    let mut found: Vec<Option<Lookup>> = ops.iter().map(|_| None).collect();
    for (i, first_seen, last_seen, passed_at, attempts, client_address, passes, promoted) in rows {
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| found.get_mut(i)) {
            *slot = Some(super::lookup_from((
                first_seen,
                last_seen,
                passed_at,
                attempts,
                client_address,
                passes,
                promoted,
            )));
        }
    }
    found.into_iter().map(|f| f.ok_or(sqlx::Error::RowNotFound)).collect()
}

/// Writes early retries in one `UPDATE … FROM (VALUES …)`: attempts += count, last_seen and
/// the client address from the latest. A triplet that is not stored is left alone.
pub(super) async fn write_retries(conn: &mut AnyConnection, rows: &[PendingRetry]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut query = sqlx::QueryBuilder::<sqlx::Any>::new(
        "UPDATE greylist SET attempts = greylist.attempts + v.column1, last_seen = MAX(greylist.last_seen, \
         v.column2), client_address = v.column3 FROM (",
    );
    // Padding rows match no triplet (no client network is empty): with UPDATE … FROM, a row
    // matched twice takes one of its source rows at random, so a copy of a real row could
    // replace its count.
    let width = rows.len().next_power_of_two();
    query.push_values((0..width).map(|i| rows.get(i)), |mut row, r| match r {
        Some(r) => {
            row.push_bind(r.count)
                .push_bind(r.now)
                .push_bind(r.client_address.as_str())
                .push_bind(r.key.client_net.as_str())
                .push_bind(r.key.sender.as_str())
                .push_bind(r.key.recipient.as_str());
        }
        None => {
            row.push_bind(0_i64).push_bind(0_i64).push_bind("").push_bind("").push_bind("").push_bind("");
        }
    });
    query.push(
        ") AS v WHERE greylist.client_net = v.column4 AND greylist.sender = v.column5 \
         AND greylist.recipient = v.column6",
    );
    query.build().execute(&mut *conn).await.map(drop)
}

/// A pass for [`write_passes`]: a `WriteOp::Pass`'s fields.
pub(super) struct Pass<'a> {
    pub key: &'a OwnedKey,
    pub now: i64,
    pub book: &'a OwnedPassBook,
}

/// Every pass of the batch and its bookkeeping in at most five statements, where one by one
/// they took five each: the passes in one `UPDATE … FROM (VALUES …)`, the client counts in one
/// multi-row upsert and one read, the domain notes likewise. SQLite applies the rows of a
/// multi-row upsert one after the other, so two passes of one client or domain in a batch count
/// as they would in turn. A pool pass's row must exist already (the caller inserts it). One
/// outcome per pass, in order.
pub(super) async fn write_passes(
    conn: &mut AnyConnection,
    passes: &[Pass<'_>],
) -> Result<Vec<PassOutcome>, sqlx::Error> {
    if passes.is_empty() {
        return Ok(Vec::new());
    }
    // passed_at and last_seen. Padding rows match no triplet (see `write_retries`).
    let mut query = sqlx::QueryBuilder::<sqlx::Any>::new(
        "UPDATE greylist SET passed_at = COALESCE(greylist.passed_at, v.column1), \
         last_seen = MAX(greylist.last_seen, v.column1) FROM (",
    );
    let width = passes.len().next_power_of_two();
    query.push_values((0..width).map(|i| passes.get(i)), |mut row, p| match p {
        Some(p) => {
            row.push_bind(p.now)
                .push_bind(p.key.client_net.as_str())
                .push_bind(p.key.sender.as_str())
                .push_bind(p.key.recipient.as_str());
        }
        None => {
            row.push_bind(0_i64).push_bind("").push_bind("").push_bind("");
        }
    });
    query.push(
        ") AS v WHERE greylist.client_net = v.column2 AND greylist.sender = v.column3 \
         AND greylist.recipient = v.column4",
    );
    query.build().execute(&mut *conn).await?;

    let mut outcomes = vec![PassOutcome::default(); passes.len()];
    let counted: Vec<(usize, &str, i64, i64)> = passes
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.book.count_client.as_ref().map(|(c, interval)| (i, c.as_str(), p.now, *interval)))
        .collect();
    if !counted.is_empty() {
        // As `Sql::count_client_pass`, with each row's cutoff carried in `last_counted` (its
        // `now`) less the interval, bound once per interval (the request path counts hourly:
        // one statement). A repeated padding row is the same pass again within its interval,
        // which counts nothing.
        let mut intervals: Vec<i64> = counted.iter().map(|c| c.3).collect();
        intervals.sort_unstable();
        intervals.dedup();
        for interval in intervals {
            let rows: Vec<&(usize, &str, i64, i64)> = counted.iter().filter(|c| c.3 == interval).collect();
            let mut query = sqlx::QueryBuilder::<sqlx::Any>::new(
                "INSERT INTO awl_client (client, passes, last_counted, last_seen) ",
            );
            query.push_values(padded(&rows), |mut row, (_, client, now, _)| {
                row.push_bind(*client).push_bind(1_i64).push_bind(*now).push_bind(*now);
            });
            query
                .push(
                    " ON CONFLICT (client) DO UPDATE SET passes = CASE \
                     WHEN awl_client.last_counted <= excluded.last_counted - ",
                )
                .push_bind(interval)
                .push(
                    " THEN awl_client.passes + 1 ELSE awl_client.passes END, last_counted = CASE \
                     WHEN awl_client.last_counted <= excluded.last_counted - ",
                )
                .push_bind(interval)
                .push(" THEN excluded.last_counted ELSE awl_client.last_counted END, last_seen = excluded.last_seen");
            query.build().execute(&mut *conn).await?;
        }
        let mut query = sqlx::QueryBuilder::<sqlx::Any>::new("SELECT client, passes FROM awl_client WHERE client IN (");
        let mut list = query.separated(", ");
        for (_, client, _, _) in &counted {
            list.push_bind(*client);
        }
        query.push(")");
        let rows: Vec<(String, i64)> = query.build_query_as().fetch_all(&mut *conn).await?;
        for (i, client, _, _) in &counted {
            outcomes[*i].client_passes = rows.iter().find(|(c, _)| c == client).map_or(0, |(_, n)| *n);
        }
    }

    let noted: Vec<(usize, &str, &OwnedKey, i64)> = passes
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.book.note_domain.as_deref().map(|d| (i, d, p.key, p.now)))
        .collect();
    if !noted.is_empty() {
        // As `Sql::note_domain_pass`; a repeated padding row is the same sender again.
        let mut query = sqlx::QueryBuilder::<sqlx::Any>::new(
            "INSERT INTO awl_domain (domain, client_net, first_sender, promoted_at, last_seen) ",
        );
        query.push_values(padded(&noted), |mut row, (_, domain, key, now)| {
            row.push_bind(*domain)
                .push_bind(key.client_net.as_str())
                .push_bind(key.sender.as_str())
                .push_bind(None::<i64>)
                .push_bind(*now);
        });
        query.push(
            " ON CONFLICT (domain, client_net) DO UPDATE SET promoted_at = CASE \
             WHEN awl_domain.promoted_at IS NOT NULL THEN awl_domain.promoted_at \
             WHEN awl_domain.first_sender <> excluded.first_sender THEN excluded.last_seen \
             ELSE NULL END, last_seen = excluded.last_seen",
        );
        query.build().execute(&mut *conn).await?;
        let mut query = sqlx::QueryBuilder::<sqlx::Any>::new("WITH v (domain, client_net) AS (");
        query.push_values(&noted, |mut row, (_, domain, key, _)| {
            row.push_bind(*domain).push_bind(key.client_net.as_str());
        });
        query.push(
            ") SELECT d.domain, d.client_net FROM awl_domain d JOIN v ON d.domain = v.domain \
             AND d.client_net = v.client_net WHERE d.promoted_at IS NOT NULL",
        );
        let promoted: Vec<(String, String)> = query.build_query_as().fetch_all(&mut *conn).await?;
        for (i, domain, key, _) in &noted {
            outcomes[*i].domain_promoted = promoted.iter().any(|(d, n)| d == domain && *n == key.client_net);
        }
    }
    Ok(outcomes)
}
