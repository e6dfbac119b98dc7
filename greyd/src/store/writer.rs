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
//! `stats`, never decide an answer. Request tasks merge them per triplet into a shared map
//! under a short lock, without waking the writer (most requests under load are such retries,
//! and a wake-up of another thread costs more than the request itself). The writer takes the
//! map every [`RETRY_TICK`] and writes it in chunks of [`RETRY_CHUNK`] rows, one chunk per turn
//! between batches of waited-for writes, and all of it on close; a killed process loses about
//! a second of counts.
//!
//! Checkpoints run beside the writer (`checkpoint.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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

/// Early-retry rows per statement: small, since a first attempt that arrives meanwhile waits
/// for the chunk (256 rows took about 3 ms under load, 64 take under one).
const RETRY_CHUNK: usize = 64;

/// How often the writer takes the early retries noted meanwhile.
const RETRY_TICK: Duration = Duration::from_millis(500);

enum Job {
    /// A write the caller waits for.
    Write { op: WriteOp, reply: oneshot::Sender<Result<WriteOutcome, StoreError>> },
    /// Write what is pending, then answer.
    Flush(oneshot::Sender<()>),
}

/// The SQLite writer's queue. Dropping the last handle ends the writer.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    tx: mpsc::Sender<Job>,
    /// The writer's own one-connection pool.
    pool: AnyPool,
    retries: Arc<Retries>,
}

/// Early retries noted and not yet taken by the writer, merged per triplet.
#[derive(Debug, Default)]
struct Retries(Mutex<HashMap<OwnedKey, PendingRetry>>);

impl Retries {
    fn note(&self, key: OwnedKey, client_address: String, now: i64) {
        let Ok(mut pending) = self.0.lock() else { return };
        match pending.get_mut(&key) {
            Some(entry) => {
                entry.count += 1;
                if now >= entry.now {
                    entry.now = now;
                    entry.client_address = client_address;
                }
            }
            None => {
                pending.insert(key.clone(), PendingRetry { key, client_address, now, count: 1 });
            }
        }
    }

    fn take(&self) -> Vec<PendingRetry> {
        self.0.lock().map(|mut pending| std::mem::take(&mut *pending).into_values().collect()).unwrap_or_default()
    }
}

impl Writer {
    /// Starts the writer, and the checkpointer, on a thread of their own. `pool` holds the
    /// writer's one connection; `readers` is the store's read pool, where the checkpointer
    /// borrows a connection.
    pub(super) fn spawn(pool: AnyPool, readers: AnyPool, sql: &'static Sql, redactor: Arc<Redactor>) -> Writer {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let wal = Arc::new(WalState::default());
        let retries = Arc::new(Retries::default());
        let writing = run(Session { pool: pool.clone(), held: None }, sql, redactor, rx, retries.clone(), wal.clone());
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
        Writer { tx, pool, retries }
    }

    /// Queues one operation and waits for its commit.
    pub(super) async fn write(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Job::Write { op, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Notes an early retry; it is written within about a second, not before this returns.
    pub(super) fn note_retry(&self, key: OwnedKey, client_address: String, now: i64) -> Result<(), StoreError> {
        if self.tx.is_closed() {
            return Err(stopped());
        }
        self.retries.note(key, client_address, now);
        Ok(())
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
    retries: Arc<Retries>,
    wal: Arc<WalState>,
) {
    let mut batch: Vec<(WriteOp, oneshot::Sender<Result<WriteOutcome, StoreError>>)> = Vec::new();
    // Retries taken from `retries`, written one chunk per turn.
    let mut due: Vec<PendingRetry> = Vec::new();
    let mut next_take = Instant::now() + RETRY_TICK;
    let mut flushed: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let next = if due.is_empty() {
            tokio::time::timeout_at(next_take, rx.recv()).await.unwrap_or(None)
        } else {
            rx.try_recv().ok()
        };
        let closed = next.is_none() && rx.is_closed();
        for job in next.into_iter().chain(std::iter::from_fn(|| rx.try_recv().ok())).take(MAX_BATCH) {
            match job {
                Job::Write { op, reply } => batch.push((op, reply)),
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
        // Due retries go out one chunk per turn, between batches of waited-for writes; all of
        // them when the store closes. A take waits until the previous one is written, so a
        // chunk never holds one triplet twice.
        let all = closed || !flushed.is_empty();
        loop {
            if due.is_empty() && (all || Instant::now() >= next_take) {
                due = retries.take();
                next_take = Instant::now() + RETRY_TICK;
            }
            if due.is_empty() {
                break;
            }
            let rows: Vec<PendingRetry> = due.drain(due.len().saturating_sub(RETRY_CHUNK)..).collect();
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
