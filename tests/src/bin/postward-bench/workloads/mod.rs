//! Request generators: what each connection sends, deterministic given `--seed` and the
//! connection's index. Owns the shape of a Postfix 3.7 RCPT-stage policy request and the
//! client-address ranges; does not own any I/O (see `drivers.rs`).
//!
//! Each connection has its own generator and its own random stream, so the requests of a run
//! do not depend on how the connections' tasks interleave.

mod auth;
mod dnsbl;
mod greylist;
pub mod population;
mod spf;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

pub use auth::{AuthSpec, AuthWorkload};
pub use dnsbl::DnsblSpec;
pub use greylist::{GreylistSpec, History, Mix};
pub use spf::SpfSpec;

use crate::rng::Rng;

/// The default `--clients`: RFC 2544's benchmarking range, which no real client uses.
pub const DEFAULT_CLIENTS: &str = "198.18.0.0/15";

/// Which policy workload to generate, with its options.
#[derive(Debug, Clone)]
pub enum PolicySpec {
    /// One fixed request, for the protocol floor.
    Trivial,
    Greylist(GreylistSpec),
    Spf(SpfSpec),
    Dnsbl(DnsblSpec),
}

impl PolicySpec {
    pub fn name(&self) -> &'static str {
        match self {
            PolicySpec::Trivial => "trivial",
            PolicySpec::Greylist(_) => "greylist",
            PolicySpec::Spf(_) => "spf",
            PolicySpec::Dnsbl(_) => "dnsbl",
        }
    }
}

/// Client addresses: a list of CIDR ranges. Each range is equally likely, then each address
/// inside it (so `127.0.0.2/32,192.0.2.0/24` makes half the requests come from 127.0.0.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clients(Vec<IpNet>);

impl Clients {
    /// Parses `CIDR[,CIDR…]`; a bare address means a /32 or /128.
    ///
    /// # Errors
    /// An empty list or a range that does not parse, quoted.
    pub fn parse(list: &str) -> Result<Clients, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(n) => n.trunc(),
                Err(_) => item
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| format!("invalid client range {item:?} (expected e.g. 192.0.2.0/24)"))?,
            };
            nets.push(net);
        }
        if nets.is_empty() {
            return Err(format!("no client ranges in {list:?}"));
        }
        Ok(Clients(nets))
    }

    /// A random address inside one of the ranges.
    pub fn pick(&self, rng: &mut Rng) -> IpAddr {
        let len = u64::try_from(self.0.len()).unwrap_or(u64::MAX);
        let net = self.0[usize::try_from(rng.below(len)).unwrap_or(0)];
        match net {
            IpNet::V4(n) => {
                let host_bits = 32 - u32::from(n.prefix_len());
                let offset = if host_bits == 0 { 0 } else { rng.next_u64() & ((1u64 << host_bits) - 1) };
                let offset = u32::try_from(offset).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) | offset))
            }
            IpNet::V6(n) => {
                let host_bits = 128 - u32::from(n.prefix_len());
                let random = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
                let offset = if host_bits == 0 { 0 } else { random & (u128::MAX >> (128 - host_bits)) };
                IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) | offset))
            }
        }
    }

    #[cfg(test)]
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }
}

impl Default for Clients {
    fn default() -> Self {
        Clients::parse(DEFAULT_CLIENTS).expect("the default client range parses")
    }
}

/// The values that vary in an RCPT-stage request; every other attribute has the value
/// Postfix 3.7 sends for an unauthenticated ESMTP session over TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptRequest {
    pub client_address: String,
    pub client_port: String,
    pub helo_name: String,
    pub sender: String,
    pub recipient: String,
    pub instance: String,
}

impl RcptRequest {
    /// All 29 attributes Postfix 3.7 `check_policy_service()` sends, in its order
    /// (policy-anchors §1.2), for an ESMTP session over TLS 1.3.
    pub fn attrs(&self) -> [(&str, &str); 29] {
        [
            ("request", "smtpd_access_policy"),
            ("protocol_state", "RCPT"),
            ("protocol_name", "ESMTP"),
            ("client_address", &self.client_address),
            ("client_name", "unknown"),
            ("client_port", &self.client_port),
            ("reverse_client_name", "unknown"),
            ("server_address", "192.0.2.25"),
            ("server_port", "25"),
            ("helo_name", &self.helo_name),
            ("sender", &self.sender),
            ("recipient", &self.recipient),
            ("recipient_count", "0"),
            ("queue_id", ""),
            ("instance", &self.instance),
            ("size", "0"),
            ("etrn_domain", ""),
            ("stress", ""),
            ("sasl_method", ""),
            ("sasl_username", ""),
            ("sasl_sender", ""),
            ("ccert_subject", ""),
            ("ccert_issuer", ""),
            ("ccert_fingerprint", ""),
            ("ccert_pubkey_fingerprint", ""),
            ("encryption_protocol", "TLSv1.3"),
            ("encryption_cipher", "TLS_AES_256_GCM_SHA384"),
            ("encryption_keysize", "256"),
            ("policy_context", ""),
        ]
    }
}

/// State every policy generator shares: the random stream and the per-connection counter
/// that makes `instance` values unique.
#[derive(Debug)]
pub struct Ctx {
    pub rng: Rng,
    stream: u64,
    seq: u64,
}

