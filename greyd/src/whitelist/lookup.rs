//! The three lookup structures every whitelist is built from: a [`NetSet`] of IP networks, a
//! [`DomainSet`] of host or domain names and a [`RegexList`] compiled into one `RegexSet`.
//!
//! They own the matching order and the "first loaded entry wins" rule for duplicates; they do
//! not know about files, entry syntax or which attribute of a request they are given (see
//! `parse.rs`, `client.rs` and `address.rs`).
//!
//! Every lookup is a `visit` that hands matching entries, most specific first, to a callback
//! that may stop early: the request path stops at the first match, `Whitelists::check` collects
//! them all, and both share one code path.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::ops::ControlFlow;

use ipnet::IpNet;
use regex::{RegexSet, RegexSetBuilder};

use super::Origin;

/// The callback of a `visit`: `Break` stops the walk.
pub(super) type Visitor<'v, 'a> = dyn FnMut(&'a Origin) -> ControlFlow<()> + 'v;

/// Keeps the first origin for a key: when two files list the same entry, the one loaded first
/// (administrator files before the built-in list) is the one `check` reports.
fn insert_first<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Origin>, key: K, origin: Origin) {
    if let Entry::Vacant(slot) = map.entry(key) {
        slot.insert(origin);
    }
}

/// IP networks, one hash map per prefix length, longest prefix first.
///
/// A lookup costs one mask and one hash probe per distinct prefix length in the list (a
/// handful in practice, at most 33 for IPv4 and 129 for IPv6), whatever the number of entries.
#[derive(Debug, Default)]
pub(super) struct NetSet {
    v4: Vec<(u8, HashMap<u32, Origin>)>,
    v6: Vec<(u8, HashMap<u128, Origin>)>,
}

impl NetSet {
    pub(super) fn insert(&mut self, net: IpNet, origin: Origin) {
        match net.trunc() {
            IpNet::V4(net) => {
                let len = net.prefix_len();
                insert_first(by_len(&mut self.v4, len), u32::from(net.network()), origin);
            }
            IpNet::V6(net) => {
                let len = net.prefix_len();
                insert_first(by_len(&mut self.v6, len), u128::from(net.network()), origin);
            }
        }
    }

    /// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, as a dual-stack listener may report it)
    /// is looked up as the IPv4 address it carries.
    pub(super) fn visit<'a>(&'a self, addr: IpAddr, f: &mut Visitor<'_, 'a>) -> ControlFlow<()> {
        match addr {
            IpAddr::V4(v4) => visit_bits(&self.v4, u32::from(v4), f),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => visit_bits(&self.v4, u32::from(v4), f),
                None => visit_bits(&self.v6, u128::from(v6), f),
            },
        }
    }
}

/// The map for prefix length `len`, created in its place so that the list stays sorted by
/// decreasing length.
fn by_len<K>(lists: &mut Vec<(u8, HashMap<K, Origin>)>, len: u8) -> &mut HashMap<K, Origin> {
    let at = match lists.binary_search_by(|(l, _)| len.cmp(l)) {
        Ok(at) => at,
        Err(at) => {
            lists.insert(at, (len, HashMap::new()));
            at
        }
    };
    &mut lists[at].1
}

/// Integers that hold an address: the mask for a prefix length.
trait AddrBits: Copy + Eq + std::hash::Hash + std::ops::BitAnd<Output = Self> {
    fn mask(len: u8) -> Self;
}

impl AddrBits for u32 {
    fn mask(len: u8) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
    }
}

impl AddrBits for u128 {
    fn mask(len: u8) -> u128 {
        u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
    }
}

fn visit_bits<'a, K: AddrBits>(
    lists: &'a [(u8, HashMap<K, Origin>)],
    addr: K,
    f: &mut Visitor<'_, 'a>,
) -> ControlFlow<()> {
    for (len, map) in lists {
        if let Some(origin) = map.get(&(addr & K::mask(*len))) {
            f(origin)?;
        }
    }
    ControlFlow::Continue(())
}

