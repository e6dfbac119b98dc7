//! The per-network bound on pending triplets (first attempts never retried), so that one
//! network flooding first attempts cannot fill the store: once a network holds
//! `greylist.max_pending_per_network` of them, its further first attempts are deferred as
//! usual but not stored. Its stored triplets still pass when retried, and no other network is
//! touched. (The store-wide bound, `greylist.max_pending`, is applied by expiry:
//! [`crate::store::Store::trim_pending`].)
//!
//! The count is an estimate kept in memory, so the request path pays no query for it:
//! - Every expiry run (and once at start) reads the store's true counts for the networks that
//!   hold at least a quarter of the limit, which takes in the first attempts and passes of
//!   every host sharing the store; a network not among them is known to hold less than that.
//! - Between runs, this host adds the first attempts it stores and subtracts the passes it
//!   records.
//!
//! So a network can overshoot the limit by what other hosts stored since the last run, and
//! a network close to the limit may be refused until the next run notices its passes: both
//! bounded by one `purge_interval`.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

/// Networks whose estimate is kept: a flood spread over more networks than this is the
/// store-wide bound's case.
const NETWORKS: usize = 65_536;

/// How often a refused network is warned about.
const WARN_EVERY: i64 = 3600;

pub struct PendingLimit {
    limit: u32,
    counts: Mutex<LruCache<String, u32>>,
    warned: Mutex<LruCache<String, i64>>,
}

impl PendingLimit {
    /// `limit` 0: no bound, and nothing is kept.
    pub fn new(limit: u32) -> PendingLimit {
        let size = NonZeroUsize::new(if limit == 0 { 1 } else { NETWORKS }).unwrap_or(NonZeroUsize::MIN);
        PendingLimit { limit, counts: Mutex::new(LruCache::new(size)), warned: Mutex::new(LruCache::new(size)) }
    }

    pub fn enabled(&self) -> bool {
        self.limit > 0
    }

    /// The smallest count [`PendingLimit::resync`] needs from the store.
    pub fn resync_floor(&self) -> i64 {
        i64::from(self.limit / 4).max(1)
    }

    /// True when `net` holds its limit of pending triplets: a first attempt from it must not
    /// be stored.
    pub fn full(&self, net: &str) -> bool {
        self.enabled() && self.counts.lock().ok().and_then(|mut c| c.get(net).copied()).unwrap_or(0) >= self.limit
    }

    /// This host stored a first attempt (or started an expired triplet over) for `net`.
    pub fn stored(&self, net: &str) {
        if let (true, Ok(mut c)) = (self.enabled(), self.counts.lock()) {
            match c.get_mut(net) {
                Some(n) => *n = n.saturating_add(1),
                None => {
                    c.put(net.to_owned(), 1);
                }
            }
        }
    }

    /// This host recorded the first pass of a triplet of `net`: one pending fewer.
    pub fn passed(&self, net: &str) {
        if let (true, Ok(mut c)) = (self.enabled(), self.counts.lock())
            && let Some(n) = c.get_mut(net)
        {
            *n = n.saturating_sub(1);
        }
    }

    /// The store's counts for every network holding at least [`PendingLimit::resync_floor`]
    /// pending triplets: those become the estimates, and every other network's estimate is
    /// capped at the floor (the store says it holds less).
    pub fn resync(&self, counts: &[(String, i64)]) {
        let Ok(mut c) = self.counts.lock() else { return };
        let floor = u32::try_from(self.resync_floor()).unwrap_or(u32::MAX);
        for (_, n) in c.iter_mut() {
            *n = (*n).min(floor);
        }
        for (net, n) in counts {
            c.put(net.clone(), u32::try_from(*n).unwrap_or(u32::MAX));
        }
    }

    /// A first attempt from a full network was deferred without being stored: true when
    /// this is the first for `net` in the last hour, so the caller warns once per hour.
    pub fn refused(&self, net: &str, now: i64) -> bool {
        metrics::counter!("postward_greyd_pending_limited_total").increment(1);
        let Ok(mut w) = self.warned.lock() else { return false };
        match w.get(net) {
            Some(&at) if now - at < WARN_EVERY => false,
            _ => {
                w.put(net.to_owned(), now);
                true
            }
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_fills_up_passes_free_room_and_others_are_apart() {
        let p = PendingLimit::new(3);
        for _ in 0..3 {
            assert!(!p.full("192.0.2.0/24"));
            p.stored("192.0.2.0/24");
        }
        assert!(p.full("192.0.2.0/24"));
        assert!(!p.full("198.51.100.0/24"), "another network is not touched");
        p.passed("192.0.2.0/24");
        assert!(!p.full("192.0.2.0/24"), "a pass frees one place");
    }

    #[test]
    fn resync_takes_the_store_counts_and_caps_the_rest() {
        let p = PendingLimit::new(100);
        assert_eq!(p.resync_floor(), 25);
        for _ in 0..100 {
            p.stored("192.0.2.0/24");
            p.stored("198.51.100.0/24");
        }
        assert!(p.full("192.0.2.0/24") && p.full("198.51.100.0/24"));
        // Another host saw most of 198.51.100.0/24 pass; 203.0.113.0/24 was flooded elsewhere.
        p.resync(&[("192.0.2.0/24".into(), 100), ("203.0.113.0/24".into(), 250)]);
        assert!(p.full("192.0.2.0/24"));
        assert!(!p.full("198.51.100.0/24"), "not listed: under the floor");
        assert!(p.full("203.0.113.0/24"), "full by other hosts' first attempts");
        for _ in 0..74 {
            p.stored("198.51.100.0/24");
        }
        assert!(!p.full("198.51.100.0/24"));
        p.stored("198.51.100.0/24");
        assert!(p.full("198.51.100.0/24"), "floor 25 + 75 = 100");
    }

    #[test]
    fn off_keeps_nothing_and_refuses_nothing() {
        let p = PendingLimit::new(0);
        for _ in 0..10 {
            p.stored("192.0.2.0/24");
        }
        assert!(!p.full("192.0.2.0/24"));
    }

    #[test]
    fn a_refused_network_is_warned_about_once_an_hour() {
        let p = PendingLimit::new(1);
        assert!(p.refused("192.0.2.0/24", 1000));
        assert!(!p.refused("192.0.2.0/24", 1000 + WARN_EVERY - 1));
        assert!(p.refused("198.51.100.0/24", 1001));
        assert!(p.refused("192.0.2.0/24", 1000 + WARN_EVERY));
    }
}