impl Ctx {
    /// Writes a fresh `instance` (Postfix's form is hex words joined by dots) and a new
    /// client port: a new message.
    fn new_message(&mut self, req: &mut RcptRequest) {
        self.seq += 1;
        req.instance.clear();
        let _ = write!(req.instance, "{:x}.{:x}.{:x}.0", self.stream, self.seq, self.rng.below(1 << 32));
        req.client_port.clear();
        let _ = write!(req.client_port, "{}", 1024 + self.rng.below(64_512));
    }
}

/// Appends `n` in base 26, `a` to `z`, most significant letter first.
pub(crate) fn push_letters(out: &mut String, mut n: u64) {
    let start = out.len();
    loop {
        out.insert(start, char::from(b'a' + u8::try_from(n % 26).unwrap_or(0)));
        n /= 26;
        if n == 0 {
            return;
        }
    }
}

fn set_ip(field: &mut String, ip: IpAddr) {
    field.clear();
    let _ = write!(field, "{ip}");
}

/// One connection's policy request generator.
#[derive(Debug)]
pub struct PolicyWorkload {
    ctx: Ctx,
    kind: Kind,
    req: RcptRequest,
}

#[derive(Debug)]
enum Kind {
    Trivial,
    Greylist(greylist::Greylist),
    Spf(spf::Spf),
    Dnsbl(dnsbl::Dnsbl),
}

impl PolicyWorkload {
    /// The generator of connection `index` out of `connections`.
    pub fn new(spec: &PolicySpec, seed: u64, index: usize, connections: usize) -> PolicyWorkload {
        let stream = u64::try_from(index).unwrap_or(u64::MAX);
        let ctx = Ctx { rng: Rng::new(seed, stream), stream, seq: 0 };
        let kind = match spec {
            PolicySpec::Trivial => Kind::Trivial,
            PolicySpec::Greylist(s) => Kind::Greylist(greylist::Greylist::new(s.clone(), seed, index, connections)),
            PolicySpec::Spf(s) => Kind::Spf(spf::Spf::new(s.clone())),
            PolicySpec::Dnsbl(s) => Kind::Dnsbl(dnsbl::Dnsbl::new(s.clone())),
        };
        let req = RcptRequest {
            client_address: "192.0.2.1".into(),
            client_port: "54321".into(),
            helo_name: "mail.example.org".into(),
            sender: "sender@example.org".into(),
            recipient: "rcpt@example.net".into(),
            instance: "1a2b3c.5f3e1d20.8c1f.0".into(),
        };
        PolicyWorkload { ctx, kind, req }
    }

    /// The next request, and the workload's label for it (`new`/`repeat` for greylisting,
    /// empty when the workload has no classes).
    pub fn next(&mut self) -> (&RcptRequest, &'static str) {
        let tag = match &mut self.kind {
            Kind::Trivial => "",
            Kind::Greylist(g) => g.fill(&mut self.ctx, &mut self.req),
            Kind::Spf(s) => s.fill(&mut self.ctx, &mut self.req),
            Kind::Dnsbl(d) => d.fill(&mut self.ctx, &mut self.req),
        };
        (&self.req, tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses_stay_inside_their_ranges() {
        let cases = [
            ("127.16.0.0/16", 2),
            ("192.0.2.7/32", 1),
            ("198.18.0.0/15,203.0.113.128/25", 2),
            ("2001:db8::/64", 2),
            ("2001:db8::5", 1),
            ("10.1.2.3/8", 2), // host bits are cut: 10.0.0.0/8
        ];
        for (list, min_distinct) in cases {
            let clients = Clients::parse(list).unwrap();
            let mut rng = Rng::new(3, 0);
            let mut seen = std::collections::HashSet::new();
            for _ in 0..2000 {
                let ip = clients.pick(&mut rng);
                assert!(clients.contains(&ip), "{ip} outside {list}");
                seen.insert(ip);
            }
            assert!(seen.len() >= min_distinct, "{list}: only {} distinct", seen.len());
        }
        let both = Clients::parse("127.0.0.2,192.0.2.0/24").unwrap();
        let mut rng = Rng::new(1, 0);
        let listed = (0..10_000).filter(|_| both.pick(&mut rng) == IpAddr::from([127, 0, 0, 2])).count();
        assert!((4_500..5_500).contains(&listed), "{listed}");
        for bad in ["", ",", "300.1.1.1/8", "192.0.2.0/33", "example.org"] {
            assert!(Clients::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn requests_have_postfix_shape_and_fresh_instances() {
        let mut w = PolicyWorkload::new(&PolicySpec::Dnsbl(DnsblSpec { clients: Clients::default() }), 1, 0, 1);
        let (req, _) = w.next();
        let attrs = req.attrs();
        assert_eq!(attrs[0], ("request", "smtpd_access_policy"));
        assert_eq!(attrs[1], ("protocol_state", "RCPT"));
        assert_eq!(attrs.iter().filter(|(n, _)| n.contains('=')).count(), 0);
        let first = req.instance.clone();
        let (req, _) = w.next();
        assert_ne!(req.instance, first);
        // Trivial never changes.
        let mut t = PolicyWorkload::new(&PolicySpec::Trivial, 1, 0, 1);
        let a = t.next().0.clone();
        assert_eq!(&a, t.next().0);
    }

    #[test]
    fn same_seed_same_requests() {
        let spec = PolicySpec::Greylist(GreylistSpec::default());
        let run = |seed| {
            let mut w = PolicyWorkload::new(&spec, seed, 2, 4);
            (0..50).map(|_| w.next().0.clone()).collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }
}
