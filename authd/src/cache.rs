//! Successful verifications remembered for a while, so a client that logs in again and
//! again (every message of a mail client, every smtpd process) skips the expensive hash.
//!
//! The key is an HMAC-SHA256, under a key drawn at start, of the user and the password:
//! the cache never holds a password or anything that can be tested offline without the key,
//! which lives only in this process. An entry is valid for `ttl` and only while the store's
//! generation (bumped whenever a passwd-file or shadow file is re-read) is the one it was
//! made under; a reload (SIGHUP) starts an empty cache.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use lru::LruCache;
use sha2::Sha256;
use tokio::time::Instant;

/// A keyed hash of a user and a password.
pub type Fingerprint = [u8; 32];

/// Computes fingerprints; shared by the cache and the throttle.
pub struct Fingerprinter {
    key: [u8; 32],
}

impl Fingerprinter {
    pub fn new() -> Fingerprinter {
        let mut key = [0u8; 32];
        // Without the OS generator the key is still unknown outside this process's memory
        // only if it is random; fall back to the clock, which is weak but not fatal: the
        // cache then only speeds up logins, it never stores a password.
        if getrandom::fill(&mut key).is_err() {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            key[..16].copy_from_slice(&now.as_nanos().to_le_bytes());
        }
        Fingerprinter { key }
    }

    pub fn of(&self, user: &str, password: &[u8]) -> Fingerprint {
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key) else { return [0; 32] };
        mac.update(user.as_bytes());
        mac.update(&[0]);
        mac.update(password);
        mac.finalize().into_bytes().into()
    }
}

impl Default for Fingerprinter {
    fn default() -> Self {
        Fingerprinter::new()
    }
}

#[derive(Debug, Clone)]
struct Entry {
    user: String,
    expires: Instant,
    generation: u64,
}

/// The verification cache.
pub struct VerifyCache {
    ttl: Duration,
    entries: Mutex<LruCache<Fingerprint, Entry>>,
}

impl VerifyCache {
    /// `None` when `size` is 0 (the cache is off).
    pub fn new(size: usize, ttl: Duration) -> Option<VerifyCache> {
        let size = NonZeroUsize::new(size)?;
        Some(VerifyCache { ttl, entries: Mutex::new(LruCache::new(size)) })
    }

    /// The canonical user of a remembered success, if still valid.
    pub fn get(&self, fingerprint: &Fingerprint, generation: u64) -> Option<String> {
        let mut entries = self.entries.lock().ok()?;
        match entries.get(fingerprint) {
            Some(e) if e.generation == generation && e.expires > Instant::now() => Some(e.user.clone()),
            Some(_) => {
                entries.pop(fingerprint);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, fingerprint: Fingerprint, user: &str, generation: u64) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.put(fingerprint, Entry { user: user.to_owned(), expires: Instant::now() + self.ttl, generation });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ttl_and_generation() {
        let fp = Fingerprinter::new();
        let cache = VerifyCache::new(10, Duration::from_secs(60)).unwrap();
        let a = fp.of("alice", b"secret");
        assert_ne!(a, fp.of("alice", b"secret2"));
        assert_ne!(a, fp.of("alicesecret", b""));
        assert_ne!(a, Fingerprinter::new().of("alice", b"secret"), "keyed per process");
        cache.put(a, "alice@example.com", 1);
        assert_eq!(cache.get(&a, 1).as_deref(), Some("alice@example.com"));
        assert_eq!(cache.get(&a, 2), None, "a store change invalidates");
        cache.put(a, "alice@example.com", 2);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(cache.get(&a, 2), None, "expired");
        assert!(VerifyCache::new(0, Duration::from_secs(1)).is_none());
    }
}
