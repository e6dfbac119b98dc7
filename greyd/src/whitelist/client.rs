//! The client whitelist: SMTP clients that are never greylisted, by address or by name.
//!
//! Owns matching a client (`client_address`, `client_name`) against the entries; the entry
//! syntax is in `parse.rs`, file loading in `mod.rs`.
//!
//! Names are matched against Postfix's `client_name` only, the *verified* name: Postfix sets
//! it only when the PTR name of the address resolves forward to that same address, and
//! `unknown` otherwise. The `reverse_client_name` attribute is the unverified PTR name,
//! which anyone who controls the reverse zone of their addresses can set to
//! `mail.outbound.protection.outlook.com` (postgrey #67); it must never reach this list.

use std::borrow::Cow;
use std::net::IpAddr;
use std::ops::ControlFlow;

use super::Origin;
use super::lookup::{DomainSet, NetSet, RegexList, Visitor};
use super::parse::ClientEntry;

/// Postfix's `client_name` when the client has no verified name (smtpd(8), SMTPD_POLICY_README).
pub const UNKNOWN: &str = "unknown";

/// Client entries, ready for lookups.
#[derive(Debug, Default)]
pub(super) struct ClientList {
    nets: NetSet,
    names: DomainSet,
    regexes: RegexList,
    len: usize,
}

/// Collects entries until the regexes can be compiled into one set.
#[derive(Debug, Default)]
pub(super) struct ClientListBuilder {
    list: ClientList,
    regexes: Vec<(String, Origin)>,
}

impl ClientListBuilder {
    pub(super) fn add(&mut self, entry: ClientEntry, origin: Origin) {
        self.list.len += 1;
        match entry {
            ClientEntry::Net(net) => self.list.nets.insert(net, origin),
            ClientEntry::Name(scope, name) => self.list.names.insert(scope, name, origin),
            ClientEntry::Regex(pattern) => self.regexes.push((pattern, origin)),
        }
    }

    pub(super) fn build(self) -> Result<ClientList, regex::Error> {
        let mut list = self.list;
        list.regexes = RegexList::build(self.regexes)?;
        Ok(list)
    }
}

impl ClientList {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Visits the entries matching the client: networks (longest prefix first), then names
    /// (exact, then the name and its parents, longest first), then regexes in file order.
    ///
    /// `addr` is `None` when only a name is being checked (`postward-greyd check`), `name` is
    /// `client_name`: `unknown` (any case) or empty matches no name or regex entry.
    pub(super) fn visit<'a>(&'a self, addr: Option<IpAddr>, name: &str, f: &mut Visitor<'_, 'a>) -> ControlFlow<()> {
        if let Some(addr) = addr {
            self.nets.visit(addr, f)?;
        }
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() || name.eq_ignore_ascii_case(UNKNOWN) {
            return ControlFlow::Continue(());
        }
        if !self.names.is_empty() {
            self.names.visit(&lower(name), f)?;
        }
        self.regexes.visit(name, f)
    }
}

/// Lower-cases without allocating in the usual case: Postfix already reports DNS names in
/// lower case unless the PTR record itself has capitals.
fn lower(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}
