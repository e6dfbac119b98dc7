//! greyd's greylist state in SQL: SQLite by default (one file, WAL), or a PostgreSQL or
//! MySQL/MariaDB database shared by several MX hosts so that they act as one greylist.
//!
//! # Layout
//! - `mod.rs`: [`Store`] and its operations, the value types.
//! - `maintenance.rs`: expiry (`purge`), the bounds on pending triplets, and the `stats`/`dump`
//!   views, off the request path.
//! - `admin.rs`: the admin commands' changes (`delete`, `whitelist`) and the epoch that makes
//!   running daemons drop their caches after one.
//! - `sql.rs`: the SQL text, one table of `&'static str` statements per backend.
//! - `connect.rs`: URL handling, connecting, SQLite WAL, embedded migrations
//!   (`greyd/migrations/<backend>/`), the pool.
//! - `error.rs`: [`StoreError`] and the mapping from database errors.
//! - `write.rs`: every change as a `WriteOp`, and how one is applied on a connection.
//! - `writer.rs`: SQLite's single writer task (group commit, written-behind retry counters).
//! - `group.rs`: the writer's multi-row statements (a batch of lookups or first attempts).
//! - `checkpoint.rs`: SQLite's WAL checkpoints, off the writer's commits.
//!
//! # Guarantees
//! - Every operation is bounded by [`StoreOptions::op_timeout`] and fails with a [`StoreError`]
//!   rather than hang; the caller decides the answer. The pool replaces dead connections by
//!   itself, so the store recovers when the database comes back, without a restart.
//! - A request-path operation runs one or two indexed statements; on SQLite, the writer runs
//!   one statement for a whole batch of lookups or first attempts.
//! - Writes are committed before the call returns (autocommit); on SQLite with WAL and
//!   `synchronous = NORMAL` a committed write survives the process being killed. The
//!   exceptions are [`Store::note_retry`] and [`Store::note_pass`] on SQLite, written behind:
//!   a retry counter, and a pass whose loss leaves its triplet a first attempt.
//! - Several hosts may share one database: [`Store::insert_first`] keeps whichever row was
//!   inserted first, and the upserts are single statements.
//!
//! Not here: deciding what a triplet is (`triplet.rs`) or what to answer (`greylist.rs`); times
//! are passed in as unix seconds, never read here.

mod admin;
mod checkpoint;
mod connect;
mod error;
mod group;
mod maintenance;
mod sql;
mod write;
mod writer;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Any, AnyPool};

pub use admin::{Deleted, Removal};
pub use error::StoreError;
pub use maintenance::{DumpRow, Stats};

use connect::Target;
use error::Redactor;
use group::LookupOp;
use sql::Sql;
pub use write::PassOutcome;
use write::{OwnedPassBook, WriteOp, WriteOutcome, apply};
use writer::Writer;

/// What [`Store::pass`] writes besides the pass (`passed_at`, `last_seen`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PassBook<'a> {
    /// Insert the row first, with this client address: a sender-pool pass of a triplet that
    /// was never stored.
    pub insert_for: Option<&'a str>,
    /// Client auto-whitelist: count a pass for this address, at most once per this many
    /// seconds ([`Store::count_client_pass`]).
    pub count_client: Option<(&'a str, i64)>,
    /// Domain auto-whitelist: note the pass for this (stored) sender domain, from the key's
    /// network ([`Store::note_domain_pass`]).
    pub note_domain: Option<&'a str>,
}

/// The database behind a [`Store`], chosen by the URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite:` (a file, created on first start).
    Sqlite,
    /// `postgres:` / `postgresql:`.
    Postgres,
    /// `mysql:` / `mariadb:`.
    MySql,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
            Backend::MySql => "mysql",
        })
    }
}

/// How the store talks to its database.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pooled connections at most. SQLite has one writer at a time anyway; for a shared server
    /// this bounds what one greyd takes from it.
    pub max_connections: u32,
    /// Upper bound for each operation, waiting for a connection included. On expiry the
    /// operation fails with [`StoreError::Timeout`]; PostgreSQL also cancels the statement
    /// server-side, SQLite and MySQL stop waiting for locks after about as long.
    pub op_timeout: Duration,
    /// Upper bound for opening a connection, at start and when the pool reconnects.
    pub connect_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { max_connections: 8, op_timeout: Duration::from_secs(2), connect_timeout: Duration::from_secs(5) }
    }
}

