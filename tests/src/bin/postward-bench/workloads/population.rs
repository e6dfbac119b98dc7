//! A greylisting history as a busy site's store holds it, for runs that start from a
//! prefilled database: `size` triplets first seen over the last 35 days, most of them passed,
//! some still pending, plus clients the auto-whitelist already holds.
//!
//! Every triplet is a pure function of (seed, index), so `prefill-greylist` writes the
//! history into each daemon's store and the `greylist` workload's retries and repeats name
//! the same triplets later, without a file shared between the two.
//!
//! The shape, fixed so that a run is described by `--triplets N --prefill-seed S` alone:
//! - clients over the 512 /24s of 198.18.0.0/15 (the load tool's default range);
//! - senders `user<letters>@<letters>.test` over [`SENDER_DOMAINS`] domains, local parts of
//!   letters (greylisting daemons fold digits);
//! - recipients `rcpt<n>@example.net`, [`RECIPIENTS`] of them;
//! - [`PENDING_PER_100`] of every 100 triplets pending (first seen 10 minutes to 20 hours
//!   ago, never retried: a retry now passes in greyd, postgrey and sqlgrey alike, whose
//!   `max_connect_age` is 24 hours), the rest passed (first seen up to 35 days ago, last
//!   seen within the last 34, so no daemon's expiry removes them during a run);
//! - one auto-whitelisted client per 500 triplets, each with one sender domain of its own.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::{Clients, push_letters};
use crate::rng::Rng;

/// Distinct sender domains.
pub const SENDER_DOMAINS: u64 = 5_000;
/// Distinct recipients (`rcpt0@` … `rcpt999@`).
pub const RECIPIENTS: u64 = 1_000;
/// Pending triplets in every 100 (indices `100k .. 100k + 12`).
pub const PENDING_PER_100: u64 = 12;
/// Auto-whitelisted clients: one per this many triplets.
pub const TRIPLETS_PER_AWL_CLIENT: u64 = 500;

const DAY: i64 = 86_400;
/// Keeps the history's random streams apart from the request streams of the same seed.
const HISTORY: u64 = 0x6869_7374_6f72_7900;
const AWL: u64 = 0x6177_6c00_0000_0000;
/// 198.18.0.0, the start of the /15 every client comes from.
const AWL_BASE: u32 = 0xc612_0000;

/// The history: `size` triplets generated from `seed`, with times relative to `now`.
#[derive(Debug, Clone)]
pub struct Population {
    pub size: u64,
    pub seed: u64,
    clients: Clients,
}

/// Where a stored triplet is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Retried after the delay; last seen since.
    Passed { passed_at: i64, last_seen: i64, retries: u32 },
    /// First attempt only; a retry now passes.
    Pending,
}

/// A triplet as a request carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub client: IpAddr,
    pub sender: String,
    pub recipient: String,
}

/// One stored triplet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub key: Key,
    pub first_seen: i64,
    pub state: State,
}

/// An auto-whitelisted client and the sender domain its mail comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwlClient {
    pub client: IpAddr,
    pub domain: String,
    /// Counted passes (at least the daemons' default threshold of 5).
    pub passes: u32,
    pub last_seen: i64,
}

impl Population {
    pub fn new(size: u64, seed: u64) -> Population {
        Population { size, seed, clients: Clients::default() }
    }

    /// How many triplets are pending.
    pub fn pending(&self) -> u64 {
        self.size / 100 * PENDING_PER_100 + (self.size % 100).min(PENDING_PER_100)
    }

    /// How many triplets have passed.
    pub fn passed(&self) -> u64 {
        self.size - self.pending()
    }

    /// The index of the `k`-th pending triplet (`k < pending()`).
    pub fn pending_index(&self, k: u64) -> u64 {
        k / PENDING_PER_100 * 100 + k % PENDING_PER_100
    }

    /// The index of the `k`-th passed triplet (`k < passed()`).
    pub fn passed_index(&self, k: u64) -> u64 {
        let per = 100 - PENDING_PER_100;
        k / per * 100 + PENDING_PER_100 + k % per
    }

    pub fn awl_clients(&self) -> u64 {
        self.size / TRIPLETS_PER_AWL_CLIENT
    }

    /// The client, sender and recipient of triplet `i`: what a request for it carries.
    pub fn key(&self, i: u64) -> Key {
        self.draw(i).1
    }

    /// Triplet `i` of the history, its times relative to `now` (unix seconds).
    pub fn stored(&self, i: u64, now: i64) -> Stored {
        let (mut rng, key) = self.draw(i);
        let (first_seen, state) = if i % 100 < PENDING_PER_100 {
            (now - 600 - between(&mut rng, 0, 20 * 3_600 - 600), State::Pending)
        } else {
            let first_seen = now - between(&mut rng, 3 * 3_600, 35 * DAY);
            let passed_at = first_seen + 300 + between(&mut rng, 0, 3_600);
            let last_seen = (passed_at + between(&mut rng, 0, now - passed_at)).max(now - 34 * DAY).min(now);
            let retries = 1 + u32::try_from(rng.below(4)).unwrap_or(0);
            (first_seen, State::Passed { passed_at, last_seen, retries })
        };
        Stored { key, first_seen, state }
    }

