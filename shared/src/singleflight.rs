//! Concurrent callers asking for the same thing share one computation (Go's `singleflight`).
//!
//! Used for DNS: when fifty smtpd processes ask about the same sender domain at once, the
//! resolver's cache is still empty for all of them, and without this each would send its own
//! query. The first caller runs the work; the others wait for its result. If the first caller
//! is cancelled (its client went away), a waiting caller takes over with its own future, so
//! nobody waits on work that no longer runs. Finished keys are forgotten at once: this is not
//! a cache, only a meeting point for requests in flight.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;

/// A set of keyed computations in flight.
pub struct Group<K, V> {
    calls: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for Group<K, V> {
    fn default() -> Self {
        Group { calls: Mutex::new(HashMap::new()) }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Group<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `work` for `key`, or waits for the run already in flight for `key`.
    pub async fn run<F, Fut>(&self, key: K, work: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let cell = {
            let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
            calls.entry(key.clone()).or_insert_with(|| Arc::new(OnceCell::new())).clone()
        };
        let value = cell.get_or_init(work).await.clone();
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        if calls.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            calls.remove(&key);
        }
        value
    }

    /// Keys in flight (for tests and statistics).
    pub fn in_flight(&self) -> usize {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let group = Arc::new(Group::<&'static str, u32>::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (group, runs) = (group.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                group
                    .run("example.org", || async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        7
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 7);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(group.in_flight(), 0);
        // Once finished, the next call runs again: no caching.
        assert_eq!(group.run("example.org", || async { 8 }).await, 8);
    }

    #[tokio::test]
    async fn a_cancelled_leader_hands_over_to_a_waiter() {
        let group = Arc::new(Group::<u8, u8>::new());
        let g = group.clone();
        let leader = tokio::spawn(async move {
            g.run(1, || async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                1
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let g = group.clone();
        let waiter = tokio::spawn(async move { g.run(1, || async { 2 }).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        let got = tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
        assert_eq!(got, 2);
    }
}