/// The greylist key, already normalized by the caller (each part at most 255 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Triplet<'a> {
    pub client_net: &'a str,
    pub sender: &'a str,
    pub recipient: &'a str,
}

/// The stored state of one triplet. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub first_seen: i64,
    pub last_seen: i64,
    /// When a retry first came after the delay; `None` while waiting.
    pub passed_at: Option<i64>,
    /// Retries before the delay was over (0 after the first attempt).
    pub attempts: i64,
    /// The client address of the latest attempt (the triplet only has its network).
    pub client_address: String,
}

type EntryRow = (i64, i64, Option<i64>, i64, String);

/// The columns of [`Sql::lookup`]: a LEFT JOIN, so every greylist column may be NULL.
type LookupRow = (Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<String>, Option<i64>, Option<i64>);

/// What [`Store::lookup`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookup {
    pub entry: Option<Entry>,
    pub client_passes: i64,
    pub domain_whitelisted: bool,
}

/// The request behind a [`Store::lookup_or_insert`].
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// The client address: the client auto-whitelist's key, and the inserted row's address.
    pub client: &'a str,
    /// The sender domain (domain auto-whitelist).
    pub domain: &'a str,
    pub now: i64,
    /// A domain promotion last seen longer ago than this does not count.
    pub max_age: i64,
    /// Sender pools: attempts of the same sender and recipient from another client network,
    /// first seen at or before this, are candidates; `None` when pools do not apply.
    pub pool_cutoff: Option<i64>,
}

/// What [`Store::lookup_or_insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Read only: decide on it, and write what the decision says.
    Looked(Lookup),
    /// The triplet was absent and the writer inserted this request's attempt as the first
    /// (SQLite only): the row as stored, first seen `now`. A triplet that another request
    /// inserted a moment earlier is [`Found::Looked`], with that row.
    Inserted(Entry),
}

/// When [`Store::lookup_or_insert`] may insert an absent triplet as a first attempt: the
/// caller's greylisting rule for a triplet that is not stored, as data, so SQLite's writer can
/// apply it inside the insert statement. An absent triplet is a first attempt unless its client
/// or its sender domain is auto-whitelisted, or a sender-pool candidate exists
/// ([`Attempt::pool_cutoff`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FirstRule {
    /// Passes after which a client is whitelisted; 0 when the client auto-whitelist is off.
    pub awl_client_passes: i64,
    /// Whether the domain auto-whitelist is on.
    pub awl_domains: bool,
}

impl Entry {
    /// A first attempt made `now` from `client_address`, as `insert_first` stores it.
    pub fn first(now: i64, client_address: &str) -> Entry {
        Entry {
            first_seen: now,
            last_seen: now,
            passed_at: None,
            attempts: 0,
            client_address: client_address.to_owned(),
        }
    }
}

impl From<EntryRow> for Entry {
    fn from((first_seen, last_seen, passed_at, attempts, client_address): EntryRow) -> Entry {
        Entry { first_seen, last_seen, passed_at, attempts, client_address }
    }
}

/// The greylist database. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// SQLite only: the task that owns writing (see `writer`).
    writer: Option<Writer>,
    backend: Backend,
    sql: &'static Sql,
    op_timeout: Duration,
    redactor: Arc<Redactor>,
    /// The URL without its password.
    display_url: Arc<str>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).field("url", &self.display_url).finish()
    }
}

/// The SQLite database file a store URL names; `None` for a server or an in-memory
/// database. For the read-only commands, which must not create it.
///
/// # Errors
/// An URL [`Store::open`] would refuse too.
pub fn sqlite_file(url: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
    Ok(connect::Target::parse(url)?.sqlite_file)
}

