//! Multi-row statements for SQLite's writer: each statement is a round trip to SQLite's
//! connection thread, and those round trips, not SQLite's own work, bound a batch.

use sqlx::AnyConnection;

use super::sql::Sql;
use super::write::{OwnedKey, WriteOp, WriteOutcome};
use super::{Entry, fetch_entry};

/// One slot per operation of a batch; `None` until it is applied.
pub(super) type Results = [Option<Result<WriteOutcome, sqlx::Error>>];

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

/// Every first attempt of the batch in one `INSERT … ON CONFLICT DO NOTHING RETURNING`. A row
/// that was not inserted (a second request for the same new triplet, or a row already there)
/// is read back, as [`super::write::apply`] does. Fills the slots of the `InsertFirst` ops when
/// there are at least two.
pub(super) async fn insert_firsts(
    conn: &mut AnyConnection,
    sql: &'static Sql,
    ops: &[WriteOp],
    results: &mut Results,
) -> Result<(), sqlx::Error> {
    let firsts: Vec<(usize, &OwnedKey, &String, i64)> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match op {
            WriteOp::InsertFirst { key, client_address, now } => Some((i, key, client_address, *now)),
            _ => None,
        })
        .collect();
    if firsts.len() < 2 {
        return Ok(());
    }
    let mut query = sqlx::QueryBuilder::<sqlx::Any>::new(
        "INSERT INTO greylist (client_net, sender, recipient, first_seen, last_seen, passed_at, attempts, \
         client_address) ",
    );
    query.push_values(padded(&firsts), |mut row, (_, key, client_address, now)| {
        row.push_bind(key.client_net.as_str())
            .push_bind(key.sender.as_str())
            .push_bind(key.recipient.as_str())
            .push_bind(*now)
            .push_bind(*now)
            .push_bind(None::<i64>)
            .push_bind(0_i64)
            .push_bind(client_address.as_str());
    });
    query.push(" ON CONFLICT (client_net, sender, recipient) DO NOTHING RETURNING client_net, sender, recipient");
    let mut inserted: Vec<(String, String, String)> = query.build_query_as().fetch_all(&mut *conn).await?;
    for (i, key, client_address, now) in firsts {
        let ours = inserted
            .iter()
            .position(|(n, s, r)| *n == key.client_net && *s == key.sender && *r == key.recipient)
            .map(|at| inserted.swap_remove(at));
        results[i] = Some(match ours {
            Some(_) => Ok(WriteOutcome::Entry(Some(Entry::first(now, client_address)))),
            None => fetch_entry(&mut *conn, sql, &key.as_triplet()).await.map(WriteOutcome::Entry),
        });
    }
    Ok(())
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
