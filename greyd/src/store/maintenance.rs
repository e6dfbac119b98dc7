//! Off the request path: expiry in small batches ([`Store::purge`]), the bounds on pending
//! triplets ([`Store::trim_pending`], [`Store::pending_by_network`]) and the views behind
//! `postward-greyd stats` and `dump`.

use serde::Serialize;

use super::{Store, StoreError};

/// One greylist row, for `postward-greyd dump` (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DumpRow {
    pub client_net: String,
    pub sender: String,
    pub recipient: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub passed_at: Option<i64>,
    pub attempts: i64,
    pub client_address: String,
}

type DumpTuple = (String, String, String, i64, i64, Option<i64>, i64, String);

/// Counts for `postward-greyd stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Greylist rows.
    pub triplets: i64,
    /// Rows that passed (a retry came after the delay).
    pub passed: i64,
    /// Rows still waiting (never passed).
    pub waiting: i64,
    /// Clients in the client auto-whitelist table (any count).
    pub awl_clients: i64,
    /// (domain, client_net) pairs promoted in the domain auto-whitelist.
    pub awl_domains: i64,
    /// The 10 client networks with the most waiting rows that never retried and are older than
    /// an hour (likely spam runs), with their row counts, most first.
    pub unretried_clients: Vec<(String, i64)>,
    /// The same by sender.
    pub unretried_senders: Vec<(String, i64)>,
}

/// Waiting rows older than this that never retried count as "unretried" in [`Stats`].
const UNRETRIED_AGE: i64 = 3600;

impl Store {
    /// Expiry: deletes never-passed rows with first_seen < now - retry_window, passed rows with
    /// last_seen < now - max_age, and auto-whitelist rows (clients and domains) with
    /// last_seen < now - max_age. Returns the rows deleted.
    ///
    /// Runs until nothing is left to delete, in statements of at most `batch` rows, each its
    /// own short transaction with its own `op_timeout`, so that no lock is held for long. See
    /// [`Store::purge_with_budget`] to bound one run.
    pub async fn purge(&self, now: i64, retry_window: i64, max_age: i64, batch: u32) -> Result<u64, StoreError> {
        self.purge_with_budget(now, retry_window, max_age, batch, u64::MAX).await
    }

    /// [`Store::purge`], stopping once `budget` rows are deleted (the rest waits for the next
    /// run). An error ends the run; rows deleted before it stay deleted.
    pub async fn purge_with_budget(
        &self,
        now: i64,
        retry_window: i64,
        max_age: i64,
        batch: u32,
        budget: u64,
    ) -> Result<u64, StoreError> {
        let waiting_cutoff = now.saturating_sub(retry_window);
        let age_cutoff = now.saturating_sub(max_age);
        let batch = u64::from(batch.max(1));
        let mut deleted = 0;
        for (statement, cutoff) in [
            (self.sql.purge_waiting, waiting_cutoff),
            (self.sql.purge_passed, age_cutoff),
            (self.sql.purge_awl_client, age_cutoff),
            (self.sql.purge_awl_domain, age_cutoff),
        ] {
            loop {
                let limit = batch.min(budget.saturating_sub(deleted));
                if limit == 0 {
                    return Ok(deleted);
                }
                let query = sqlx::query(statement).bind(cutoff).bind(i64::try_from(limit).unwrap_or(i64::MAX));
                let n = self.run(Box::pin(query.execute(&self.pool))).await?.rows_affected();
                deleted += n;
                if n < limit {
                    break;
                }
                // Let request-path operations have the connection and the lock.
                tokio::task::yield_now().await;
            }
        }
        Ok(deleted)
    }

    /// The pending (never passed) triplets of every client network holding at least `floor`
    /// of them, for the per-network bound (`pending.rs`). Scans the pending rows: off the
    /// request path, once per expiry run.
    pub async fn pending_by_network(&self, floor: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let query = sqlx::query_as::<_, (String, i64)>(self.sql.pending_by_network).bind(floor);
        self.run(Box::pin(query.fetch_all(&self.pool))).await
    }

    /// The store-wide bound on pending triplets: when more than `max` are stored, forgets the
    /// oldest pending ones (by first attempt) until `max` are left, in statements of at most
    /// `batch` rows. Passed triplets and the auto-whitelists are never touched, so a flood
    /// of first attempts cannot push out what regular correspondents earned. Returns the rows
    /// deleted.
    pub async fn trim_pending(&self, max: u64, batch: u32) -> Result<u64, StoreError> {
        let query = sqlx::query_scalar::<_, i64>(self.sql.count_pending);
        let pending = u64::try_from(self.run(Box::pin(query.fetch_one(&self.pool))).await?).unwrap_or(0);
        let mut excess = pending.saturating_sub(max);
        let mut deleted = 0;
        while excess > 0 {
            let limit = excess.min(u64::from(batch.max(1)));
            let query = sqlx::query(self.sql.trim_pending).bind(i64::try_from(limit).unwrap_or(i64::MAX));
            let n = self.run(Box::pin(query.execute(&self.pool))).await?.rows_affected();
            deleted += n;
            if n < limit {
                break;
            }
            excess -= n;
            tokio::task::yield_now().await;
        }
        Ok(deleted)
    }

    /// Counts for `postward-greyd stats`; scans the tables, so not for the request path.
    pub async fn stats(&self, now: i64) -> Result<Stats, StoreError> {
        let cutoff = now.saturating_sub(UNRETRIED_AGE);
        self.run(Box::pin(async {
            let mut conn = self.pool.acquire().await?;
            let (triplets, passed, awl_clients, awl_domains): (i64, i64, i64, i64) =
                sqlx::query_as(self.sql.stats_counts).fetch_one(&mut *conn).await?;
            let unretried_clients =
                sqlx::query_as(self.sql.stats_top_clients).bind(cutoff).fetch_all(&mut *conn).await?;
            let unretried_senders =
                sqlx::query_as(self.sql.stats_top_senders).bind(cutoff).fetch_all(&mut *conn).await?;
            Ok(Stats {
                triplets,
                passed,
                waiting: triplets - passed,
                awl_clients,
                awl_domains,
                unretried_clients,
                unretried_senders,
            })
        }))
        .await
    }

    /// Every greylist row, oldest first, for `postward-greyd dump`.
    ///
    /// Design note: this loads the whole table into memory, which is fine for the sizes greylists
    /// reach (a row is a few hundred bytes); stream it if that ever changes. The whole read is
    /// bounded by `op_timeout`, so a `dump` tool should open its store with a generous one.
    pub async fn dump(&self) -> Result<Vec<DumpRow>, StoreError> {
        let rows: Vec<DumpTuple> = self.run(Box::pin(sqlx::query_as(self.sql.dump).fetch_all(&self.pool))).await?;
        Ok(rows
            .into_iter()
            .map(|(client_net, sender, recipient, first_seen, last_seen, passed_at, attempts, client_address)| {
                DumpRow { client_net, sender, recipient, first_seen, last_seen, passed_at, attempts, client_address }
            })
            .collect())
    }
}
