//! In-memory caches in front of the store, kept correct when several MX hosts share one
//! database: only facts that another host cannot take back are cached.
//! - A passed triplet stays passed until `max_age` after it was last seen. The cache answers
//!   it and writes `last_seen` back to the store at most once an hour, so the row never ages
//!   out while it is in use.
//! - An auto-whitelisted client stays whitelisted; cached for an hour.
//! - Deferred triplets are never cached: another host may have seen an earlier attempt.
//!
//! Each cache has its own mutex, held for one get or put and never across an await.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

use crate::triplet::Triplet;

/// How often a cached pass is written back to the store, and how long a whitelisted client
/// is trusted from memory (seconds).
pub const REFRESH: i64 = 3600;

#[derive(Debug, Clone, Copy)]
struct Pass {
    delayed: i64,
    /// When `last_seen` was last written to the store.
    written: i64,
}

/// What the cache knows about a passed triplet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedPass {
    pub delayed: i64,
    /// The store's `last_seen` is due for a refresh.
    pub refresh_due: bool,
}

pub struct HotCache {
    passed: Mutex<LruCache<Triplet, Pass>>,
    clients: Mutex<LruCache<String, i64>>,
    headers: Mutex<LruCache<String, ()>>,
}

impl HotCache {
    pub fn new(size: usize) -> HotCache {
        let n = |s: usize| NonZeroUsize::new(s.max(1)).unwrap_or(NonZeroUsize::MIN);
        HotCache {
            passed: Mutex::new(LruCache::new(n(size))),
            clients: Mutex::new(LruCache::new(n(size / 4))),
            headers: Mutex::new(LruCache::new(n(10_000))),
        }
    }

    pub fn passed(&self, t: &Triplet, now: i64) -> Option<CachedPass> {
        let mut c = self.passed.lock().ok()?;
        let p = c.get_mut(t)?;
        let refresh_due = now - p.written >= REFRESH;
        if refresh_due {
            // One request does the write; the others keep answering from memory.
            p.written = now;
        }
        Some(CachedPass { delayed: p.delayed, refresh_due })
    }

    pub fn remember_pass(&self, t: &Triplet, delayed: i64, now: i64) {
        if let Ok(mut c) = self.passed.lock() {
            c.put(t.clone(), Pass { delayed, written: now });
        }
    }

    pub fn client_whitelisted(&self, client: &str, now: i64) -> bool {
        self.clients.lock().ok().and_then(|mut c| c.get(client).copied()).is_some_and(|until| until > now)
    }

    pub fn remember_client(&self, client: &str, now: i64) {
        if let Ok(mut c) = self.clients.lock() {
            c.put(client.to_owned(), now + REFRESH);
        }
    }

    /// True the first time an `instance` (one message on one smtpd connection) is seen, so
    /// the X-Greylist header is added once per message, not once per recipient.
    pub fn first_header_for(&self, instance: &str) -> bool {
        match self.headers.lock() {
            Ok(mut c) => c.put(instance.to_owned(), ()).is_none(),
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Triplet {
        Triplet { client_net: "192.0.2.0/24".into(), sender: s.into(), recipient: "r@x".into() }
    }

    #[test]
    fn passes_refresh_hourly() {
        let c = HotCache::new(10);
        assert_eq!(c.passed(&t("a"), 0), None);
        c.remember_pass(&t("a"), 400, 1000);
        assert_eq!(c.passed(&t("a"), 1500), Some(CachedPass { delayed: 400, refresh_due: false }));
        assert_eq!(c.passed(&t("a"), 1000 + REFRESH), Some(CachedPass { delayed: 400, refresh_due: true }));
        assert_eq!(c.passed(&t("a"), 1001 + REFRESH), Some(CachedPass { delayed: 400, refresh_due: false }));
    }

    #[test]
    fn clients_expire_and_headers_once() {
        let c = HotCache::new(10);
        c.remember_client("192.0.2.1", 0);
        assert!(c.client_whitelisted("192.0.2.1", REFRESH - 1));
        assert!(!c.client_whitelisted("192.0.2.1", REFRESH));
        assert!(c.first_header_for("inst1"));
        assert!(!c.first_header_for("inst1"));
        assert!(c.first_header_for("inst2"));
    }
}
