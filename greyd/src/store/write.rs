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
    InsertFirst { key: OwnedKey, client_address: String, now: i64 },
    RecordRetry { key: OwnedKey, client_address: String, now: i64 },
    RecordPass { key: OwnedKey, now: i64 },
    Restart { key: OwnedKey, client_address: String, now: i64 },
    CountClientPass { client: String, now: i64, min_interval: i64 },
    NoteDomainPass { domain: String, client_net: String, sender: String, now: i64 },
}

/// What a write returns.
#[derive(Debug, Clone)]
pub(super) enum WriteOutcome {
    Entry(Option<Entry>),
    Count(i64),
    Flag(bool),
    Done,
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
                let cutoff = now.saturating_sub(*min_interval);
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
                let passes: Option<i64> =
                    sqlx::query_scalar(sql.client_passes).bind(client).fetch_optional(&mut *conn).await?;
                Ok(WriteOutcome::Count(passes.unwrap_or(0)))
            }
            WriteOp::NoteDomainPass { domain, client_net, sender, now } => {
                sqlx::query(sql.note_domain_pass)
                    .bind(domain)
                    .bind(client_net)
                    .bind(sender)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                let state: Option<(Option<i64>, i64)> =
                    sqlx::query_as(sql.domain_state).bind(domain).bind(client_net).fetch_optional(&mut *conn).await?;
                Ok(WriteOutcome::Flag(matches!(state, Some((Some(_), _)))))
            }
        }
    })
}

/// A statement under construction on the `Any` driver.
type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, <sqlx::Any as sqlx::Database>::Arguments>;

/// Binds a triplet's key in the order every statement names its columns: client_net, sender,
/// recipient.
fn bind_key<'q>(query: AnyQuery<'q>, key: &'q OwnedKey) -> AnyQuery<'q> {
    query.bind(&key.client_net).bind(&key.sender).bind(&key.recipient)
}
