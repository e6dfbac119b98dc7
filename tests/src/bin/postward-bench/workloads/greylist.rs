//! The greylisting workload: a share of requests carry a never-seen triplet (client address,
//! sender, recipient), the rest repeat a triplet this connection sent before, drawn from a
//! pool of the most recent new ones (a retrying MTA, or a second recipient of a known sender).
//!
//! With a [`History`] (a store prefilled by `prefill-greylist`), the requests are a busy
//! site's mix instead: new triplets, early retries of this connection's new ones, retries of
//! the history's pending triplets (they pass), repeats of its passed triplets, and mail from
//! its auto-whitelisted clients, each share given by the [`Mix`].

use std::fmt::Write as _;

use super::population::{Population, push_domain};
use super::{Clients, Ctx, RcptRequest, push_letters, set_ip};
use crate::rng::Rng;

/// Options of `--workload greylist`.
#[derive(Debug, Clone)]
pub struct GreylistSpec {
    /// Share of requests with a never-seen triplet, `0.0..=1.0` (without a history).
    pub new_fraction: f64,
    /// Repeated triplets are drawn from the last `pool` new ones (split across connections).
    pub pool: usize,
    pub clients: Clients,
    pub sender_domains: Vec<String>,
    pub recipient_domain: String,
    /// The prefilled store's history, when the run starts from one.
    pub history: Option<History>,
}

impl Default for GreylistSpec {
    fn default() -> Self {
        GreylistSpec {
            new_fraction: 0.2,
            pool: 10_000,
            clients: Clients::default(),
            // sender0.test … sender15.test
            sender_domains: (0..16).map(|k| format!("sender{k}.test")).collect(),
            recipient_domain: "example.net".into(),
            history: None,
        }
    }
}

/// A prefilled store's history and the mix of requests sent against it.
#[derive(Debug, Clone)]
pub struct History {
    pub population: Population,
    pub mix: Mix,
}

/// Shares of the request classes against a history; they add up to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mix {
    /// Never-seen triplets (tag `new`).
    pub new: f64,
    /// Retries of this connection's recent new triplets, before the delay (`early`).
    pub early: f64,
    /// Retries of the history's pending triplets, after the delay (`pass`).
    pub pass: f64,
    /// Repeats of the history's passed triplets (`old`).
    pub old: f64,
    /// New senders from the history's auto-whitelisted clients (`awl`).
    pub awl: f64,
}

impl Default for Mix {
    /// A busy MX: 60% new triplets.
    fn default() -> Self {
        Mix { new: 0.6, early: 0.1, pass: 0.1, old: 0.15, awl: 0.05 }
    }
}

impl Mix {
    /// Parses `new=0.6,early=0.1,pass=0.1,old=0.15,awl=0.05`; a class left out has share 0.
    ///
    /// # Errors
    /// An unknown class, a share outside 0..=1, or shares that do not add up to 1.
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut mix = Mix { new: 0.0, early: 0.0, pass: 0.0, old: 0.0, awl: 0.0 };
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (class, share) = item.split_once('=').ok_or(format!("{item:?} is not CLASS=SHARE"))?;
            let share: f64 = share
                .parse()
                .ok()
                .filter(|f| (0.0..=1.0).contains(f))
                .ok_or(format!("{item:?}: the share is a number from 0 to 1"))?;
            let slot = match class {
                "new" => &mut mix.new,
                "early" => &mut mix.early,
                "pass" => &mut mix.pass,
                "old" => &mut mix.old,
                "awl" => &mut mix.awl,
                other => return Err(format!("unknown class {other:?} (new, early, pass, old, awl)")),
            };
            *slot = share;
        }
        let sum = mix.new + mix.early + mix.pass + mix.old + mix.awl;
        if (sum - 1.0).abs() > 1e-6 {
            return Err(format!("the shares add up to {sum}, not 1"));
        }
        Ok(mix)
    }
}

#[derive(Debug, Clone)]
struct Triplet {
    client_address: String,
    helo_name: String,
    sender: String,
    recipient: String,
}

