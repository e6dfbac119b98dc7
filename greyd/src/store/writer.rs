//! SQLite's single writer, with group commit and written-behind retry counters.
//!
//! SQLite has one writer lock per file; connections that compete for it sleep in the busy
//! handler, which wrecks latency under load. So one task owns the writing, on a thread of its
//! own (on the shared runtime its every wake-up queued behind the request tasks). It takes
//! every operation queued at that moment (up to [`MAX_BATCH`]), applies them and answers each
//! caller only after its statement committed: an answered first attempt is in the WAL and
//! survives the process being killed. First attempts of one batch share one statement
//! (`group.rs`); each statement commits by itself, since a batch need not be atomic (its
//! operations come from requests in flight at the same moment, so any order is a valid one).
//!
//! Early retries ([`Writer::note_retry`]) are not waited for: they only count attempts for
//! `stats`, never decide an answer. They are merged per triplet and written at most
//! [`RETRY_FLUSH`] later, or when [`MAX_BATCH`] are waiting, or on close; a killed process
//! loses at most that second of counts.
//!
//! Checkpoints run beside the writer (`checkpoint.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::checkpoint::{self, WalState};
use super::error::Redactor;
use super::group::{self, PendingRetry, Results};
use super::sql::Sql;
use super::write::{Boxed, OwnedKey, WriteOp, WriteOutcome, apply};
use super::{Backend, StoreError};

/// Most operations taken into one batch.
pub(super) const MAX_BATCH: usize = 256;

/// Early retries wait at most this long to be written.
const RETRY_FLUSH: Duration = Duration::from_secs(1);

enum Job {
    /// A write the caller waits for.
    Write { op: WriteOp, reply: oneshot::Sender<Result<WriteOutcome, StoreError>> },
    /// An early retry, written behind.
    Retry { key: OwnedKey, client_address: String, now: i64 },
    /// Write what is pending, then answer.
    Flush(oneshot::Sender<()>),
}

/// The SQLite writer's queue. Dropping the last handle ends the writer.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    tx: mpsc::Sender<Job>,
    /// The writer's own one-connection pool.
    pool: AnyPool,
}

