//! Keeping SQLite's WAL short without stopping the writer.
//!
//! By default SQLite checkpoints inside a commit once the WAL holds 1000 pages: the commit
//! copies the pages back into the database file and fsyncs it, and every write queued behind
//! it waits (10 to 15 ms here, several times a second under load: the p99). So the writer's
//! connection turns that off, and [`checkpointer`] copies pages back with PASSIVE checkpoints
//! on another connection, which never block the writer.
//!
//! A PASSIVE checkpoint never resets the WAL while writes go on (tried alone, the WAL grew to
//! 15 GB over a million inserts). So once the WAL holds [`RESTART_PAGES`], the writer runs a
//! RESTART checkpoint between two batches ([`restart_due`]); by then nearly every page has been
//! copied, and the stall is one fsync, once per [`RESTART_PAGES`] instead of per 1000.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use sqlx::{AnyConnection, AnyPool};

/// The checkpointer looks at most this often, and only after a commit. 250 ms rather than
/// 100: a page rewritten meanwhile is copied once, and under load greyd answered a few percent
/// more requests with a lower p99 (300 ms and 1 s measured alike). Not a full second: the
/// writer learns the WAL's length from here, and in a second of writes it passed
/// [`RESTART_PAGES`] by some 10 MB before the restart.
const EVERY: Duration = Duration::from_millis(250);

/// WAL pages (48 MiB) at which the writer restarts the log. A quarter below the 64 MiB of
/// `journal_size_limit`: the writer learns the length up to [`EVERY`] late (later on a loaded
/// host), and the log grows meanwhile. At 64 MiB, a test of 12,000 single commits beside a
/// parallel test suite found the file at 72 MiB.
const RESTART_PAGES: i64 = 12_288;

/// What the writer and the checkpointer share.
#[derive(Debug, Default)]
pub(super) struct WalState {
    /// Pages in the WAL at the checkpointer's last look.
    pages: AtomicI64,
    /// Set by the writer after a commit, cleared by the checkpointer.
    dirty: AtomicBool,
}

impl WalState {
    /// The writer committed something.
    pub(super) fn committed(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }
}

/// Runs on the writer's connection before it writes: no checkpoint inside commits, and
/// SQLite's default 2 MiB page cache (the writer touches every index; readers get 1 MiB).
pub(super) async fn writer_setup(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql("PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -2000").execute(conn).await.map(drop)
}

/// Called by the writer between batches: restarts the WAL when it has grown to
/// [`RESTART_PAGES`]. A failure is left for the next batch to meet.
pub(super) async fn restart_due(conn: &mut AnyConnection, wal: &WalState) {
    if wal.pages.load(Ordering::Relaxed) >= RESTART_PAGES {
        let _ = sqlx::raw_sql("PRAGMA wal_checkpoint(RESTART)").execute(conn).await;
        wal.pages.store(0, Ordering::Relaxed);
    }
}

/// Copies committed pages back while the writer goes on, until the read pool closes.
pub(super) async fn checkpointer(readers: AnyPool, wal: std::sync::Arc<WalState>) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !readers.is_closed() {
        tick.tick().await;
        if !wal.dirty.swap(false, Ordering::Relaxed) {
            continue;
        }
        let done: Result<(i64, i64, i64), _> =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&readers).await;
        if let Ok((_, pages, _)) = done {
            wal.pages.store(pages, Ordering::Relaxed);
        }
    }
}
