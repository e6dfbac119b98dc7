//! SPF exemptions for legitimate relays that SPF would fail. The general exemptions (SMTP
//! AUTH clients, trusted networks) apply to every check and live in the pipeline.
//!
//! - HELO names: exempt when the HELO is listed *and* resolves to the client address, so a
//!   spammer cannot claim a listed name (pypolicyd-spf's `HELO_Whitelist` rule).
//! - Forwarder domains: exempt when the forwarder's own SPF record passes the client. The
//!   sender domain is never trusted for this: anyone can put any domain in MAIL FROM.
//! - Forwarder names: exempt when the client's forward-confirmed reverse name is listed.

use std::net::IpAddr;
use std::time::Duration;

use hickory_resolver::proto::rr::{RData, RecordType};
use shared::dns::SpfLookup;
use shared::policy::PolicyRequest;
use viaspf::{Config, Sender, SpfResult, evaluate_sender};

use crate::config::SpfExemptConfig;

/// At most this many PTR names are forward-checked (RFC 7208 §4.6.4 uses the same limit).
const MAX_PTR_NAMES: usize = 10;

pub struct Exemptions {
    helo_names: Vec<String>,
    forwarder_domains: Vec<String>,
    forwarder_names: Vec<String>,
    lookup: SpfLookup,
    spf: Config,
}

impl Exemptions {
    pub fn new(config: &SpfExemptConfig, lookup: SpfLookup, limit: Duration) -> Exemptions {
        let lower = |v: &[String]| v.iter().map(|s| s.trim_end_matches('.').to_ascii_lowercase()).collect();
        Exemptions {
            helo_names: lower(&config.helo_names),
            forwarder_domains: lower(&config.forwarder_domains),
            forwarder_names: lower(&config.forwarder_names),
            lookup,
            spf: Config::builder().timeout(limit).build(),
        }
    }

    /// The reason the client is exempt, if it is.
    pub async fn exempt(&self, request: &PolicyRequest, ip: IpAddr) -> Option<String> {
        let helo = request.helo_name.trim_end_matches('.').to_ascii_lowercase();
        if !helo.is_empty() && matches_any(&helo, &self.helo_names) && self.resolves_to(&helo, ip).await {
            return Some(format!("helo-name {helo}"));
        }
        for domain in &self.forwarder_domains {
            let Ok(sender) = Sender::from_domain(domain) else { continue };
            if evaluate_sender(&self.lookup, &self.spf, ip, &sender, None).await.spf_result == SpfResult::Pass {
                return Some(format!("forwarder-spf {domain}"));
            }
        }
        if !self.forwarder_names.is_empty()
            && let Some(name) = self.validated_name(request, ip).await
            && matches_any(&name, &self.forwarder_names)
        {
            return Some(format!("forwarder-name {name}"));
        }
        None
    }

    /// Postfix's `client_name` is already forward-confirmed ("unknown" when not); when the
    /// attribute is missing (the `check` command, other clients), validate here.
    async fn validated_name(&self, request: &PolicyRequest, ip: IpAddr) -> Option<String> {
        if request.attribute("client_name").is_some() {
            let name = request.client_name.trim_end_matches('.').to_ascii_lowercase();
            return (!name.is_empty() && name != "unknown").then_some(name);
        }
        let ptr = self.lookup.0.lookup(hickory_resolver::proto::rr::Name::from(ip), RecordType::PTR).await.ok()?;
        for record in ptr.iter().take(MAX_PTR_NAMES) {
            let RData::PTR(name) = record else { continue };
            let name = name.0.to_ascii().trim_end_matches('.').to_ascii_lowercase();
            if self.resolves_to(&name, ip).await {
                return Some(name);
            }
        }
        None
    }

    async fn resolves_to(&self, name: &str, ip: IpAddr) -> bool {
        let rtype = if ip.is_ipv4() { RecordType::A } else { RecordType::AAAA };
        let Ok(records) = self.lookup.0.lookup_str(name, rtype).await else { return false };
        records.iter().any(|r| match (r, ip) {
            (RData::A(a), IpAddr::V4(v4)) => a.0 == v4,
            (RData::AAAA(a), IpAddr::V6(v6)) => a.0 == v6,
            _ => false,
        })
    }
}

/// `example.org` matches exactly; `.example.org` matches any name below it.
pub fn matches_any(name: &str, patterns: &[String]) -> bool {
    patterns.iter().any(
        |p| {
            if p.starts_with('.') { name.len() > p.len() && name.ends_with(p.as_str()) } else { name == p }
        },
    )
}
