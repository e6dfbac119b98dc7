//! Whether a sender domain's SPF record describes a real pool of sending hosts.
//!
//! The pool rule passes a retry from a new address when SPF passes for it and for the first
//! attempt's address. A spammer who publishes `v=spf1 +all` (or `ip4:0.0.0.0/1`, or an
//! `exists:` that matches everything) would then be greylisted once and never again, from
//! any address. So before the rule applies, the record is checked twice:
//!
//! - **Probes**: SPF is evaluated for addresses no legitimate pool covers (documentation,
//!   benchmarking, shared and reserved space). A pass for any of them is a record that
//!   passes nearly everything, however it is written.
//! - **Size**: the address space the record authorizes with `+` (ip4, ip6, and the CIDR
//!   widths of a and mx), through literal includes and redirects, is added up; more than a
//!   configured network's worth (a /8 for IPv4, a /24 for IPv6 by default) is not a pool.
//!   The largest mail providers authorize well under a /12.
//!
//! Either finding refuses the pool rule for the domain (plain greylisting applies); the
//! verdict is cached per domain like SPF results.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use viaspf::lookup::{Lookup, Name};
use viaspf::record::{Mechanism, Modifier, Qualifier, SpfRecord, Term};

/// Addresses no legitimate sender pool includes (RFC 5737, RFC 2544, RFC 6598, RFC 1112's
/// reserved class E, RFC 3849, RFC 6666, RFC 9637).
pub const PROBES: [IpAddr; 9] = [
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(100, 64, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(240, 0, 0, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    IpAddr::V6(Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 1)),
    IpAddr::V6(Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 1)),
];

/// DNS lookups the size walk may make (RFC 7208's limit for an evaluation).
const MAX_LOOKUPS: usize = 10;

/// The widest authorized space a pool may have, as prefix lengths.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub widest_ipv4: u8,
    pub widest_ipv6: u8,
}

/// Why a record is not a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wide {
    /// SPF passes for this probe address.
    Probe(IpAddr),
    /// `+all` (or `all` without a qualifier) in the record or a literal include.
    All,
    /// More IPv4 addresses authorized than the limit allows (the count, as a prefix length).
    Ipv4Space(u8),
    /// The same for IPv6.
    Ipv6Space(u8),
}

impl std::fmt::Display for Wide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wide::Probe(ip) => write!(f, "SPF passes the probe address {ip}, which no pool covers"),
            Wide::All => f.write_str("the record passes every address (+all)"),
            Wide::Ipv4Space(p) => write!(f, "the record authorizes more IPv4 space than a /{p}"),
            Wide::Ipv6Space(p) => write!(f, "the record authorizes more IPv6 space than a /{p}"),
        }
    }
}

/// Adds up what `domain`'s record authorizes with a pass (see the module documentation).
/// Lookup failures count nothing: the probes still stand.
pub async fn authorized_space(lookup: &impl Lookup, domain: &str, limits: Limits) -> Option<Wide> {
    let (mut v4, mut v6) = (0u128, 0u128);
    let mut queue = vec![domain.trim_end_matches('.').to_ascii_lowercase()];
    let mut seen = HashSet::new();
    let mut lookups = 0;
    while let Some(name) = queue.pop() {
        if !seen.insert(name.clone()) || lookups >= MAX_LOOKUPS {
            continue;
        }
        lookups += 1;
        let Some(record) = fetch(lookup, &name).await else { continue };
        for term in &record.terms {
            match term {
                Term::Directive(d) if d.qualifier.unwrap_or_default() == Qualifier::Pass => match &d.mechanism {
                    Mechanism::All => return Some(Wide::All),
                    Mechanism::Ip4(m) => v4 = v4.saturating_add(space(32, m.prefix_len.map_or(32, |l| l.get()))),
                    Mechanism::Ip6(m) => v6 = v6.saturating_add(space(128, m.prefix_len.map_or(128, |l| l.get()))),
                    Mechanism::A(m) => add_dual(&mut v4, &mut v6, m.prefix_len),
                    Mechanism::Mx(m) => add_dual(&mut v4, &mut v6, m.prefix_len),
                    Mechanism::Include(i) => queue.extend(literal(&i.domain_spec.to_string())),
                    _ => {}
                },
                Term::Modifier(Modifier::Redirect(r)) => queue.extend(literal(&r.domain_spec.to_string())),
                _ => {}
            }
        }
    }
    if v4 > space(32, limits.widest_ipv4) {
        return Some(Wide::Ipv4Space(limits.widest_ipv4));
    }
    if v6 > space(128, limits.widest_ipv6) {
        return Some(Wide::Ipv6Space(limits.widest_ipv6));
    }
    None
}

/// The `v=spf1` record of `name`, if there is exactly one that parses.
async fn fetch(lookup: &impl Lookup, name: &str) -> Option<SpfRecord> {
    let dns_name = Name::new(name).ok()?;
    let texts = lookup.lookup_txt(&dns_name).await.ok()?;
    let mut records = texts.iter().filter(|t| {
        let t = t.to_ascii_lowercase();
        t == "v=spf1" || t.starts_with("v=spf1 ")
    });
    let (Some(one), None) = (records.next(), records.next()) else { return None };
    one.parse().ok()
}

/// A domain spec without macros, as a name to follow.
fn literal(spec: &str) -> Option<String> {
    (!spec.contains('%')).then(|| spec.trim_end_matches('.').to_ascii_lowercase())
}

/// An `a` or `mx` mechanism's CIDR widths, counted once (each of its addresses would add
/// as much again; the widths are what make a record wide).
fn add_dual(v4: &mut u128, v6: &mut u128, len: Option<viaspf::record::DualCidrLength>) {
    let l4 = len.and_then(|l| l.ip4()).map_or(32, |l| l.get());
    let l6 = len.and_then(|l| l.ip6()).map_or(128, |l| l.get());
    *v4 = v4.saturating_add(space(32, l4));
    *v6 = v6.saturating_add(space(128, l6));
}

/// Addresses in a /`prefix` of a `bits`-bit space.
fn space(bits: u32, prefix: u8) -> u128 {
    let host_bits = bits.saturating_sub(u32::from(prefix));
    1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_of_prefixes() {
        assert_eq!(space(32, 32), 1);
        assert_eq!(space(32, 8), 1 << 24);
        assert_eq!(space(32, 0), 1 << 32);
        assert_eq!(space(128, 0), u128::MAX);
        assert_eq!(space(128, 24), 1 << 104);
    }

    #[test]
    fn only_literal_names_are_followed() {
        assert_eq!(literal("_spf.Example.com."), Some("_spf.example.com".to_owned()));
        assert_eq!(literal("%{i}._spf.example.com"), None);
    }
}