#[derive(Debug)]
pub(super) struct Greylist {
    spec: GreylistSpec,
    /// Ring of this connection's most recent new triplets.
    pool: Vec<Triplet>,
    capacity: usize,
    next_slot: usize,
    /// This connection's next pending triplet to retry: ordinals `start + index + k × connections`,
    /// so the connections of a run never retry the same one.
    next_pending: u64,
    stride: u64,
}

impl Greylist {
    pub(super) fn new(spec: GreylistSpec, seed: u64, index: usize, connections: usize) -> Greylist {
        let capacity = spec.pool.div_ceil(connections.max(1)).max(1);
        let stride = u64::try_from(connections.max(1)).unwrap_or(1);
        // Runs with different seeds retry different pending triplets.
        let start = Rng::new(seed, u64::MAX).next_u64();
        let next_pending = start.wrapping_add(u64::try_from(index).unwrap_or(0));
        Greylist { spec, pool: Vec::new(), capacity, next_slot: 0, next_pending, stride }
    }

    /// Writes the next request and returns its class; while the pool is still empty, a
    /// repeat or early retry is a new triplet instead.
    pub(super) fn fill(&mut self, ctx: &mut Ctx, req: &mut RcptRequest) -> &'static str {
        ctx.new_message(req);
        let Some(mix) = self.spec.history.as_ref().map(|h| h.mix) else {
            if self.pool.is_empty() || ctx.rng.chance(self.spec.new_fraction) {
                self.fill_new(ctx, req);
                return "new";
            }
            self.fill_repeat(ctx, req);
            return "repeat";
        };
        let r = ctx.rng.unit();
        if r < mix.new || (r < mix.new + mix.early && self.pool.is_empty()) {
            self.fill_new(ctx, req);
            "new"
        } else if r < mix.new + mix.early {
            self.fill_repeat(ctx, req);
            "early"
        } else if let Some(tag) = self.fill_from_history(r, mix, ctx, req) {
            tag
        } else {
            self.fill_new(ctx, req);
            "new"
        }
    }

    /// A request for the history's triplets or clients, by where `r` falls in `mix` past
    /// new and early; `None` when the history has none of that kind.
    fn fill_from_history(&mut self, r: f64, mix: Mix, ctx: &mut Ctx, req: &mut RcptRequest) -> Option<&'static str> {
        let population = &self.spec.history.as_ref()?.population;
        if r < mix.new + mix.early + mix.pass && population.pending() > 0 {
            let k = self.next_pending % population.pending();
            self.next_pending = self.next_pending.wrapping_add(self.stride);
            let key = population.key(population.pending_index(k));
            fill_stored(req, key.client, &key.sender, &key.recipient);
            Some("pass")
        } else if r < mix.new + mix.early + mix.pass + mix.old && population.passed() > 0 {
            let k = ctx.rng.below(population.passed());
            let key = population.key(population.passed_index(k));
            fill_stored(req, key.client, &key.sender, &key.recipient);
            Some("old")
        } else if population.awl_clients() > 0 {
            // Only the client and its domain are used: the times (relative to 0) are not.
            let a = population.awl_client(ctx.rng.below(population.awl_clients()), 0);
            let mut sender = String::from("user");
            push_letters(&mut sender, ctx.rng.next_u64());
            let _ = write!(sender, "@{}", a.domain);
            let recipient = format!("rcpt{}@{}", ctx.rng.below(1000), self.spec.recipient_domain);
            fill_stored(req, a.client, &sender, &recipient);
            Some("awl")
        } else {
            None
        }
    }

    fn fill_repeat(&self, ctx: &mut Ctx, req: &mut RcptRequest) {
        let len = u64::try_from(self.pool.len()).unwrap_or(u64::MAX);
        let t = &self.pool[usize::try_from(ctx.rng.below(len)).unwrap_or(0)];
        req.client_address.clone_from(&t.client_address);
        req.helo_name.clone_from(&t.helo_name);
        req.sender.clone_from(&t.sender);
        req.recipient.clone_from(&t.recipient);
    }

    fn fill_new(&mut self, ctx: &mut Ctx, req: &mut RcptRequest) {
        let rng = &mut ctx.rng;
        set_ip(&mut req.client_address, self.spec.clients.pick(rng));
        // 64 random bits in the local part, unique within a run and across seeds. As letters:
        // greylisting daemons fold digit runs (VERP), so `user123@` and `user456@` are one key.
        req.sender.clear();
        req.sender.push_str("user");
        push_letters(&mut req.sender, rng.next_u64());
        req.sender.push('@');
        if self.spec.history.is_some() {
            push_domain(&mut req.sender, rng.below(super::population::SENDER_DOMAINS));
        } else {
            let domains = &self.spec.sender_domains;
            let domain = &domains[usize::try_from(rng.below(u64::try_from(domains.len()).unwrap_or(1))).unwrap_or(0)];
            req.sender.push_str(domain);
        }
        let domain = req.sender.rsplit_once('@').map_or("", |(_, d)| d);
        req.helo_name.clear();
        let _ = write!(req.helo_name, "mail.{domain}");
        req.recipient.clear();
        let _ = write!(req.recipient, "rcpt{}@{}", rng.below(1000), self.spec.recipient_domain);
        let triplet = Triplet {
            client_address: req.client_address.clone(),
            helo_name: req.helo_name.clone(),
            sender: req.sender.clone(),
            recipient: req.recipient.clone(),
        };
        if self.pool.len() < self.capacity {
            self.pool.push(triplet);
        } else {
            self.pool[self.next_slot] = triplet;
            self.next_slot = (self.next_slot + 1) % self.capacity;
        }
    }
}

