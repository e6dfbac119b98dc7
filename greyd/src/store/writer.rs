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
//! Lookups of triplets that no cache holds come here too ([`Writer::lookup`]): their first
//! attempts join the batch's insert, guarded by the caller's rule, and only those not inserted
//! are read, all in one statement. A new triplet then costs one hand-over to this thread, where
//! a read on a reader connection followed by a write cost two, each queueing on a busy host.
//!
//! Early retries ([`Writer::note_retry`]) are not waited for: they only count attempts for
//! `stats`, never decide an answer. Request tasks merge them per triplet into a shared map
//! under a short lock, without waking the writer (most requests under load are such retries,
//! and a wake-up of another thread costs more than the request itself). The writer takes the
//! map every [`RETRY_TICK`] and writes it in chunks of [`RETRY_CHUNK`] rows, one chunk per turn
//! between batches of waited-for writes, and all of it on close; a killed process loses about
//! a second of counts.
//!
//! Passes ([`Writer::note_pass`]) are written behind the same way: the answer to a retry that
//! passes does not wait for the write, which would cost it a second turn of this thread after
//! its lookup (a new triplet costs one). Request tasks append them to a shared queue; the
//! writer takes the queue at every turn, before the turn's batch (whose lookups must see the
//! auto-whitelist counts of passes answered before them), and every [`RETRY_TICK`], and writes
//! it with that bookkeeping in grouped statements (`group::write_passes`), all of it on close.
//! A killed process loses at most the passes of the last turns: their triplets stay stored as
//! first attempts, and the next retry passes again. A full queue ([`MAX_PENDING_PASSES`], a
//! writer that cannot keep up) makes callers wait for the write instead.
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
use super::group::{self, First, LookupOp, PendingRetry};
use super::sql::Sql;
use super::write::{Boxed, OwnedKey, OwnedPassBook, PassOutcome, WriteOp, WriteOutcome, apply};
use super::{Backend, Entry, Found, Lookup, StoreError, fetch_entry};

/// Most operations taken into one batch.
pub(super) const MAX_BATCH: usize = 256;

/// Early-retry rows per statement: small, since a first attempt that arrives meanwhile waits
/// for the chunk (256 rows took about 3 ms under load, 64 take under one).
const RETRY_CHUNK: usize = 64;

/// How often the writer takes the early retries and passes noted meanwhile.
const RETRY_TICK: Duration = Duration::from_millis(500);

/// Passes waiting to be written behind, at most; beyond it, callers wait for the write.
const MAX_PENDING_PASSES: usize = 16_384;

/// Passes written per grouped statement set.
const PASS_CHUNK: usize = 256;

enum Job {
    /// A write the caller waits for.
    Write { op: WriteOp, reply: oneshot::Sender<Result<WriteOutcome, StoreError>> },
    /// A lookup that may insert a first attempt (`Store::lookup_or_insert`).
    Lookup { op: LookupOp, reply: oneshot::Sender<Result<Found, StoreError>> },
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
    passes: Arc<Passes>,
}

/// A pass noted for writing behind: a `WriteOp::Pass`'s fields.
#[derive(Debug)]
struct PendingPass {
    key: OwnedKey,
    now: i64,
    book: OwnedPassBook,
}

/// Passes noted and not yet taken by the writer, in order.
#[derive(Debug, Default)]
struct Passes(Mutex<Vec<PendingPass>>);

impl Passes {
    /// False when the queue is full: the caller writes the pass itself.
    fn note(&self, pass: PendingPass) -> bool {
        match self.0.lock() {
            Ok(mut queue) if queue.len() < MAX_PENDING_PASSES => {
                queue.push(pass);
                true
            }
            _ => false,
        }
    }