/// How a name entry matches, in the words of the whitelist syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NameScope {
    /// `=mail.example.org` (clients) or `@example.org` (addresses): that name only.
    Exact,
    /// `example.org`: the name itself and every name below it (postgrey's and Postfix's
    /// `parent_domain_matches_subdomains` reading).
    Tree,
    /// `.example.org`: names below it, not the name itself (Postfix access(5) `.domain`).
    Below,
}

/// Lower-case names (no trailing dot), matched exactly or by a walk up their parent domains.
///
/// `mail-db5eur01on2100.outbound.protection.outlook.com` costs one probe of the exact map and
/// two probes per label (tree and below maps): about a dozen hash lookups and no allocation.
#[derive(Debug, Default)]
pub(super) struct DomainSet {
    exact: HashMap<String, Origin>,
    tree: HashMap<String, Origin>,
    below: HashMap<String, Origin>,
}

impl DomainSet {
    /// `name` must already be lower case without a trailing dot (see `parse::hostname`).
    pub(super) fn insert(&mut self, scope: NameScope, name: String, origin: Origin) {
        let map = match scope {
            NameScope::Exact => &mut self.exact,
            NameScope::Tree => &mut self.tree,
            NameScope::Below => &mut self.below,
        };
        insert_first(map, name, origin);
    }

    /// Visits the exact entry first, then entries for the name and its parents, longest first.
    /// `name` must be lower case without a trailing dot.
    pub(super) fn visit<'a>(&'a self, name: &str, f: &mut Visitor<'_, 'a>) -> ControlFlow<()> {
        if name.is_empty() {
            return ControlFlow::Continue(());
        }
        if let Some(origin) = self.exact.get(name) {
            f(origin)?;
        }
        let mut suffix = name;
        let mut is_self = true;
        loop {
            if let Some(origin) = self.tree.get(suffix) {
                f(origin)?;
            }
            if !is_self && let Some(origin) = self.below.get(suffix) {
                f(origin)?;
            }
            match suffix.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => suffix = parent,
                _ => return ControlFlow::Continue(()),
            }
            is_self = false;
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.tree.is_empty() && self.below.is_empty()
    }
}

/// `/regex/` entries, matched case-insensitively through one `RegexSet` (a single pass over
/// the subject for all of them), reported in file order.
#[derive(Debug)]
pub(super) struct RegexList {
    set: RegexSet,
    origins: Vec<Origin>,
}

impl Default for RegexList {
    fn default() -> RegexList {
        RegexList { set: RegexSet::empty(), origins: Vec::new() }
    }
}

/// How deep groups and repetitions may nest in a `/regex/` entry. The regex crate's own
/// limit (250) still lets a pattern like `a****…` (hundreds of stacked repetitions) recurse
/// deep enough to overflow a 2 MiB thread stack (tokio's workers' size) while it is
/// compiled or dropped: the fuzzer found one. Whitelist patterns are flat (postgrey's
/// nest 2 or 3 deep), so 32 refuses only such constructions, with the entry's line.
pub(super) const NEST_LIMIT: u32 = 32;

impl RegexList {
    /// Compiles the patterns, each already checked on its own by `parse::regex` (so a bad one
    /// is reported with its file and line); what can still fail here is the combined size.
    pub(super) fn build(entries: Vec<(String, Origin)>) -> Result<RegexList, regex::Error> {
        if entries.is_empty() {
            return Ok(RegexList::default());
        }
        let (patterns, origins): (Vec<String>, Vec<Origin>) = entries.into_iter().unzip();
        let set = RegexSetBuilder::new(&patterns).case_insensitive(true).nest_limit(NEST_LIMIT).build()?;
        Ok(RegexList { set, origins })
    }