impl Store {
    /// Connects to the database at `url` and applies the embedded migrations.
    ///
    /// `sqlite:///path/greyd.db` creates the file if needed (`mode=rwc` unless the URL sets a
    /// mode) and switches it to WAL; `postgres://…` and `mysql://…` (or `mariadb://…`) expect
    /// an existing database. Opening the same database again, from this or another host, is
    /// fine: applied migrations are skipped.
    ///
    /// # Errors
    /// [`StoreError::InvalidUrl`] for a malformed URL or unknown scheme,
    /// [`StoreError::MissingDirectory`] when the SQLite file's directory does not exist,
    /// [`StoreError::Unavailable`] when no connection could be made within
    /// `connect_timeout`, [`StoreError::Migration`] when the schema cannot be brought up to
    /// date. No message contains the URL's password.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let target = Target::parse(url)?;
        let opening: std::pin::Pin<Box<dyn Future<Output = Result<sqlx::AnyPool, StoreError>> + Send + '_>> =
            Box::pin(connect::open_pool(&target, options));
        let pool = opening.await?;
        let sql = match target.backend {
            Backend::Sqlite => &sql::SQLITE,
            Backend::Postgres => &sql::POSTGRES,
            Backend::MySql => &sql::MYSQL,
        };
        let redactor = Arc::new(target.redactor());
        // SQLite's writer gets a connection of its own: sharing the pool, it queued behind
        // every read in flight for each batch.
        let writer = match target.backend {
            Backend::Sqlite => {
                let writes = connect::connect_pool(&target, options, 1).await?;
                Some(Writer::spawn(writes, pool.clone(), sql, redactor.clone()))
            }
            _ => None,
        };
        Ok(Store {
            pool,
            writer,
            backend: target.backend,
            sql,
            op_timeout: options.op_timeout,
            redactor,
            display_url: target.display.into(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database URL with its password replaced by `***`, for logs.
    pub fn display_url(&self) -> &str {
        &self.display_url
    }

    /// Closes the pooled connections (SQLite then checkpoints its WAL). Operations after this
    /// fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        if let Some(writer) = &self.writer {
            writer.close().await;
        }
        self.pool.close().await;
    }

    /// The stored entry of a triplet, if any.
    ///
    /// # Errors
    /// Any [`StoreError`] but `InvalidUrl`, `MissingDirectory` and `Migration`; the same holds for
    /// every operation below.
    pub async fn get(&self, t: &Triplet<'_>) -> Result<Option<Entry>, StoreError> {
        self.run(Box::pin(fetch_entry(&self.pool, self.sql, t))).await
    }

    /// Everything the request path reads, in one round trip: the triplet's row, the client's
    /// counted passes (client auto-whitelist), and whether the sender domain is promoted for
    /// the client network and seen within `max_age` (domain auto-whitelist).
    pub async fn lookup(
        &self,
        t: &Triplet<'_>,
        client: &str,
        domain: &str,
        now: i64,
        max_age: i64,
    ) -> Result<Lookup, StoreError> {
        let query = sqlx::query_as::<_, LookupRow>(self.sql.lookup)
            .bind(client)
            .bind(domain)
            .bind(t.client_net)
            .bind(now.saturating_sub(max_age))
            .bind(t.client_net)
            .bind(t.sender)
            .bind(t.recipient);
        self.run(Box::pin(query.fetch_one(&self.pool))).await.map(lookup_from)
    }

    /// [`Store::lookup`] for a triplet this host does not have in memory, and on SQLite a
    /// first attempt's insert in the same writer turn, where `rule` says the absent triplet is
    /// one: the insert comes first, guarded by the rule, and only the triplets it did not insert
    /// are read.
    ///
    /// Why: a new triplet otherwise costs a read on a reader connection, then a write through
    /// the writer, each a hand-over between threads that queues on a busy host; new triplets
    /// are the requests that wait longest. The writer puts a whole batch's first attempts into
    /// one statement, so under load a turn is one round trip to SQLite's thread.
    /// On a server the read and the write stay separate statements ([`Found::Looked`]): several
    /// hosts write there, and each statement is a network round trip either way.
    pub async fn lookup_or_insert(
        &self,
        t: &Triplet<'_>,
        attempt: &Attempt<'_>,
        rule: &FirstRule,
    ) -> Result<Found, StoreError> {
        let Some(writer) = &self.writer else {
            let found = self.lookup(t, attempt.client, attempt.domain, attempt.now, attempt.max_age).await?;
            return Ok(Found::Looked(found));
        };
        let op = LookupOp {
            key: t.into(),
            client: attempt.client.into(),
            domain: attempt.domain.into(),
            domain_cutoff: attempt.now.saturating_sub(attempt.max_age),
            pool_cutoff: attempt.pool_cutoff,
            now: attempt.now,
            rule: *rule,
        };
        match tokio::time::timeout(self.op_timeout, writer.lookup(op)).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout),
        }
    }

    /// First attempt. Inserts unless a row exists (another MX may have inserted first: keep its
    /// row); returns the stored row either way.
    pub async fn insert_first(&self, t: &Triplet<'_>, client_address: &str, now: i64) -> Result<Entry, StoreError> {
        let op = WriteOp::InsertFirst { key: t.into(), client_address: client_address.into(), now };
        match self.write(op).await? {
            WriteOutcome::Entry(Some(entry)) => Ok(entry),
            _ => Err(StoreError::Unavailable("greylist row deleted while being inserted".into())),
        }
    }

    /// Retry before the delay: attempts += 1, last_seen = now, the client address updated,
    /// first_seen unchanged. A triplet that is not stored (purged meanwhile) is left alone.
    ///
    /// Committed before it returns; the request path uses [`Store::note_retry`].
    pub async fn record_retry(&self, t: &Triplet<'_>, client_address: &str, now: i64) -> Result<(), StoreError> {
        self.write(WriteOp::RecordRetry { key: t.into(), client_address: client_address.into(), now }).await.map(drop)
    }

    /// [`Store::record_retry`] for the request path. On SQLite it is written behind: merged
    /// per triplet and committed within about a second (or at [`Store::close`]), since the retry
    /// count only feeds `stats` and no answer waits for it. On a server, as `record_retry`.
    pub async fn note_retry(&self, t: &Triplet<'_>, client_address: &str, now: i64) -> Result<(), StoreError> {
        match &self.writer {
            Some(writer) => writer.note_retry(t.into(), client_address.into(), now),
            None => self.record_retry(t, client_address, now).await,
        }
    }

    /// An expired row (never retried within the window, or passed and unseen for max_age)
    /// starts over: this attempt becomes the first. A row purged meanwhile is left alone; the
    /// next attempt inserts it again.
    pub async fn restart(&self, t: &Triplet<'_>, client_address: &str, now: i64) -> Result<(), StoreError> {
        self.write(WriteOp::Restart { key: t.into(), client_address: client_address.into(), now }).await.map(drop)
    }

    /// Pass: passed_at = COALESCE(passed_at, now), last_seen = now. A triplet that is not
    /// stored is left alone.
    pub async fn record_pass(&self, t: &Triplet<'_>, now: i64) -> Result<(), StoreError> {
        self.write(WriteOp::RecordPass { key: t.into(), now }).await.map(drop)
    }

    /// A pass with its bookkeeping in one operation ([`PassBook`]): on SQLite one turn of the
    /// writer, on a server one transaction, where separate calls of `record_pass`,
    /// `count_client_pass` and `note_domain_pass` took three of each.
    pub async fn pass(&self, t: &Triplet<'_>, now: i64, book: &PassBook<'_>) -> Result<PassOutcome, StoreError> {
        match self.write(WriteOp::Pass { key: t.into(), now, book: owned_book(book) }).await? {
            WriteOutcome::Passed(outcome) => Ok(outcome),
            _ => Ok(PassOutcome::default()),
        }
    }

    /// [`Store::pass`] for the request path. On SQLite it is written behind, at the writer's
    /// next turn (or at [`Store::close`]), and `None` is returned: the answer to a retry that
    /// passes need not wait for a second turn after its lookup, and a pass lost with a killed
    /// process only leaves its triplet a first attempt that passes at its next retry. On a
    /// server, and on SQLite when the writer falls behind, as `pass`.
    pub async fn note_pass(
        &self,
        t: &Triplet<'_>,
        now: i64,
        book: &PassBook<'_>,
    ) -> Result<Option<PassOutcome>, StoreError> {
        if let Some(writer) = &self.writer
            && writer.note_pass(t.into(), now, owned_book(book))?
        {
            return Ok(None);
        }
        self.pass(t, now, book).await.map(Some)
    }

    /// Sender pools: rows with the same sender and recipient but another client_net,
    /// first_seen <= seen_before, newest first, at most `limit`: (client_address, first_seen).
    pub async fn pool_candidates(
        &self,
        sender: &str,
        recipient: &str,
        exclude_net: &str,
        seen_before: i64,
        limit: u32,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let query = sqlx::query_as::<Any, (String, i64)>(self.sql.pool_candidates)
            .bind(sender)
            .bind(recipient)
            .bind(exclude_net)
            .bind(seen_before)
            .bind(i64::from(limit));
        self.run(Box::pin(query.fetch_all(&self.pool))).await
    }

    /// Client auto-whitelist (postgrey style): counts one pass for `client` unless one was
    /// counted less than `min_interval` seconds ago; returns the count after the call.
    pub async fn count_client_pass(&self, client: &str, now: i64, min_interval: i64) -> Result<i64, StoreError> {
        match self.write(WriteOp::CountClientPass { client: client.into(), now, min_interval }).await? {
            WriteOutcome::Count(n) => Ok(n),
            _ => Ok(0),
        }
    }

    /// The client's pass count; 0 if unknown. Refreshes nothing.
    pub async fn client_passes(&self, client: &str) -> Result<i64, StoreError> {
        let query = sqlx::query_scalar::<Any, i64>(self.sql.client_passes).bind(client);
        Ok(self.run(Box::pin(query.fetch_optional(&self.pool))).await?.unwrap_or(0))
    }

    /// Domain auto-whitelist (sqlgrey style, group_domain_level = 2): records that `sender` of
    /// `domain` passed from `client_net` (refreshing the pair's last_seen). The pair is promoted
    /// when a second, different sender of the same domain passes from the same net. Returns
    /// whether the pair is promoted.
    pub async fn note_domain_pass(
        &self,
        domain: &str,
        client_net: &str,
        sender: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let op = WriteOp::NoteDomainPass {
            domain: domain.into(),
            client_net: client_net.into(),
            sender: sender.into(),
            now,
        };
        match self.write(op).await? {
            WriteOutcome::Flag(promoted) => Ok(promoted),
            _ => Ok(false),
        }
    }

    /// Whether the (domain, client_net) pair is promoted and not expired, i.e. seen within the
    /// last `max_age` seconds (the age [`Store::purge`] deletes it at). Refreshes nothing.
    pub async fn domain_whitelisted(
        &self,
        domain: &str,
        client_net: &str,
        now: i64,
        max_age: i64,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query_as::<Any, (Option<i64>, i64)>(self.sql.domain_state).bind(domain).bind(client_net);
        let state = self.run(Box::pin(query.fetch_optional(&self.pool))).await?;
        Ok(matches!(state, Some((Some(_), last_seen)) if last_seen >= now.saturating_sub(max_age)))
    }

    /// Applies one change: through SQLite's writer task, or straight on the pool.
    async fn write(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        match &self.writer {
            Some(writer) => match tokio::time::timeout(self.op_timeout, writer.write(op)).await {
                Ok(result) => result,
                Err(_) => Err(StoreError::Timeout),
            },
            None => {
                let (sql, backend) = (self.sql, self.backend);
                self.run(Box::pin(async move {
                    let mut conn = self.pool.acquire().await?;
                    apply(&mut conn, sql, backend, &op).await
                }))
                .await
            }
        }
    }

    /// Runs one operation under `op_timeout` and maps its error.
    ///
    /// The operation comes boxed as `dyn Future + Send`: sqlx's executor futures are `Send`,
    /// but the compiler cannot prove it through an `async fn` for every lifetime (the
    /// "implementation of `Acquire` is not general enough" error), and the daemon needs every
    /// store call inside `Send` futures.
    async fn run<'f, T>(&self, op: BoxedOp<'f, T>) -> Result<T, StoreError> {
        match tokio::time::timeout(self.op_timeout, op).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(self.redactor.error(self.backend, &err)),
            Err(_) => Err(StoreError::Timeout),
        }
    }
}

