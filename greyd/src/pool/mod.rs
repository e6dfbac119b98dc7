//! Sender pools: big senders (Outlook, Gmail, SES, Mimecast…) retry from another address of
//! their pool, which plain greylisting defers again and again. A retry of the same sender and
//! recipient from a new address passes when the sender domain's SPF record authorizes both
//! the new address and the one that made the first attempt.
//!
//! SPF is evaluated with viaspf over the shared resolver; results are cached per (sender
//! domain, address) for `spf_cache_ttl`. The evaluation uses the real sender address of the
//! current request (so `%{l}` macros see it) and the cache assumes records do not depend on
//! the local part, which holds for every pool sender we know of.
//!
//! A record that passes nearly everything (`+all`, `ip4:0.0.0.0/1`) describes no pool:
//! [`width`] refuses the rule for such domains.

pub mod width;

use std::net::IpAddr;
use std::time::Duration;

use shared::dns::SpfLookup;
use shared::ttl_cache::TtlCache;
use viaspf::{Config, Sender, SpfResult, evaluate_sender};
use width::{Limits, PROBES, Wide};

/// Checks pool membership through SPF.
pub struct SpfPool {
    lookup: SpfLookup,
    config: Config,
    ttl: Duration,
    cache: Option<TtlCache<(String, IpAddr), bool>>,
    limits: Limits,
    /// Per sender domain: whether its record was found too wide to be a pool.
    wide: Option<TtlCache<String, bool>>,
}

impl SpfPool {
    pub fn new(lookup: SpfLookup, timeout: Duration, cache_size: usize, ttl: Duration, limits: Limits) -> SpfPool {
        let config = Config::builder().timeout(timeout).build();
        SpfPool {
            lookup,
            config,
            ttl,
            cache: TtlCache::new(cache_size.max(1)),
            limits,
            wide: TtlCache::new(cache_size.max(1)),
        }
    }

    /// True when `sender`'s SPF record gives `pass` for `ip`.
    pub async fn authorizes(&self, sender: &str, ip: IpAddr) -> bool {
        let Ok(parsed) = sender.parse::<Sender>() else {
            return false;
        };
        let key = (crate::triplet::sender_domain(sender), ip);
        if let Some(pass) = self.cache.as_ref().and_then(|c| c.get(&key)) {
            return pass;
        }
        let result = evaluate_sender(&self.lookup, &self.config, ip, &parsed, None).await;
        let pass = matches!(result.spf_result, SpfResult::Pass);
        tracing::debug!("sender pool: SPF for {sender} from {ip}: {}", result.spf_result);
        // Temporary errors are not cached: the next attempt asks again.
        if !matches!(result.spf_result, SpfResult::Temperror)
            && let Some(cache) = &self.cache
        {
            cache.put(key, pass, tokio::time::Instant::now() + self.ttl);
        }
        pass
    }

    /// The first-seen time of the newest earlier attempt, among `candidates` (address,
    /// first-seen), that is in the same SPF-authorized pool as `client`.
    pub async fn partner(&self, sender: &str, client: IpAddr, candidates: &[(String, i64)]) -> Option<i64> {
        if candidates.is_empty() || !self.authorizes(sender, client).await || self.too_wide(sender).await {
            return None;
        }
        for (addr, first_seen) in candidates {
            let Ok(ip) = addr.parse::<IpAddr>() else { continue };
            if self.authorizes(sender, ip).await {
                return Some(*first_seen);
            }
        }
        None
    }

    /// Whether `sender`'s domain publishes a record too wide to be a pool; logged as
    /// `pool=refused-wide` once per domain and cache lifetime.
    async fn too_wide(&self, sender: &str) -> bool {
        let domain = crate::triplet::sender_domain(sender);
        if let Some(wide) = self.wide.as_ref().and_then(|c| c.get(&domain)) {
            return wide;
        }
        let found = self.width(sender, &domain).await;
        if let Some(why) = &found {
            tracing::info!("pool=refused-wide domain={domain}: {why}; its senders are greylisted as any other");
            metrics::counter!("postward_greyd_pool_refused_wide_total").increment(1);
        }
        if let Some(cache) = &self.wide {
            cache.put(domain, found.is_some(), tokio::time::Instant::now() + self.ttl);
        }
        found.is_some()
    }

    async fn width(&self, sender: &str, domain: &str) -> Option<Wide> {
        let parsed = sender.parse::<Sender>().ok()?;
        for probe in PROBES {
            let result = evaluate_sender(&self.lookup, &self.config, probe, &parsed, None).await;
            if matches!(result.spf_result, SpfResult::Pass) {
                return Some(Wide::Probe(probe));
            }
        }
        width::authorized_space(&self.lookup, domain, self.limits).await
    }
}