impl Writer {
    /// Starts the writer, and the checkpointer, on a thread of their own. `pool` holds the
    /// writer's one connection; `readers` is the store's read pool, where the checkpointer
    /// borrows a connection.
    pub(super) fn spawn(pool: AnyPool, readers: AnyPool, sql: &'static Sql, redactor: Arc<Redactor>) -> Writer {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let wal = Arc::new(WalState::default());
        let writing = run(Session { pool: pool.clone(), held: None }, sql, redactor, rx, wal.clone());
        let task = async move {
            let checkpoints = tokio::spawn(checkpoint::checkpointer(readers, wal));
            writing.await;
            checkpoints.abort();
        };
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => {
                let spawned = std::thread::Builder::new().name("greyd-writer".into()).spawn(move || rt.block_on(task));
                if let Err(e) = spawned {
                    tracing::error!("cannot start the store writer thread: {e}");
                }
            }
            Err(e) => {
                tracing::warn!("store writer runs on the shared runtime: {e}");
                tokio::spawn(task);
            }
        }
        Writer { tx, pool }
    }

    /// Queues one operation and waits for its commit.
    pub(super) async fn write(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Job::Write { op, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Queues an early retry; returns once it is queued, not written.
    pub(super) async fn note_retry(&self, key: OwnedKey, client_address: String, now: i64) -> Result<(), StoreError> {
        self.tx.send(Job::Retry { key, client_address, now }).await.map_err(|_| stopped())
    }

    /// Writes pending retries, then closes the writer's connection; later writes fail.
    pub(super) async fn close(&self) {
        let (done, flushed) = oneshot::channel();
        if self.tx.send(Job::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
        self.pool.close().await;
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("store writer stopped".into())
}

/// The writer's connection: taken at the first write and kept, given back when the store
/// closes (a pool does not close while a connection is out).
struct Session {
    pool: AnyPool,
    held: Option<PoolConnection<Any>>,
}

impl Session {
    async fn conn(&mut self) -> Result<&mut PoolConnection<Any>, sqlx::Error> {
        let conn = match self.held.take() {
            Some(conn) => conn,
            None => {
                let mut conn = self.pool.acquire().await?;
                checkpoint::writer_setup(&mut conn).await?;
                conn
            }
        };
        Ok(self.held.insert(conn))
    }

    fn release(&mut self) {
        self.held = None;
    }
}

async fn run(
    mut session: Session,
    sql: &'static Sql,
    redactor: Arc<Redactor>,
    mut rx: mpsc::Receiver<Job>,
    wal: Arc<WalState>,
) {
    let mut batch: Vec<(WriteOp, oneshot::Sender<Result<WriteOutcome, StoreError>>)> = Vec::new();
    let mut pending: HashMap<OwnedKey, PendingRetry> = HashMap::new();
    let mut pending_since = Instant::now();
    let mut flushed: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let next = if pending.is_empty() {
            rx.recv().await
        } else {
            tokio::time::timeout_at(pending_since + RETRY_FLUSH, rx.recv()).await.unwrap_or(None)
        };
        let closed = next.is_none() && rx.is_closed();
        for job in next.into_iter().chain(std::iter::from_fn(|| rx.try_recv().ok())).take(MAX_BATCH) {
            match job {
                Job::Write { op, reply } => batch.push((op, reply)),
                Job::Retry { key, client_address, now } => {
                    if pending.is_empty() {
                        pending_since = Instant::now();
                    }
                    let entry = pending.entry(key.clone()).or_insert_with(|| PendingRetry {
                        key,
                        client_address: String::new(),
                        now,
                        count: 0,
                    });
                    entry.count += 1;
                    if now >= entry.now {
                        entry.now = now;
                        entry.client_address = client_address;
                    }
                }
                Job::Flush(done) => flushed.push(done),
            }
        }
        if !batch.is_empty() {
            let ops: Vec<WriteOp> = batch.iter().map(|(op, _)| op.clone()).collect();
            let results = match session.conn().await {
                Ok(conn) => commit(conn, sql, &ops).await,
                Err(e) => Err(e),
            };
            wal.committed();
            match results {
                Ok(results) => {
                    for ((_, reply), result) in batch.drain(..).zip(results) {
                        let _ = reply.send(result.map_err(|e| redactor.error(Backend::Sqlite, &e)));
                    }
                }
                Err(e) => {
                    let err = redactor.error(Backend::Sqlite, &e);
                    for (_, reply) in batch.drain(..) {
                        let _ = reply.send(Err(err.clone()));
                    }
                }
            }
        }
        // Due retries go out one chunk per turn, between batches of waited-for writes.
        let all = closed || !flushed.is_empty();
        while !pending.is_empty() && (all || pending_since.elapsed() >= RETRY_FLUSH) {
            let keys: Vec<OwnedKey> = pending.keys().take(MAX_BATCH).cloned().collect();
            let rows: Vec<PendingRetry> = keys.iter().filter_map(|k| pending.remove(k)).collect();
            let written = match session.conn().await {
                Ok(conn) => group::write_retries(conn, &rows).await,
                Err(e) => Err(e),
            };
            wal.committed();
            if let Err(e) = written {
                // Counts for `stats` only; the requests were answered long ago.
                tracing::debug!("early-retry counts not written: {}", redactor.error(Backend::Sqlite, &e));
            }
            if !all {
                break;
            }
        }
        if let Some(conn) = session.held.as_mut() {
            checkpoint::restart_due(conn, &wal).await;
        }
        if !flushed.is_empty() {
            // The store is closing: give the connection back so the pool can close.
            session.release();
            for done in flushed.drain(..) {
                let _ = done.send(());
            }
        }
        if closed {
            return;
        }
    }
}

/// Applies `ops`, each committed by its own statement. Per-operation errors are returned per
/// operation; an error of a grouped statement fails the whole batch.
fn commit<'a>(
    conn: &'a mut AnyConnection,
    sql: &'static Sql,
    ops: &'a [WriteOp],
) -> Boxed<'a, Vec<Result<WriteOutcome, sqlx::Error>>> {
    Box::pin(async move {
        let mut results: Vec<Option<Result<WriteOutcome, sqlx::Error>>> = ops.iter().map(|_| None).collect();
        group::insert_firsts(&mut *conn, sql, ops, &mut results).await?;
        apply_rest(conn, sql, ops, &mut results).await;
        Ok(results.into_iter().map(|r| r.unwrap_or(Ok(WriteOutcome::Done))).collect())
    })
}

/// The operations no grouped statement took, one by one.
async fn apply_rest(conn: &mut AnyConnection, sql: &'static Sql, ops: &[WriteOp], results: &mut Results) {
    for (op, slot) in ops.iter().zip(results.iter_mut()) {
        if slot.is_none() {
            *slot = Some(apply(&mut *conn, sql, Backend::Sqlite, op).await);
        }
    }
}