    pub(super) fn visit<'a>(&'a self, subject: &str, f: &mut Visitor<'_, 'a>) -> ControlFlow<()> {
        // Design note: `is_match` first, because a miss (the common case on the request path)
        // is cheaper to establish than the full list of matching patterns.
        if self.origins.is_empty() || !self.set.is_match(subject) {
            return ControlFlow::Continue(());
        }
        for index in self.set.matches(subject).iter() {
            if let Some(origin) = self.origins.get(index) {
                f(origin)?;
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(line: usize) -> Origin {
        Origin { source: "t".into(), line, text: format!("entry {line}") }
    }

    fn first_net(set: &NetSet, addr: &str) -> Option<usize> {
        let mut found = None;
        let _ = set.visit(addr.parse().unwrap(), &mut |o| {
            found = Some(o.line);
            ControlFlow::Break(())
        });
        found
    }

    #[test]
    fn nets_longest_prefix_first() {
        let mut set = NetSet::default();
        set.insert("10.0.0.0/8".parse().unwrap(), origin(1));
        set.insert("10.1.2.0/24".parse().unwrap(), origin(2));
        set.insert("10.1.2.3/16".parse().unwrap(), origin(3)); // host bits are dropped
        set.insert("0.0.0.0/0".parse().unwrap(), origin(4));
        set.insert("2001:db8::/32".parse().unwrap(), origin(5));
        set.insert("10.0.0.0/8".parse().unwrap(), origin(6)); // duplicate: first one kept
        const CASES: &[(&str, &str, Option<usize>)] = &[
            ("inside the /24", "10.1.2.200", Some(2)),
            ("inside the /16 only", "10.1.9.9", Some(3)),
            ("inside the /8 only", "10.200.0.1", Some(1)),
            ("default route", "192.0.2.1", Some(4)),
            ("mapped v4 uses the v4 table", "::ffff:10.1.2.3", Some(2)),
            ("v6 in the /32", "2001:db8:ffff::1", Some(5)),
            ("v6 outside", "2001:db9::1", None),
        ];
        for (label, addr, want) in CASES {
            assert_eq!(first_net(&set, addr), *want, "{label}");
        }
        let mut all = Vec::new();
        let _ = set.visit("10.1.2.3".parse().unwrap(), &mut |o| {
            all.push(o.line);
            ControlFlow::Continue(())
        });
        assert_eq!(all, [2, 3, 1, 4]);
    }

    #[test]
    fn masks() {
        assert_eq!(<u32 as AddrBits>::mask(0), 0);
        assert_eq!(<u32 as AddrBits>::mask(24), 0xffff_ff00);
        assert_eq!(<u32 as AddrBits>::mask(32), u32::MAX);
        assert_eq!(<u128 as AddrBits>::mask(0), 0);
        assert_eq!(<u128 as AddrBits>::mask(128), u128::MAX);
    }

    #[test]
    fn domains_walk() {
        let mut set = DomainSet::default();
        set.insert(NameScope::Tree, "example.org".into(), origin(1));
        set.insert(NameScope::Below, "example.net".into(), origin(2));
        set.insert(NameScope::Exact, "mx.example.com".into(), origin(3));
        set.insert(NameScope::Tree, "a.example.org".into(), origin(4));
        const CASES: &[(&str, &str, &[usize])] = &[
            ("tree: the domain itself", "example.org", &[1]),
            ("tree: a subdomain, most specific first", "x.a.example.org", &[4, 1]),
            ("below: not the domain itself", "example.net", &[]),
            ("below: a subdomain", "mx.example.net", &[2]),
            ("exact: the name", "mx.example.com", &[3]),
            ("exact: not below it", "a.mx.example.com", &[]),
            ("not a label boundary", "badexample.org", &[]),
            ("empty name", "", &[]),
            ("trailing dot is not stripped here", "example.org.", &[]),
        ];
        for (label, name, want) in CASES {
            let mut all = Vec::new();
            let _ = set.visit(name, &mut |o| {
                all.push(o.line);
                ControlFlow::Continue(())
            });
            assert_eq!(&all, want, "{label}");
        }
    }

    #[test]
    fn regexes_in_file_order() {
        let list =
            RegexList::build(vec![("^mx\\d+\\.".into(), origin(1)), ("example\\.org$".into(), origin(2))]).unwrap();
        let mut all = Vec::new();
        let _ = list.visit("MX12.Example.ORG", &mut |o| {
            all.push(o.line);
            ControlFlow::Continue(())
        });
        assert_eq!(all, [1, 2]);
        let empty = RegexList::default();
        assert!(empty.visit("anything", &mut |_| ControlFlow::Break(())).is_continue());
    }
}
