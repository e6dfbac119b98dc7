//! Brute-force throttling: an exponential penalty per client address and per user name.
//!
//! Dovecot penalises only the address (2·2ⁿ s, up to 15 s), which both misses password
//! spraying from many addresses and, with its 2 s failure delay on top, exceeds Postfix's
//! 10 s auth timeout, so Postfix answers 454 and reconnects. We penalise the address (IPv6 by
//! /64) and the user, and the caller caps the total wait inside the reply budget.
//!
//! Repeating the same user and password does not raise the penalty: that is a client with a
//! stale saved password, not an attacker (anvil's trick, with a keyed hash instead of CRC32).
//! Each mechanism gives its own fingerprint of a guess (the password for PLAIN and LOGIN,
//! the client key for SCRAM, the digest for CRAM-MD5), so every mechanism's penalty grows.
//!
//! A success clears that user's record, and from the address only the failures made against
//! that user: a sprayer that logs into its own account between guesses keeps its penalty.
//! The table outlives reloads ([`Throttle::inherit`]).

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
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
    /// The failures of one user from one address: what a success takes off the address.
    Pair(IpAddr, String),
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
    /// Shared with the services of later reloads.
    table: Arc<Mutex<LruCache<Key, Record>>>,
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Throttle {
        let size = NonZeroUsize::new(settings.size.max(3)).unwrap_or(NonZeroUsize::MIN);
        Throttle { settings, table: Arc::new(Mutex::new(LruCache::new(size))) }
    }

    /// Takes over the records of the service a reload replaces, resized to this one's size.
    pub fn inherit(&mut self, previous: &Throttle) {
        self.table = previous.table.clone();
        if let Ok(mut table) = self.table.lock() {
            table.resize(NonZeroUsize::new(self.settings.size.max(3)).unwrap_or(NonZeroUsize::MIN));
        }
    }

    /// The wait owed by the next answer to `rip` about `user`: the larger of both penalties.
    pub fn penalty(&self, rip: Option<IpAddr>, user: Option<&str>) -> Duration {
        let now = Instant::now();
        let Ok(mut table) = self.table.lock() else { return Duration::ZERO };
        let mut worst = 0;
        for key in self.keys(rip, user).filter(|k| !matches!(k, Key::Pair(..))) {
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

    /// A successful login clears the user's record, and takes the user's own failures from
    /// this address off the address's record.
    pub fn succeeded(&self, rip: Option<IpAddr>, user: Option<&str>) {
        let Ok(mut table) = self.table.lock() else { return };
        let Some(user) = user else { return };
        table.pop(&Key::User(user.to_owned()));
        let Some(ip) = rip.map(|ip| mask(ip, self.settings.ipv6_prefix)) else { return };
        let Some(own) = table.pop(&Key::Pair(ip, user.to_owned())) else { return };
        let addr = Key::Addr(ip);
        if let Some(r) = table.get_mut(&addr) {
            r.failures = r.failures.saturating_sub(own.failures);
            if r.failures == 0 {
                table.pop(&addr);
            }
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
        let ip = rip.map(|ip| mask(ip, self.settings.ipv6_prefix));
        let pair = ip.zip(user).map(|(ip, u)| Key::Pair(ip, u.to_owned()));
        ip.map(Key::Addr).into_iter().chain(user.map(|u| Key::User(u.to_owned()))).chain(pair)
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

    /// Five guesses at other names, then a login to the sprayer's own account: the address
    /// keeps its five failures; a user's own mistakes are forgiven by its own success.
    #[test]
    fn a_success_clears_only_that_users_failures() {
        let t = throttle();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for (n, victim) in ["v1", "v2", "v3", "v4", "v5"].into_iter().enumerate() {
            t.failed(Some(ip), Some(victim), n as u64);
        }
        t.failed(Some(ip), Some("own"), 99);
        assert_eq!(t.penalty(Some(ip), None), Duration::from_secs(6), "six failures");
        t.succeeded(Some(ip), Some("own"));
        assert_eq!(t.penalty(Some(ip), None), Duration::from_secs(6), "five against others remain (2^4 s, capped)");
        assert_eq!(t.penalty(None, Some("own")), Duration::ZERO);
        assert_eq!(t.penalty(None, Some("v1")), Duration::from_secs(1), "the victims keep theirs");
        // A user who mistyped twice and then got it right leaves the address clean.
        let home: IpAddr = "198.51.100.3".parse().unwrap();
        t.failed(Some(home), Some("carol"), 1);
        t.failed(Some(home), Some("carol"), 2);
        t.succeeded(Some(home), Some("carol"));
        assert_eq!(t.penalty(Some(home), Some("carol")), Duration::ZERO);
    }

    #[test]
    fn a_reload_keeps_the_records() {
        let old = throttle();
        let ip: IpAddr = "192.0.2.8".parse().unwrap();
        old.failed(Some(ip), Some("x"), 1);
        old.failed(Some(ip), Some("y"), 2);
        let mut new = throttle();
        new.inherit(&old);
        assert_eq!(new.penalty(Some(ip), None), Duration::from_secs(2));
    }

    #[test]
    fn ipv6_by_prefix() {
        let t = throttle();
        t.failed(Some("2001:db8:1:2::5".parse().unwrap()), None, 1);
        assert_eq!(t.penalty(Some("2001:db8:1:2:ffff::1".parse().unwrap()), None), Duration::from_secs(1));
        assert_eq!(t.penalty(Some("2001:db8:1:3::5".parse().unwrap()), None), Duration::ZERO);
    }
}
