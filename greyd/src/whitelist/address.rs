//! Address whitelists: the recipient list, and the opt-in sender list, which share one syntax
//! and one matcher (postgrey's `whitelist_recipients` rules).
//!
//! Owns matching an envelope address against the entries; the entry syntax is in `parse.rs`,
//! file loading and the choice of which list to ask in `mod.rs`.
//!
//! Design note: the sender list exists because admins ask for it (postgrey #56), but the
//! envelope sender is whatever the client says in `MAIL FROM`; an entry for
//! `billing@bank.example` whitelists every spammer who writes that address. It is empty
//! unless configured, and the documentation says so.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ops::ControlFlow;

use super::Origin;
use super::lookup::{DomainSet, RegexList, Visitor};
use super::parse::AddressEntry;

/// The address extension separator postgrey assumes (Postfix `recipient_delimiter = +`).
const EXTENSION: char = '+';

/// Address entries, ready for lookups.
#[derive(Debug, Default)]
pub(super) struct AddressList {
    /// `name@domain`, by domain then local part, so a lookup needs no allocation.
    addresses: HashMap<String, HashMap<String, Origin>>,
    /// `name@`.
    locals: HashMap<String, Origin>,
    /// `@domain`, `domain`, `.domain`.
    domains: DomainSet,
    regexes: RegexList,
    len: usize,
}

/// Collects entries until the regexes can be compiled into one set.
#[derive(Debug, Default)]
pub(super) struct AddressListBuilder {
    list: AddressList,
    regexes: Vec<(String, Origin)>,
}

impl AddressListBuilder {
    pub(super) fn add(&mut self, entry: AddressEntry, origin: Origin) {
        self.list.len += 1;
        match entry {
            AddressEntry::Address { local, domain } => {
                if let Entry::Vacant(slot) = self.list.addresses.entry(domain).or_default().entry(local) {
                    slot.insert(origin);
                }
            }
            AddressEntry::Local(local) => {
                if let Entry::Vacant(slot) = self.list.locals.entry(local) {
                    slot.insert(origin);
                }
            }
            AddressEntry::Domain(scope, domain) => self.list.domains.insert(scope, domain, origin),
            AddressEntry::Regex(pattern) => self.regexes.push((pattern, origin)),
        }
    }

    pub(super) fn build(self) -> Result<AddressList, regex::Error> {
        let mut list = self.list;
        list.regexes = RegexList::build(self.regexes)?;
        Ok(list)
    }
}

impl AddressList {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Visits the entries matching `address`: full addresses, local parts (each from the
    /// local part as given down to the part before its first `+`), domains (exact, then the
    /// domain and its parents), then regexes on the address as given, in file order.
    ///
    /// An address without `@` (the null sender `<>` is the empty string) can only match a
    /// regex. Angle brackets are not stripped: Postfix sends bare addresses.
    pub(super) fn visit<'a>(&'a self, address: &str, f: &mut Visitor<'_, 'a>) -> ControlFlow<()> {
        let lowered = lower(address);
        if let Some((local, domain)) = lowered.rsplit_once('@') {
            let domain = domain.strip_suffix('.').unwrap_or(domain);
            if let Some(locals) = self.addresses.get(domain) {
                for local in local_candidates(local) {
                    if let Some(origin) = locals.get(local) {
                        f(origin)?;
                    }
                }
            }
            if !self.locals.is_empty() {
                for local in local_candidates(local) {
                    if let Some(origin) = self.locals.get(local) {
                        f(origin)?;
                    }
                }
            }
            self.domains.visit(domain, f)?;
        }
        self.regexes.visit(address, f)
    }
}

/// `a+b+c` → `a+b+c`, `a+b`, `a`: postgrey matches `name@` against `name(\+[^@]+)?@`, so an
/// entry matches its local part with any extension, including one with a `+` of its own.
fn local_candidates(local: &str) -> impl Iterator<Item = &str> {
    let cuts = local.char_indices().filter(|(_, c)| *c == EXTENSION).map(|(at, _)| at).rev();
    std::iter::once(local).chain(cuts.map(move |at| &local[..at])).filter(|part| !part.is_empty())
}

fn lower(address: &str) -> Cow<'_, str> {
    if address.chars().any(char::is_uppercase) { Cow::Owned(address.to_lowercase()) } else { Cow::Borrowed(address) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_candidates() {
        const CASES: &[(&str, &str, &[&str])] = &[
            ("no extension", "abuse", &["abuse"]),
            ("one extension", "abuse+x", &["abuse+x", "abuse"]),
            ("nested extensions", "a+b+c", &["a+b+c", "a+b", "a"]),
            ("leading plus", "+x", &["+x"]),
            ("empty", "", &[]),
        ];
        for (label, local, want) in CASES {
            assert_eq!(&local_candidates(local).collect::<Vec<_>>(), want, "{label}");
        }
    }
}
