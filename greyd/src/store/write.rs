//! Writes: every change to the store is a [`WriteOp`], applied by [`apply`] on one connection.
//! PostgreSQL and MySQL take them straight from the pool (the server handles concurrent
//! writers); SQLite's go through its single writer (`writer.rs`).

use std::future::Future;
use std::pin::Pin;

use sqlx::AnyConnection;

use super::sql::Sql;
use super::{Backend, Entry, Triplet};

/// One change, with owned values so it can wait in a queue.
#[derive(Debug)]
pub(super) enum WriteOp {
    InsertFirst {
        key: OwnedKey,
        client_address: String,
        now: i64,
    },
    RecordRetry {
        key: OwnedKey,
        client_address: String,
        now: i64,
    },
    RecordPass {
        key: OwnedKey,
        now: i64,
    },
    Restart {
        key: OwnedKey,
        client_address: String,
        now: i64,
    },
    CountClientPass {
        client: String,
        now: i64,
        min_interval: i64,
    },
    NoteDomainPass {
        domain: String,
        client_net: String,
        sender: String,
        now: i64,
    },
    /// A pass and its auto-whitelist bookkeeping as one operation: one writer turn on SQLite,
    /// one transaction on a server, where they were three of each.
    Pass {
        key: OwnedKey,
        now: i64,
        book: OwnedPassBook,
    },
}

/// What [`WriteOp::Pass`] writes besides the pass itself.
#[derive(Debug, Default)]
pub(super) struct OwnedPassBook {
    /// Insert the row first (a sender-pool pass of a triplet never stored), with this client.
    pub insert_for: Option<String>,
    /// Count a pass for this client address, at most once per this many seconds.
    pub count_client: Option<(String, i64)>,
    /// Note the pass of the key's sender for this sender domain (the key's network).
    pub note_domain: Option<String>,
}

/// What a write returns.
#[derive(Debug, Clone)]
pub(super) enum WriteOutcome {
    Entry(Option<Entry>),
    Count(i64),
    Flag(bool),
    Passed(PassOutcome),
    Done,
}

/// What a [`WriteOp::Pass`] found: the client's pass count (0 when not counted) and whether
/// the sender domain is promoted for the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassOutcome {
    pub client_passes: i64,
    pub domain_promoted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct OwnedKey {
    pub client_net: String,
    pub sender: String,
    pub recipient: String,
}

impl OwnedKey {
    pub(super) fn as_triplet(&self) -> Triplet<'_> {
        Triplet { client_net: &self.client_net, sender: &self.sender, recipient: &self.recipient }
    }
}

impl From<&Triplet<'_>> for OwnedKey {
    fn from(t: &Triplet<'_>) -> OwnedKey {
        OwnedKey { client_net: t.client_net.into(), sender: t.sender.into(), recipient: t.recipient.into() }
    }
}

pub(super) type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, sqlx::Error>> + Send + 'a>>;

