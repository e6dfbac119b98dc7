//! viaspf's DNS seam (`viaspf::lookup::Lookup`) over our hickory 0.26 resolver.
//!
//! viaspf's own `hickory-resolver` feature pins hickory 0.24 (RUSTSEC-2026-0119), so we adapt
//! its five lookups ourselves. The mapping follows RFC 7208: NXDOMAIN and NODATA are both
//! "no records" (each counts as a void lookup, §4.6.4); a timeout is a timeout; anything else
//! (SERVFAIL, refused, I/O) is a DNS error and ends in `temperror` (§2.6.6). Multi-string TXT
//! records are joined without a separator (§3.3), invalid UTF-8 lossily. Names are queried
//! octet for octet, as macro expansion made them (RFC 2181 §11).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use async_trait::async_trait;
use hickory_resolver::proto::rr::{RData, RecordType};
use viaspf::lookup::{Lookup, LookupError, LookupResult, Name};

use super::resolver::{LookupFailure, Resolver, wire_name};

/// The resolver as viaspf sees it. Cheap to clone (the resolver shares its pool).
#[derive(Clone)]
pub struct SpfLookup(pub Resolver);

impl SpfLookup {
    /// The records of `name`, queried octet for octet ([`wire_name`]). A name that DNS cannot
    /// hold is not a DNS error (which would end in temperror and defer the mail for ever):
    /// no such name can exist, so it has no records, and the log says why.
    async fn records(&self, name: &str, rtype: RecordType) -> LookupResult<std::sync::Arc<[RData]>> {
        match wire_name(name) {
            Ok(wire) => self.0.lookup(wire, rtype).await.map_err(to_lookup_error),
            Err(why) => {
                tracing::info!("spf: {rtype} lookup of {name:?} not sent: not a DNS name ({why}); taken as no records");
                Err(LookupError::NoRecords)
            }
        }
    }
}

fn to_lookup_error(e: LookupFailure) -> LookupError {
    match e {
        LookupFailure::NoRecords => LookupError::NoRecords,
        LookupFailure::Timeout => LookupError::Timeout,
        LookupFailure::Failed(text) => LookupError::Dns(Some(text.into())),
    }
}

/// An MX or PTR target as viaspf sees it: its labels' octets as they are, not the escaped
/// presentation form (`foo:bar`, not `foo\058bar`), so a later query sends the same name.
fn to_name(name: &hickory_resolver::proto::rr::Name) -> Option<Name> {
    let labels: Vec<String> = name.iter().map(|label| String::from_utf8_lossy(label).into_owned()).collect();
    Name::new(&labels.join(".")).ok()
}

#[async_trait]
impl Lookup for SpfLookup {
    async fn lookup_a<'lookup, 'a>(&'lookup self, name: &'a Name) -> LookupResult<Vec<Ipv4Addr>> {
        let records = self.records(name.as_str(), RecordType::A).await?;
        Ok(records.iter().filter_map(|r| if let RData::A(a) = r { Some(a.0) } else { None }).collect())
    }

    async fn lookup_aaaa<'lookup, 'a>(&'lookup self, name: &'a Name) -> LookupResult<Vec<Ipv6Addr>> {
        let records = self.records(name.as_str(), RecordType::AAAA).await?;
        Ok(records.iter().filter_map(|r| if let RData::AAAA(a) = r { Some(a.0) } else { None }).collect())
    }

    async fn lookup_mx<'lookup, 'a>(&'lookup self, name: &'a Name) -> LookupResult<Vec<Name>> {
        let records = self.records(name.as_str(), RecordType::MX).await?;
        let mut mx: Vec<(u16, Name)> =
            records
                .iter()
                .filter_map(|r| {
                    if let RData::MX(mx) = r { to_name(&mx.exchange).map(|n| (mx.preference, n)) } else { None }
                })
                .collect();
        mx.sort_by_key(|(pref, _)| *pref);
        Ok(mx.into_iter().map(|(_, n)| n).collect())
    }

    async fn lookup_txt<'lookup, 'a>(&'lookup self, name: &'a Name) -> LookupResult<Vec<String>> {
        let records = self.records(name.as_str(), RecordType::TXT).await?;
        Ok(super::txt_texts(&records))
    }

    async fn lookup_ptr<'lookup>(&'lookup self, ip: IpAddr) -> LookupResult<Vec<Name>> {
        let reverse = hickory_resolver::proto::rr::Name::from(ip);
        let records = self.0.lookup(reverse, RecordType::PTR).await.map_err(to_lookup_error)?;
        Ok(records.iter().filter_map(|r| if let RData::PTR(p) = r { to_name(&p.0) } else { None }).collect())
    }
}
