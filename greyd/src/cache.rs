//! In-memory caches in front of the store, kept correct when several MX hosts share one
//! database.
//!
//! A triplet's verdict is a function of its stored times and the clock: once this host has
//! read or written a triplet, another host can only (a) pass it, which this host computes
//! from the same first-seen time anyway, (b) restart it after expiry, which this host does by
//! the same rule, or (c) count a retry, which no decision reads. So every entry this host has
//! seen is answered from memory, and the store is written only when something changes:
//! the first early retry, the first pass, a restart, and for a passed triplet at most once an
//! hour (`last_seen`, so it does not age out while in use). Auto-whitelist promotions made by
//! another host are seen for triplets that are not in this cache yet.
//!
//! Each cache has its own mutex, held for one get or put and never across an await.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

use crate::store::Entry;
use crate::triplet::Triplet;

/// The triplet as one string. Its parts come from policy attributes, which cannot hold a
/// newline, so the joined form is unambiguous.
fn flat(t: &Triplet) -> String {
    let mut key = String::with_capacity(t.client_net.len() + t.sender.len() + t.recipient.len() + 2);
    for (i, part) in [&t.client_net, &t.sender, &t.recipient].into_iter().enumerate() {
        if i > 0 {
            key.push('\n');
        }
        key.push_str(part);
    }
    key
}

/// How often a cached pass is written back to the store, and how long a whitelisted client
/// is trusted from memory (seconds).
pub const REFRESH: i64 = 3600;

pub struct HotCache {
    /// Keyed by [`flat`]: one allocation per entry instead of three.
    entries: Mutex<LruCache<Box<str>, Entry>>,
    clients: Mutex<LruCache<String, i64>>,
    headers: Mutex<LruCache<String, ()>>,
}

impl HotCache {
    pub fn new(size: usize) -> HotCache {
        let n = |s: usize| NonZeroUsize::new(s.max(1)).unwrap_or(NonZeroUsize::MIN);
        HotCache {
            entries: Mutex::new(LruCache::new(n(size))),
            clients: Mutex::new(LruCache::new(n(size / 4))),
            headers: Mutex::new(LruCache::new(n(10_000))),
        }
    }

    /// The entry as this host last wrote or read it. Its `last_seen` is the time last
    /// written to the store.
    pub fn entry(&self, t: &Triplet) -> Option<Entry> {
        self.entries.lock().ok()?.get(flat(t).as_str()).cloned()
    }

    /// Remembers the entry as it now stands in the store.
    pub fn remember(&self, t: &Triplet, entry: Entry) {
        if let Ok(mut c) = self.entries.lock() {
            c.put(flat(t).into_boxed_str(), entry);
        }
    }

    /// True when a passed entry's `last_seen` in the store is due for a refresh.
    pub fn refresh_due(entry: &Entry, now: i64) -> bool {
        now - entry.last_seen >= REFRESH
    }

    pub fn client_whitelisted(&self, client: &str, now: i64) -> bool {
        self.clients.lock().ok().and_then(|mut c| c.get(client).copied()).is_some_and(|until| until > now)
    }

    pub fn remember_client(&self, client: &str, now: i64) {
        if let Ok(mut c) = self.clients.lock() {
            c.put(client.to_owned(), now + REFRESH);
        }
    }

    /// Forgets every triplet and client, as after a restart: an admin command changed the
    /// store behind the cache's back (see `store/admin.rs`). The old maps are dropped after
    /// the locks are released, so requests do not wait for a million frees.
    pub fn clear(&self) {
        let entries = self.entries.lock().ok().map(|mut c| {
            let cap = c.cap();
            std::mem::replace(&mut *c, LruCache::new(cap))
        });
        let clients = self.clients.lock().ok().map(|mut c| {
            let cap = c.cap();
            std::mem::replace(&mut *c, LruCache::new(cap))
        });
        drop((entries, clients));
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

    fn e(first_seen: i64) -> Entry {
        Entry { first_seen, last_seen: first_seen, passed_at: None, attempts: 0, client_address: "192.0.2.1".into() }
    }

    #[test]
    fn entries_round_trip_and_evict() {
        let c = HotCache::new(2);
        assert_eq!(c.entry(&t("a")), None);
        c.remember(&t("a"), e(1));
        c.remember(&t("b"), e(2));
        c.remember(&t("c"), e(3));
        assert_eq!(c.entry(&t("a")), None, "least recently used is evicted");
        assert_eq!(c.entry(&t("c")), Some(e(3)));
        assert!(!HotCache::refresh_due(&e(1000), 1000 + REFRESH - 1));
        assert!(HotCache::refresh_due(&e(1000), 1000 + REFRESH));
    }

    #[test]
    fn clear_forgets_triplets_and_clients_but_keeps_the_size() {
        let c = HotCache::new(8);
        c.remember(&t("a"), e(1));
        c.remember_client("192.0.2.1", 0);
        assert!(c.first_header_for("inst1"));
        c.clear();
        assert_eq!(c.entry(&t("a")), None);
        assert!(!c.client_whitelisted("192.0.2.1", 1));
        assert!(!c.first_header_for("inst1"), "the header memory is no greylist state: kept");
        for i in 0..8 {
            c.remember(&t(&i.to_string()), e(i));
        }
        assert_eq!(c.entry(&t("0")), Some(e(0)), "still room for 8 entries");
    }

    #[test]
    fn parts_do_not_run_together() {
        let c = HotCache::new(10);
        let key =
            |net: &str, s: &str, r: &str| Triplet { client_net: net.into(), sender: s.into(), recipient: r.into() };
        c.remember(&key("n", "ab", "c"), e(1));
        assert_eq!(c.entry(&key("n", "a", "bc")), None);
        assert_eq!(c.entry(&key("n", "ab", "c")), Some(e(1)));
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