/// A request for a triplet of the history.
fn fill_stored(req: &mut RcptRequest, client: std::net::IpAddr, sender: &str, recipient: &str) {
    set_ip(&mut req.client_address, client);
    req.sender.clear();
    req.sender.push_str(sender);
    req.recipient.clear();
    req.recipient.push_str(recipient);
    req.helo_name.clear();
    let _ = write!(req.helo_name, "mail.{}", sender.rsplit_once('@').map_or("", |(_, d)| d));
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::super::{PolicySpec, PolicyWorkload};
    use super::*;

    #[test]
    fn letters_encode_base_26() {
        let enc = |n| {
            let mut s = String::from("x");
            push_letters(&mut s, n);
            s
        };
        assert_eq!((enc(0), enc(25), enc(26), enc(27 * 26)), ("xa".into(), "xz".into(), "xba".into(), "xbba".into()));
        assert_eq!(enc(u64::MAX).len(), 1 + 14);
    }

    fn key(r: &RcptRequest) -> (String, String, String) {
        (r.client_address.clone(), r.sender.clone(), r.recipient.clone())
    }

    #[test]
    fn new_fraction_honoured_and_repeats_really_repeat() {
        for fraction in [0.0, 0.2, 0.5, 1.0] {
            let spec = GreylistSpec { new_fraction: fraction, pool: 400, ..GreylistSpec::default() };
            let mut w = PolicyWorkload::new(&PolicySpec::Greylist(spec.clone()), 42, 0, 4);
            let mut seen = HashSet::new();
            let mut new = 0usize;
            let n = 20_000;
            for _ in 0..n {
                let (req, tag) = w.next();
                let k = key(req);
                let domain = req.sender.rsplit_once('@').unwrap().1;
                assert!(spec.sender_domains.iter().any(|d| d == domain), "{}", req.sender);
                assert!(spec.clients.contains(&req.client_address.parse().unwrap()));
                match tag {
                    "new" => {
                        let local = req.sender.split_once('@').unwrap().0;
                        assert!(!local.bytes().any(|b| b.is_ascii_digit()), "digits fold in greylisting: {local}");
                        assert!(seen.insert(k), "a new triplet was seen before: {req:?}");
                        new += 1;
                    }
                    "repeat" => assert!(seen.contains(&k), "a repeat was never sent: {req:?}"),
                    other => panic!("unexpected tag {other:?}"),
                }
            }
            let share = new as f64 / f64::from(n);
            // The first request is always new (empty pool).
            let expected = fraction.max(1.0 / f64::from(n));
            assert!((share - expected).abs() < 0.02, "new-fraction {fraction}: got {share}");
        }
    }

    #[test]
    fn repeats_come_from_recent_pool() {
        // Pool of 8 over 2 connections: 4 per connection.
        let spec = GreylistSpec { new_fraction: 0.5, pool: 8, ..GreylistSpec::default() };
        let mut w = PolicyWorkload::new(&PolicySpec::Greylist(spec), 1, 0, 2);
        let mut recent: Vec<(String, String, String)> = Vec::new();
        for _ in 0..5_000 {
            let (req, tag) = w.next();
            let k = key(req);
            if tag == "new" {
                recent.push(k);
            } else {
                let window = &recent[recent.len().saturating_sub(4)..];
                assert!(window.contains(&k), "repeat outside the last 4 new triplets");
            }
        }
    }

    #[test]
    fn against_a_history_each_class_names_the_triplets_it_claims() {
        use std::collections::HashMap;

        use crate::workloads::population::{Key, State};
        let population = Population::new(50_000, 5);
        let now = 1_800_000_000;
        let by_key: HashMap<Key, State> =
            (0..population.size).map(|i| population.stored(i, now)).map(|s| (s.key, s.state)).collect();
        let awl: HashMap<String, String> = (0..population.awl_clients())
            .map(|a| population.awl_client(a, now))
            .map(|a| (a.client.to_string(), a.domain))
            .collect();
        let spec = GreylistSpec {
            history: Some(History { population: population.clone(), mix: Mix::default() }),
            ..GreylistSpec::default()
        };
        let (connections, n) = (3, 10_000);
        let mut counts: HashMap<&str, usize> = HashMap::new();
        let mut retried = std::collections::HashSet::new();
        let mut sent = std::collections::HashSet::new();
        for c in 0..connections {
            let mut w = PolicyWorkload::new(&PolicySpec::Greylist(spec.clone()), 9, c, connections);
            for _ in 0..n {
                let (req, tag) = w.next();
                *counts.entry(tag).or_default() += 1;
                let key = Key {
                    client: req.client_address.parse().unwrap(),
                    sender: req.sender.clone(),
                    recipient: req.recipient.clone(),
                };
                let stored = by_key.get(&key);
                match tag {
                    "new" => {
                        assert!(stored.is_none() && sent.insert(key.clone()), "{key:?}");
                        assert!(req.sender.ends_with(".test") && req.sender.starts_with("user"), "{}", req.sender);
                    }
                    "early" => assert!(sent.contains(&key), "an early retry of a triplet never sent: {key:?}"),
                    "pass" => {
                        assert_eq!(stored, Some(&State::Pending), "{key:?}");
                        assert!(retried.insert(key), "a pending triplet retried twice in one run");
                    }
                    "old" => assert!(matches!(stored, Some(State::Passed { .. })), "{key:?}"),
                    "awl" => {
                        let domain = awl.get(&req.client_address).expect("an auto-whitelisted client");
                        assert!(req.sender.ends_with(&format!("@{domain}")), "{}", req.sender);
                    }
                    other => panic!("unexpected class {other:?}"),
                }
            }
        }
        let total = (connections * n) as f64;
        let mix = Mix::default();
        for (tag, want) in
            [("new", mix.new), ("early", mix.early), ("pass", mix.pass), ("old", mix.old), ("awl", mix.awl)]
        {
            let share = counts.get(tag).copied().unwrap_or(0) as f64 / total;
            assert!((share - want).abs() < 0.015, "{tag}: {share} for {want}");
        }
    }

    #[test]
    fn mixes_parse_and_must_add_up() {
        assert_eq!(Mix::parse("new=0.6,early=0.1,pass=0.1,old=0.15,awl=0.05").unwrap(), Mix::default());
        assert_eq!(Mix::parse("old=1").unwrap().old, 1.0);
        for bad in ["new=0.5", "new=2", "new", "new=0.5,fresh=0.5", ""] {
            assert!(Mix::parse(bad).is_err(), "{bad:?}");
        }
    }
}
