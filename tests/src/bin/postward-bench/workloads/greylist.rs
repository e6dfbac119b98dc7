//! The greylisting workload: a share of requests carry a never-seen triplet (client address,
//! sender, recipient), the rest repeat a triplet this connection sent before, drawn from a
//! pool of the most recent new ones (a retrying MTA, or a second recipient of a known sender).

use std::fmt::Write as _;

use super::{Clients, Ctx, RcptRequest, set_ip};

/// Options of `--workload greylist`.
#[derive(Debug, Clone)]
pub struct GreylistSpec {
    /// Share of requests with a never-seen triplet, `0.0..=1.0`.
    pub new_fraction: f64,
    /// Repeated triplets are drawn from the last `pool` new ones (split across connections).
    pub pool: usize,
    pub clients: Clients,
    pub sender_domains: Vec<String>,
    pub recipient_domain: String,
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
        }
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
}

impl Greylist {
    pub(super) fn new(spec: GreylistSpec, connections: usize) -> Greylist {
        let capacity = spec.pool.div_ceil(connections.max(1)).max(1);
        Greylist { spec, pool: Vec::new(), capacity, next_slot: 0 }
    }

    /// Writes the next request; while the pool is still empty every request is new.
    pub(super) fn fill(&mut self, ctx: &mut Ctx, req: &mut RcptRequest) -> &'static str {
        ctx.new_message(req);
        if self.pool.is_empty() || ctx.rng.chance(self.spec.new_fraction) {
            self.fill_new(ctx, req);
            return "new";
        }
        let len = u64::try_from(self.pool.len()).unwrap_or(u64::MAX);
        let t = &self.pool[usize::try_from(ctx.rng.below(len)).unwrap_or(0)];
        req.client_address.clone_from(&t.client_address);
        req.helo_name.clone_from(&t.helo_name);
        req.sender.clone_from(&t.sender);
        req.recipient.clone_from(&t.recipient);
        "repeat"
    }

    fn fill_new(&mut self, ctx: &mut Ctx, req: &mut RcptRequest) {
        let rng = &mut ctx.rng;
        set_ip(&mut req.client_address, self.spec.clients.pick(rng));
        let domains = &self.spec.sender_domains;
        let domain = &domains[usize::try_from(rng.below(u64::try_from(domains.len()).unwrap_or(1))).unwrap_or(0)];
        // 64 random bits in the local part, unique within a run and across seeds. As letters:
        // greylisting daemons fold digit runs (VERP), so `user123@` and `user456@` are one key.
        req.sender.clear();
        req.sender.push_str("user");
        push_letters(&mut req.sender, rng.next_u64());
        let _ = write!(req.sender, "@{domain}");
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

/// Appends `n` in base 26, `a` to `z`, most significant letter first.
fn push_letters(out: &mut String, mut n: u64) {
    let start = out.len();
    loop {
        out.insert(start, char::from(b'a' + u8::try_from(n % 26).unwrap_or(0)));
        n /= 26;
        if n == 0 {
            return;
        }
    }
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
}