/// Applies one operation on one connection. Boxed as `dyn Future + Send` (see `Store::run`).
pub(super) fn apply<'a>(
    conn: &'a mut AnyConnection,
    sql: &'static Sql,
    backend: Backend,
    op: &'a WriteOp,
) -> Boxed<'a, WriteOutcome> {
    Box::pin(async move {
        match op {
            WriteOp::InsertFirst { key, client_address, now } => {
                // Two rounds: should the row we ran into be purged before we read it, insert again.
                for _ in 0..2 {
                    let inserted = bind_key(sqlx::query(sql.insert_first), key)
                        .bind(now)
                        .bind(now)
                        .bind(client_address)
                        .execute(&mut *conn)
                        .await?;
                    // Our row: no need to read it back. Only a conflict (another MX was first)
                    // needs the stored row. Not on MySQL: sqlx connects with CLIENT_FOUND_ROWS,
                    // under which a duplicate left unchanged also reports one affected row.
                    if inserted.rows_affected() == 1 && backend != Backend::MySql {
                        return Ok(WriteOutcome::Entry(Some(Entry::first(*now, client_address))));
                    }
                    if let Some(entry) = super::fetch_entry(&mut *conn, sql, &key.as_triplet()).await? {
                        return Ok(WriteOutcome::Entry(Some(entry)));
                    }
                }
                Ok(WriteOutcome::Entry(None))
            }
            WriteOp::RecordRetry { key, client_address, now } => {
                bind_key(sqlx::query(sql.record_retry).bind(now).bind(client_address), key).execute(&mut *conn).await?;
                Ok(WriteOutcome::Done)
            }
            WriteOp::RecordPass { key, now } => {
                bind_key(sqlx::query(sql.record_pass).bind(now).bind(now), key).execute(&mut *conn).await?;
                Ok(WriteOutcome::Done)
            }
            WriteOp::Restart { key, client_address, now } => {
                bind_key(sqlx::query(sql.restart), key)
                    .bind(now)
                    .bind(now)
                    .bind(client_address)
                    .execute(&mut *conn)
                    .await?;
                Ok(WriteOutcome::Done)
            }
            WriteOp::CountClientPass { client, now, min_interval } => {
                count_client_pass(&mut *conn, sql, client, *now, *min_interval).await.map(WriteOutcome::Count)
            }
            WriteOp::NoteDomainPass { domain, client_net, sender, now } => {
                note_domain_pass(&mut *conn, sql, domain, client_net, sender, *now).await.map(WriteOutcome::Flag)
            }
            WriteOp::Pass { key, now, book } => {
                // SQLite's writer is the only writer of its file, and each statement commits by
                // itself there (a batch need not be atomic); on a server, one transaction.
                let outcome = if backend == Backend::Sqlite {
                    pass(&mut *conn, sql, key, *now, book).await?
                } else {
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    let outcome = pass(&mut tx, sql, key, *now, book).await?;
                    tx.commit().await?;
                    outcome
                };
                Ok(WriteOutcome::Passed(outcome))
            }
        }
    })
}

/// The statements of [`WriteOp::Pass`], in order.
async fn pass(
    conn: &mut AnyConnection,
    sql: &'static Sql,
    key: &OwnedKey,
    now: i64,
    book: &OwnedPassBook,
) -> Result<PassOutcome, sqlx::Error> {
    if let Some(client_address) = &book.insert_for {
        bind_key(sqlx::query(sql.insert_first), key)
            .bind(now)
            .bind(now)
            .bind(client_address)
            .execute(&mut *conn)
            .await?;
    }
    bind_key(sqlx::query(sql.record_pass).bind(now).bind(now), key).execute(&mut *conn).await?;
    let mut outcome = PassOutcome::default();
    if let Some((client, interval)) = &book.count_client {
        outcome.client_passes = count_client_pass(&mut *conn, sql, client, now, *interval).await?;
    }
    if let Some(domain) = &book.note_domain {
        outcome.domain_promoted = note_domain_pass(&mut *conn, sql, domain, &key.client_net, &key.sender, now).await?;
    }
    Ok(outcome)
}

/// Client auto-whitelist: counts one pass unless one was counted less than `min_interval`
/// ago; returns the count after it.
async fn count_client_pass(
    conn: &mut AnyConnection,
    sql: &'static Sql,
    client: &str,
    now: i64,
    min_interval: i64,
) -> Result<i64, sqlx::Error> {
    let cutoff = now.saturating_sub(min_interval);
    sqlx::query(sql.count_client_pass)
        .bind(client)
        .bind(now)
        .bind(now)
        .bind(cutoff)
        .bind(cutoff)
        .bind(now)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    let passes: Option<i64> = sqlx::query_scalar(sql.client_passes).bind(client).fetch_optional(&mut *conn).await?;
    Ok(passes.unwrap_or(0))
}

/// Domain auto-whitelist: notes that `sender` passed from `client_net`; returns whether the
/// pair is promoted.
async fn note_domain_pass(
    conn: &mut AnyConnection,
    sql: &'static Sql,
    domain: &str,
    client_net: &str,
    sender: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query(sql.note_domain_pass).bind(domain).bind(client_net).bind(sender).bind(now).execute(&mut *conn).await?;
    let state: Option<(Option<i64>, i64)> =
        sqlx::query_as(sql.domain_state).bind(domain).bind(client_net).fetch_optional(&mut *conn).await?;
    Ok(matches!(state, Some((Some(_), _))))
}

/// A statement under construction on the `Any` driver.
type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, <sqlx::Any as sqlx::Database>::Arguments>;

/// Binds a triplet's key in the order every statement names its columns: client_net, sender,
/// recipient.
fn bind_key<'q>(query: AnyQuery<'q>, key: &'q OwnedKey) -> AnyQuery<'q> {
    query.bind(&key.client_net).bind(&key.sender).bind(&key.recipient)
}
