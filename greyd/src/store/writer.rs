//! Writes, and SQLite's single writer with group commit.
//!
//! Every change to the store is a [`WriteOp`] applied by [`apply`]. PostgreSQL and MySQL take
//! them straight from the pool: the server handles concurrent writers. SQLite has one writer
//! lock per file; connections that compete for it sleep in the busy handler, which wrecks
//! latency under load. So for SQLite one task owns the writing: it takes every operation
//! queued at that moment (up to [`MAX_BATCH`]), applies them in one transaction and answers each
//! caller only after the commit. The commit lands in the WAL before anyone is answered, so an
//! answered first attempt survives the process being killed, as it does without batching.
//!
//! Checkpoints stay SQLite's own (every 1000 WAL pages, inside a commit). Moving them to a
//! background task with PASSIVE checkpoints was tried and measured: under continuous writes
//! the WAL was never reset and grew to 15 GB for a million inserts.

use std::future::Future;
use std::pin::Pin;

use sqlx::{AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};

use super::error::Redactor;
use super::sql::Sql;
use super::{Backend, Entry, StoreError, Triplet};

/// Most operations committed in one transaction.
pub(super) const MAX_BATCH: usize = 256;

/// One change, with owned values so it can wait in a queue.
#[derive(Debug, Clone)]
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

#[derive(Debug, Clone)]
pub(super) struct OwnedKey {
    pub client_net: String,
    pub sender: String,
    pub recipient: String,
}

impl OwnedKey {
    fn as_triplet(&self) -> Triplet<'_> {
        Triplet { client_net: &self.client_net, sender: &self.sender, recipient: &self.recipient }
    }
}

impl From<&Triplet<'_>> for OwnedKey {
    fn from(t: &Triplet<'_>) -> OwnedKey {
        OwnedKey { client_net: t.client_net.into(), sender: t.sender.into(), recipient: t.recipient.into() }
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, sqlx::Error>> + Send + 'a>>;

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
                    let inserted = sqlx::query(sql.insert_first)
                        .bind(&key.client_net)
                        .bind(&key.sender)
                        .bind(&key.recipient)
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
                sqlx::query(sql.record_retry)
                    .bind(now)
                    .bind(client_address)
                    .bind(&key.client_net)
                    .bind(&key.sender)
                    .bind(&key.recipient)
                    .execute(&mut *conn)
                    .await?;
                Ok(WriteOutcome::Done)
            }
            WriteOp::RecordPass { key, now } => {
                sqlx::query(sql.record_pass)
                    .bind(now)
                    .bind(now)
                    .bind(&key.client_net)
                    .bind(&key.sender)
                    .bind(&key.recipient)
                    .execute(&mut *conn)
                    .await?;
                Ok(WriteOutcome::Done)
            }
            WriteOp::Restart { key, client_address, now } => {
                sqlx::query(sql.restart)
                    .bind(&key.client_net)
                    .bind(&key.sender)
                    .bind(&key.recipient)
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

struct Job {
    op: WriteOp,
    reply: oneshot::Sender<Result<WriteOutcome, StoreError>>,
}

/// The SQLite writer's queue. Dropping the last handle ends the task.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    pub(super) fn spawn(pool: AnyPool, sql: &'static Sql, redactor: std::sync::Arc<Redactor>) -> Writer {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(pool, sql, redactor, rx));
        Writer { tx }
    }

    /// Queues one operation and waits for its commit.
    pub(super) async fn write(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Job { op, reply }).await.map_err(|_| StoreError::Unavailable("store writer stopped".into()))?;
        answer.await.map_err(|_| StoreError::Unavailable("store writer stopped".into()))?
    }
}

async fn run(pool: AnyPool, sql: &'static Sql, redactor: std::sync::Arc<Redactor>, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(job) = rx.recv().await {
        batch.push(job);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let ops: Vec<WriteOp> = batch.iter().map(|j| j.op.clone()).collect();
        match commit(&pool, sql, &ops).await {
            Ok(results) => {
                for (job, result) in batch.drain(..).zip(results) {
                    let _ = job.reply.send(result.map_err(|e| redactor.error(Backend::Sqlite, &e)));
                }
            }
            Err(e) => {
                let err = redactor.error(Backend::Sqlite, &e);
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(err.clone()));
                }
            }
        }
    }
}

/// Applies `ops` in one transaction. Per-operation errors are returned per operation; an
/// error of the transaction itself fails them all.
fn commit<'a>(
    pool: &'a AnyPool,
    sql: &'static Sql,
    ops: &'a [WriteOp],
) -> Boxed<'a, Vec<Result<WriteOutcome, sqlx::Error>>> {
    Box::pin(async move {
        // A lone operation commits by itself: one round trip to SQLite's thread instead of
        // three (BEGIN, the statement, COMMIT).
        if let [op] = ops {
            let mut conn = pool.acquire().await?;
            return Ok(vec![apply(&mut conn, sql, Backend::Sqlite, op).await]);
        }
        let mut tx = pool.begin().await?;
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(apply(&mut tx, sql, Backend::Sqlite, op).await);
        }
        tx.commit().await?;
        Ok(results)
    })
}