    fn take(&self) -> Vec<PendingPass> {
        self.0.lock().map(|mut queue| std::mem::take(&mut *queue)).unwrap_or_default()
    }
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
        let passes = Arc::new(Passes::default());
        let queues = Queues { retries: retries.clone(), passes: passes.clone() };
        let writing = run(Session { pool: pool.clone(), held: None }, sql, redactor, rx, queues, wal.clone());
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
        Writer { tx, pool, retries, passes }
    }

    /// Queues one operation and waits for its commit.
    pub(super) async fn write(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Job::Write { op, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Queues a lookup and waits for it, and for the commit of its insert, if any.
    pub(super) async fn lookup(&self, op: LookupOp) -> Result<Found, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Job::Lookup { op, reply }).await.map_err(|_| stopped())?;
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

    /// Notes a pass; it is written at the writer's next turn, not before this returns. False
    /// when the queue is full: the caller then writes it with [`Writer::write`].
    pub(super) fn note_pass(&self, key: OwnedKey, now: i64, book: OwnedPassBook) -> Result<bool, StoreError> {
        if self.tx.is_closed() {
            return Err(stopped());
        }
        Ok(self.passes.note(PendingPass { key, now, book }))
    }

    /// Writes pending retries and passes, then closes the writer's connection; later writes
    /// fail.
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

/// What request tasks leave for the writer without waiting.
struct Queues {
    retries: Arc<Retries>,
    passes: Arc<Passes>,
}

async fn run(
    mut session: Session,
    sql: &'static Sql,
    redactor: Arc<Redactor>,
    mut rx: mpsc::Receiver<Job>,
    queues: Queues,
    wal: Arc<WalState>,
) {
    let Queues { retries, passes } = queues;
    let mut batch = Batch::default();
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
                Job::Write { op, reply } => {
                    batch.writes.push(op);
                    batch.write_replies.push(reply);
                }
                Job::Lookup { op, reply } => {
                    batch.lookups.push(op);
                    batch.lookup_replies.push(reply);
                }
                Job::Flush(done) => flushed.push(done),
            }
        }
        // Passes noted since the last turn, before the batch: a lookup queued after a pass was
        // answered must see that pass's auto-whitelist counts. Every one of them on close.
        let all = closed || !flushed.is_empty();
        if all || !batch.is_empty() || Instant::now() >= next_take {
            let noted = passes.take();
            for chunk in noted.chunks(PASS_CHUNK) {
                let chunk: Vec<group::Pass<'_>> =
                    chunk.iter().map(|p| group::Pass { key: &p.key, now: p.now, book: &p.book }).collect();
                let written = match session.conn().await {
                    Ok(conn) => write_passes(conn, sql, &chunk).await,
                    Err(e) => Err(e),
                };
                wal.committed();
                if let Err(e) = written {
                    // Each triplet stays a first attempt; its next retry passes again.
                    tracing::debug!("passes not written: {}", redactor.error(Backend::Sqlite, &e));
                }
            }
        }
        if !batch.is_empty() {
            let results = match session.conn().await {
                Ok(conn) => commit(conn, sql, &batch.writes, &batch.lookups).await,
                Err(e) => Err(e),
            };
            wal.committed();
            batch.answer(results, &redactor);
        }
        // Due retries go out one chunk per turn, between batches of waited-for writes; all of
        // them when the store closes. A take waits until the previous one is written, so a
        // chunk never holds one triplet twice.
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