fn owned_book(book: &PassBook<'_>) -> OwnedPassBook {
    OwnedPassBook {
        insert_for: book.insert_for.map(Into::into),
        count_client: book.count_client.map(|(c, i)| (c.into(), i)),
        note_domain: book.note_domain.map(Into::into),
    }
}

/// A boxed database operation (see [`Store::run`]).
type BoxedOp<'f, T> = std::pin::Pin<Box<dyn Future<Output = Result<T, sqlx::Error>> + Send + 'f>>;

/// A row of [`Sql::lookup`] as a [`Lookup`].
fn lookup_from(row: LookupRow) -> Lookup {
    let (first_seen, last_seen, passed_at, attempts, client_address, passes, promoted) = row;
    let entry = match (first_seen, last_seen, attempts, client_address) {
        (Some(first_seen), Some(last_seen), Some(attempts), Some(client_address)) => {
            Some(Entry { first_seen, last_seen, passed_at, attempts, client_address })
        }
        _ => None,
    };
    Lookup { entry, client_passes: passes.unwrap_or(0), domain_whitelisted: promoted.is_some() }
}

async fn fetch_entry<'e>(
    executor: impl sqlx::Executor<'e, Database = Any>,
    sql: &Sql,
    t: &Triplet<'_>,
) -> Result<Option<Entry>, sqlx::Error> {
    let row: Option<EntryRow> =
        sqlx::query_as(sql.get).bind(t.client_net).bind(t.sender).bind(t.recipient).fetch_optional(executor).await?;
    Ok(row.map(Entry::from))
}
