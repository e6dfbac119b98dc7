//! A bounded LRU map whose entries expire at an instant given when they are stored: the
//! cache of DNS answers (expiry from the record's TTL) and of SPF results (a configured TTL).
//! One lock per get or put, never held across an await; a stale entry is dropped when found.
//! Time is Tokio's clock, so tests can expire entries with paused time.

use lru::LruCache;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};
use tokio::time::Instant;

pub struct TtlCache<K: Hash + Eq, V> {
    map: Mutex<LruCache<K, (V, Instant)>>,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    /// A cache of up to `capacity` entries; `None` for 0, meaning "no cache".
    pub fn new(capacity: usize) -> Option<TtlCache<K, V>> {
        NonZeroUsize::new(capacity).map(|n| TtlCache { map: Mutex::new(LruCache::new(n)) })
    }

    /// The value stored for `key`, unless it has expired.
    pub fn get(&self, key: &K) -> Option<V> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(key) {
            Some((value, expires)) if *expires > Instant::now() => Some(value.clone()),
            Some(_) => {
                map.pop(key);
                None
            }
            None => None,
        }
    }

    /// Stores `value` until `expires`.
    pub fn put(&self, key: K, value: V, expires: Instant) {
        self.map.lock().unwrap_or_else(PoisonError::into_inner).put(key, (value, expires));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn entries_expire_and_capacity_bounds() {
        assert!(TtlCache::<u8, u8>::new(0).is_none());
        let cache = TtlCache::new(2).unwrap();
        let now = Instant::now();
        cache.put(1, "a", now + Duration::from_secs(60));
        cache.put(2, "b", now);
        assert_eq!(cache.get(&1), Some("a"));
        assert_eq!(cache.get(&2), None, "expired at its instant");
        cache.put(3, "c", now + Duration::from_secs(60));
        cache.put(4, "d", now + Duration::from_secs(60));
        assert_eq!(cache.get(&1), None, "least recently used went first");
        assert_eq!(cache.get(&4), Some("d"));
    }
}