/// The jobs taken in one turn, and where their answers go.
#[derive(Default)]
struct Batch {
    writes: Vec<WriteOp>,
    write_replies: Vec<oneshot::Sender<Result<WriteOutcome, StoreError>>>,
    lookups: Vec<LookupOp>,
    lookup_replies: Vec<oneshot::Sender<Result<Found, StoreError>>>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.lookups.is_empty()
    }

    /// Answers every caller and empties the batch.
    fn answer(&mut self, results: Result<Committed, sqlx::Error>, redactor: &Redactor) {
        self.writes.clear();
        self.lookups.clear();
        match results {
            Ok(Committed { writes, lookups }) => {
                for (reply, result) in self.write_replies.drain(..).zip(writes) {
                    let _ = reply.send(result.map_err(|e| redactor.error(Backend::Sqlite, &e)));
                }
                for (reply, found) in self.lookup_replies.drain(..).zip(lookups) {
                    let _ = reply.send(Ok(found));
                }
            }
            Err(e) => {
                let err = redactor.error(Backend::Sqlite, &e);
                for reply in self.write_replies.drain(..) {
                    let _ = reply.send(Err(err.clone()));
                }
                for reply in self.lookup_replies.drain(..) {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }
}

/// What a batch's statements returned, one result per write and per lookup, in order.
struct Committed {
    writes: Vec<Result<WriteOutcome, sqlx::Error>>,
    lookups: Vec<Found>,
}

/// Applies a batch, each statement committed by itself: every first attempt, from writes and
/// from lookups (guarded by their rule), in one statement; the row each write ran into instead,
/// if any; one read of the lookups that did not insert; every pass with its auto-whitelist
/// bookkeeping in at most five statements; then the other writes one by one. Under
/// load nearly every lookup is a new triplet, so a turn is one statement. Per-write errors are
/// returned per write; an error of a grouped statement fails the whole batch.
fn commit<'a>(
    conn: &'a mut AnyConnection,
    sql: &'static Sql,
    writes: &'a [WriteOp],
    lookups: &'a [LookupOp],
) -> Boxed<'a, Committed> {
    Box::pin(async move {
        let mut firsts = Vec::new();
        let mut owners = Vec::new();
        for (i, op) in writes.iter().enumerate() {
            if let WriteOp::InsertFirst { key, client_address, now } = op {
                firsts.push(First { key, client_address, now: *now, guard: None });
                owners.push(Owner::Write(i));
            }
        }
        for (i, op) in lookups.iter().enumerate() {
            firsts.push(First { key: &op.key, client_address: &op.client, now: op.now, guard: Some(op) });
            owners.push(Owner::Lookup(i));
        }
        let inserted = group::insert_firsts(&mut *conn, &firsts).await?;

        let mut write_results: Vec<Option<Result<WriteOutcome, sqlx::Error>>> = writes.iter().map(|_| None).collect();
        let mut found: Vec<Option<Found>> = lookups.iter().map(|_| None).collect();
        let mut unread = Vec::new();
        for ((owner, first), inserted) in owners.into_iter().zip(&firsts).zip(inserted) {
            match owner {
                Owner::Write(i) if inserted => {
                    write_results[i] =
                        Some(Ok(WriteOutcome::Entry(Some(Entry::first(first.now, first.client_address)))));
                }
                // Another request's row was there first: the caller gets that row.
                Owner::Write(i) => {
                    let stored = fetch_entry(&mut *conn, sql, &first.key.as_triplet()).await;
                    write_results[i] = Some(stored.map(WriteOutcome::Entry));
                }
                Owner::Lookup(i) if inserted => {
                    found[i] = Some(Found::Inserted(Entry::first(first.now, first.client_address)))
                }
                Owner::Lookup(i) => unread.push(i),
            }
        }
        let ops: Vec<&LookupOp> = unread.iter().filter_map(|&i| lookups.get(i)).collect();
        for (i, lookup) in unread.into_iter().zip(group::read_lookups(&mut *conn, &ops).await?) {
            found[i] = Some(Found::Looked(lookup));
        }
        let mut passes = Vec::new();
        for (i, op) in writes.iter().enumerate() {
            if let WriteOp::Pass { key, now, book } = op {
                passes.push((i, group::Pass { key, now: *now, book }));
            }
        }
        let (indexes, passes): (Vec<usize>, Vec<group::Pass<'_>>) = passes.into_iter().unzip();
        for (i, outcome) in indexes.into_iter().zip(write_passes(&mut *conn, sql, &passes).await?) {
            write_results[i] = Some(Ok(WriteOutcome::Passed(outcome)));
        }
        for (op, slot) in writes.iter().zip(write_results.iter_mut()) {
            if slot.is_none() {
                *slot = Some(apply(&mut *conn, sql, Backend::Sqlite, op).await);
            }
        }
        let writes = write_results.into_iter().map(|r| r.unwrap_or(Ok(WriteOutcome::Done))).collect();
        let lookups = found.into_iter().map(|f| f.unwrap_or_else(|| Found::Looked(Lookup::default()))).collect();
        Ok(Committed { writes, lookups })
    })
}

/// Passes, waited for or noted, with their bookkeeping: a pool pass's row is inserted first
/// (such a triplet was never stored), then all of them in grouped statements.
async fn write_passes(
    conn: &mut AnyConnection,
    sql: &'static Sql,
    passes: &[group::Pass<'_>],
) -> Result<Vec<PassOutcome>, sqlx::Error> {
    for p in passes {
        if let Some(client_address) = &p.book.insert_for {
            let insert =
                WriteOp::InsertFirst { key: p.key.clone(), client_address: client_address.clone(), now: p.now };
            apply(&mut *conn, sql, Backend::Sqlite, &insert).await?;
        }
    }
    group::write_passes(conn, passes).await
}

/// Whose first attempt a row of the grouped insert is.
enum Owner {
    Write(usize),
    Lookup(usize),
}