    /// The key of triplet `i`, and the random stream its times are drawn from next.
    fn draw(&self, i: u64) -> (Rng, Key) {
        let mut rng = Rng::new(self.seed ^ HISTORY, i);
        let client = self.clients.pick(&mut rng);
        let mut sender = String::with_capacity(40);
        sender.push_str("user");
        push_letters(&mut sender, rng.next_u64());
        sender.push('@');
        push_domain(&mut sender, rng.below(SENDER_DOMAINS));
        let mut recipient = String::with_capacity(24);
        let _ = write!(recipient, "rcpt{}@example.net", rng.below(RECIPIENTS));
        (rng, Key { client, sender, recipient })
    }

    /// Auto-whitelisted client `a` (`a < awl_clients()`), its times relative to `now`.
    pub fn awl_client(&self, a: u64, now: i64) -> AwlClient {
        let mut rng = Rng::new(self.seed ^ AWL, a);
        // Distinct for every `a` below 2^17: an odd multiplier is a bijection modulo 2^17,
        // the size of 198.18.0.0/15.
        let offset = Rng::new(self.seed, AWL).next_u64();
        let host = (a.wrapping_mul(0x9e37).wrapping_add(offset)) & 0x1_ffff;
        let client = IpAddr::V4(std::net::Ipv4Addr::from(AWL_BASE | u32::try_from(host).unwrap_or(0)));
        let mut domain = String::new();
        push_domain(&mut domain, a % SENDER_DOMAINS);
        let passes = 5 + u32::try_from(rng.below(20)).unwrap_or(0);
        AwlClient { client, domain, passes, last_seen: now - between(&mut rng, 0, DAY) }
    }
}

/// Sender domain `k`: `<letters>.test`, no digits (some daemons fold them).
pub(super) fn push_domain(out: &mut String, k: u64) {
    out.push_str("sd");
    push_letters(out, k);
    out.push_str(".test");
}

/// Uniform in `lo..=hi` (`lo` when `hi <= lo`).
fn between(rng: &mut Rng, lo: i64, hi: i64) -> i64 {
    let span = u64::try_from(hi - lo).unwrap_or(0);
    lo + i64::try_from(rng.below(span + 1)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_split_into_pending_and_passed() {
        for size in [0, 1, 12, 13, 100, 250, 1_000_003] {
            let p = Population::new(size, 1);
            assert_eq!(p.pending() + p.passed(), size);
            if p.pending() > 0 {
                let last = p.pending_index(p.pending() - 1);
                assert!(last < size && last % 100 < PENDING_PER_100, "{size}: {last}");
            }
            if p.passed() > 0 {
                let last = p.passed_index(p.passed() - 1);
                assert!(last < size && last % 100 >= PENDING_PER_100, "{size}: {last}");
            }
        }
        let p = Population::new(1_000, 1);
        let pending: Vec<u64> = (0..p.pending()).map(|k| p.pending_index(k)).collect();
        let passed: Vec<u64> = (0..p.passed()).map(|k| p.passed_index(k)).collect();
        let mut all: Vec<u64> = pending.iter().chain(&passed).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1_000).collect::<Vec<_>>(), "every index exactly once");
    }

    #[test]
    fn triplets_are_stable_distinct_and_shaped_as_described() {
        let now = 1_800_000_000;
        let p = Population::new(10_000, 7);
        assert_eq!(p.stored(42, now), p.stored(42, now));
        assert_ne!(p.stored(42, now), Population::new(10_000, 8).stored(42, now));
        let mut keys = std::collections::HashSet::new();
        for i in 0..p.size {
            let s = p.stored(i, now);
            assert_eq!(s.key, p.key(i));
            let (local, domain) = s.key.sender.split_once('@').unwrap();
            assert!(local.bytes().all(|b| b.is_ascii_lowercase()) && domain.ends_with(".test"), "{:?}", s.key);
            assert!(!domain.bytes().any(|b| b.is_ascii_digit()), "{:?}", s.key);
            assert!(keys.insert(s.key), "{i} repeats a triplet");
            match s.state {
                State::Pending => {
                    assert!(i % 100 < PENDING_PER_100);
                    assert!((now - 20 * 3_600..=now - 600).contains(&s.first_seen), "{i}: {}", now - s.first_seen);
                }
                State::Passed { passed_at, last_seen, retries } => {
                    assert!(s.first_seen >= now - 35 * DAY && passed_at >= s.first_seen + 300, "{i}");
                    assert!(last_seen >= passed_at.min(now - 34 * DAY) && last_seen <= now, "{i}");
                    assert!(last_seen >= now - 34 * DAY && (1..=4).contains(&retries), "{i}");
                }
            }
        }
        assert_eq!(p.awl_clients(), 20);
        let a = p.awl_client(3, now);
        assert!(a.passes >= 5 && a.last_seen <= now && a.domain.ends_with(".test"));
        // Auto-whitelisted clients are distinct addresses (a store keys them by address).
        let big = Population::new(10_000_000, 7);
        let clients: std::collections::HashSet<IpAddr> =
            (0..big.awl_clients()).map(|a| big.awl_client(a, now).client).collect();
        assert_eq!(clients.len() as u64, big.awl_clients());
        assert!(clients.iter().all(|c| Clients::default().contains(c)));
    }
}
