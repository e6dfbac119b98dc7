//! Whether a list's answers can be believed, and the warnings when they cannot.
//!
//! - **Blocked codes.** List operators answer refused resolvers (public resolvers, too many
//!   queries, a typo'd DQS key) with 127.255.255.0/24 (Spamhaus) or 127.0.0.255 (DNSWL).
//!   Read as a listing, that rejects every sender. Such answers, and any answer outside
//!   127.0.0.0/8 (a dead list's domain parked behind a wildcard), never count; they are
//!   logged as a list health warning at most once per [`WARN_INTERVAL`] per list.
//! - **Outages.** A list that times out or fails counts as not listed (fail-open). The first
//!   failure of an outage is logged, and the first answer after it.
//! - **Test points** (RFC 5782 §5): `127.0.0.2` (or the name `test`) must be listed and
//!   `127.0.0.1` (or `invalid`) must not. A list failing them is skipped until they pass.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// At most one health warning per list this often.
pub const WARN_INTERVAL: Duration = Duration::from_secs(600);

/// What one A record of a list's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// A listing code (127.0.0.0/8, not a blocked code).
    Listed(Ipv4Addr),
    /// The list refused the resolver: never a listing.
    Blocked(Ipv4Addr),
    /// Not a list answer at all.
    Foreign(Ipv4Addr),
}

impl Code {
    pub fn of(a: Ipv4Addr) -> Code {
        let [first, second, third, fourth] = a.octets();
        if first != 127 {
            Code::Foreign(a)
        } else if (second, third) == (255, 255) || (second, third, fourth) == (0, 0, 255) {
            Code::Blocked(a)
        } else {
            Code::Listed(a)
        }
    }
}

/// One list's state, shared by every request and the prober.
#[derive(Debug, Default)]
pub struct Health {
    /// Set while the test points fail; checked on every request, so an atomic.
    broken: AtomicBool,
    broken_why: Mutex<String>,
    failing: AtomicBool,
    last_warning: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl Health {
    /// Whether requests should query the list.
    pub fn usable(&self) -> bool {
        !self.broken.load(Ordering::Relaxed)
    }

    /// Why the list is skipped (empty while it is usable).
    pub fn broken_why(&self) -> String {
        self.broken_why.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The list answered (listed or not).
    pub fn answered(&self, list: &str) {
        if self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(list, "DNS list answering again");
        }
    }

    /// The list did not answer: counted as not listed, logged once per outage.
    pub fn failed(&self, list: &str, error: &str) {
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(list, error, "DNS list lookup failed; counting as not listed until it answers again");
        }
    }

    /// A blocked or foreign code: not counted, warned about (rate-limited).
    pub fn suspicious(&self, list: &str, code: Code) {
        let now = Instant::now();
        let mut last = self.last_warning.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|t| now.duration_since(t) < WARN_INTERVAL) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(now);
        drop(last);
        let more = self.suppressed.swap(0, Ordering::Relaxed);
        match code {
            Code::Blocked(a) => tracing::warn!(
                list,
                code = %a,
                suppressed = more,
                "DNS list refused this resolver (blocked code, not a listing): use your own recursive resolver or a DQS key"
            ),
            Code::Foreign(a) | Code::Listed(a) => tracing::warn!(
                list,
                code = %a,
                suppressed = more,
                "DNS list answered outside 127.0.0.0/8 (not a list answer; is the zone still a DNS list?)"
            ),
        }
    }

    /// Records a probe result; logs when the state changes.
    pub fn probed(&self, list: &str, result: Result<(), String>) {
        let mut why = self.broken_why.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(()) => {
                if self.broken.swap(false, Ordering::Relaxed) {
                    tracing::info!(list, "DNS list test points pass again; list back in use");
                }
                why.clear();
            }
            Err(e) => {
                if !self.broken.swap(true, Ordering::Relaxed) || *why != e {
                    tracing::warn!(list, error = %e, "DNS list fails its RFC 5782 test points; skipped until they pass");
                }
                *why = e;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let code = |s: &str| Code::of(s.parse().unwrap());
        assert_eq!(code("127.0.0.2"), Code::Listed("127.0.0.2".parse().unwrap()));
        assert_eq!(code("127.0.10.3"), Code::Listed("127.0.10.3".parse().unwrap()));
        for blocked in ["127.255.255.252", "127.255.255.254", "127.255.255.255", "127.255.255.0", "127.0.0.255"] {
            assert!(matches!(code(blocked), Code::Blocked(_)), "{blocked}");
        }
        assert!(matches!(code("127.0.1.255"), Code::Listed(_)));
        assert!(matches!(code("192.0.2.1"), Code::Foreign(_)));
    }

    #[test]
    fn probe_state() {
        let h = Health::default();
        assert!(h.usable());
        h.probed("bl.example", Err("127.0.0.2 not listed".into()));
        assert!(!h.usable());
        assert_eq!(h.broken_why(), "127.0.0.2 not listed");
        h.probed("bl.example", Ok(()));
        assert!(h.usable());
        assert_eq!(h.broken_why(), "");
    }
}
