//! Brute-force throttling: an exponential penalty per client address and per user name.
//!
//! Dovecot penalises only the address (2·2ⁿ s, up to 15 s), which both misses password
//! spraying from many addresses and, with its 2 s failure delay on top, exceeds Postfix's
//! 10 s auth timeout, so Postfix answers 454 and reconnects. We penalise the address (IPv6 by
//! /64) and the user, and the caller caps the total wait inside the reply budget.
//!
//! Repeating the same user and password does not raise the penalty: that is a client with a
//! stale saved password, not an attacker (anvil's trick, with a keyed hash instead of CRC32).

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Duration;

use lru::LruCache;
use tokio::time::Instant;

/// `[throttle]` settings.
#[derive(Debug, Clone)]
pub struct ThrottleSettings {
    /// Penalty after the first failure; doubles with each further one.
    pub initial: Duration,
    pub max: Duration,
    /// Failures older than this are forgotten.
    pub forget_after: Duration,
    /// Entries kept (addresses and users together); the least recently used go first.
    pub size: usize,
    pub ipv6_prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Addr(IpAddr),
    User(String),
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    /// Keyed hash of the last failed user and password.
    last_attempt: u64,
}

/// The penalty table.
pub struct Throttle {
    settings: ThrottleSettings,
    /// A std mutex: no await happens while it is held and each section is a few lookups.
    table: Mutex<LruCache<Key, Record>>,
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Throttle {
        let size = NonZeroUsize::new(settings.size.max(2)).unwrap_or(NonZeroUsize::MIN);
        Throttle { settings, table: Mutex::new(LruCache::new(size)) }
    }

    /// The wait owed by the next answer to `rip` about `user`: the larger of both penalties.
    pub fn penalty(&self, rip: Option<IpAddr>, user: Option<&str>) -> Duration {
        let now = Instant::now();
        let Ok(mut table) = self.table.lock() else { return Duration::ZERO };
        let mut worst = 0;
        for key in self.keys(rip, user) {
            if let Some(r) = table.get(&key)
                && now.duration_since(r.last) < self.settings.forget_after
            {
                worst = worst.max(r.failures);
            }
        }
        self.for_failures(worst)
    }

    /// Records a failed attempt (`attempt` = keyed hash of user and password).
    pub fn failed(&self, rip: Option<IpAddr>, user: Option<&str>, attempt: u64) {
        let now = Instant::now();
        let Ok(mut table) = self.table.lock() else { return };
        for key in self.keys(rip, user) {
            let fresh = Record { failures: 1, last: now, last_attempt: attempt };
            match table.get_mut(&key) {
                Some(r) if now.duration_since(r.last) >= self.settings.forget_after => *r = fresh,
                Some(r) => {
                    if r.last_attempt != attempt {
                        r.failures = r.failures.saturating_add(1);
                    }
                    r.last = now;
                    r.last_attempt = attempt;
                }
                None => {
                    table.put(key, fresh);
                }
            }
        }
    }

    /// A successful login clears the address's and the user's record.
    pub fn succeeded(&self, rip: Option<IpAddr>, user: Option<&str>) {
        let Ok(mut table) = self.table.lock() else { return };
        for key in self.keys(rip, user) {
            table.pop(&key);
        }
    }

    fn for_failures(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
        self.settings.initial.saturating_mul(factor).min(self.settings.max)
    }

    fn keys(&self, rip: Option<IpAddr>, user: Option<&str>) -> impl Iterator<Item = Key> {
        let addr = rip.map(|ip| Key::Addr(mask(ip, self.settings.ipv6_prefix)));
        addr.into_iter().chain(user.map(|u| Key::User(u.to_owned())))
    }
}

/// IPv4 addresses stay whole; IPv6 ones are cut to their `/prefix` network.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let keep = u32::from(prefix.min(128));
            let masked = if keep == 0 { 0 } else { bits & (u128::MAX << (128 - keep)) };
            IpAddr::V6(masked.into())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(ThrottleSettings {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(6),
            forget_after: Duration::from_secs(900),
            size: 100,
            ipv6_prefix: 64,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn doubles_caps_forgets_and_clears() {
        let t = throttle();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(t.penalty(Some(ip), Some("a")), Duration::ZERO);
        let secs: Vec<u64> = (1..=5u64)
            .map(|n| {
                t.failed(Some(ip), Some("a"), n);
                t.penalty(Some(ip), None).as_secs()
            })
            .collect();
        assert_eq!(secs, [1, 2, 4, 6, 6]);
        // The user is penalised from any address.
        assert_eq!(t.penalty(Some("198.51.100.9".parse().unwrap()), Some("a")), Duration::from_secs(6));
        // The same attempt repeated does not count again.
        t.failed(Some("192.0.2.2".parse().unwrap()), Some("b"), 7);
        t.failed(Some("192.0.2.2".parse().unwrap()), Some("b"), 7);
        assert_eq!(t.penalty(None, Some("b")), Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(901)).await;
        assert_eq!(t.penalty(Some(ip), Some("a")), Duration::ZERO);
        t.failed(Some(ip), Some("a"), 1);
        assert_eq!(t.penalty(Some(ip), None), Duration::from_secs(1));
        t.succeeded(Some(ip), Some("a"));
        assert_eq!(t.penalty(Some(ip), Some("a")), Duration::ZERO);
    }

    #[test]
    fn ipv6_by_prefix() {
        let t = throttle();
        t.failed(Some("2001:db8:1:2::5".parse().unwrap()), None, 1);
        assert_eq!(t.penalty(Some("2001:db8:1:2:ffff::1".parse().unwrap()), None), Duration::from_secs(1));
        assert_eq!(t.penalty(Some("2001:db8:1:3::5".parse().unwrap()), None), Duration::ZERO);
    }
}
