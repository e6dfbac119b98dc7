//! viaspf's DNS seam (`viaspf::lookup::Lookup`) over our hickory 0.26 resolver.
//!
//! viaspf's own `hickory-resolver` feature pins hickory 0.24 (RUSTSEC-2026-0119), so we adapt
//! its five lookups ourselves. The mapping follows RFC 7208: NXDOMAIN and NODATA are both
//! "no records" (each counts as a void lookup, §4.6.4); a timeout is a timeout; anything else
//! (SERVFAIL, refused, I/O) is a DNS error and ends in `temperror` (§2.6.6). Multi-string TXT
//! records are joined without a separator (§3.3), invalid UTF-8 lossily.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use async_trait::async_trait;
use hickory_resolver::proto::rr::{RData, RecordType};
use viaspf::lookup::{Lookup, LookupError, LookupResult, Name};

use super::resolver::{LookupFailure, Resolver};

/// The resolver as viaspf sees it. Cheap to clone (the resolver shares its pool).
#[derive(Clone)]
pub struct SpfLookup(pub Resolver);

impl SpfLookup {
    async fn records(&self, name: &str, rtype: RecordType) -> LookupResult<std::sync::Arc<[RData]>> {
        self.0.lookup_str(name, rtype).await.map_err(to_lookup_error)
    }
}

fn to_lookup_error(e: LookupFailure) -> LookupError {
    match e {
        LookupFailure::NoRecords => LookupError::NoRecords,
        LookupFailure::Timeout => LookupError::Timeout,
        LookupFailure::Failed(text) => LookupError::Dns(Some(text.into())),
    }
}
fn to_name(name: &hickory_resolver::proto::rr::Name) -> Option<Name> {
    Name::new(&name.to_ascii()).ok()
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
