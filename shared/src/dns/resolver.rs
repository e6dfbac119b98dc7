//! The resolver every check queries: an answer cache, in-flight sharing, then hickory.
//!
//! - The answer cache keeps what checks need (the records, or "no records") until the
//!   answer's TTL runs out (the SOA's negative TTL for "no records"). It sits in front of
//!   hickory's own cache because a hit there is cheap: one lock and a clone of an `Arc`, where
//!   a hickory lookup builds a query, a future and a fresh record list (measured on the SPF
//!   workload). Failures (timeout, SERVFAIL) are never cached.
//! - hickory caches answers only once they have arrived: fifty concurrent requests for a name
//!   that is not cached yet would send fifty queries. [`Resolver::lookup`] lets them share one
//!   (see [`crate::singleflight`]).

use std::sync::Arc;
use std::time::Duration;

use crate::singleflight::Group;
use crate::ttl_cache::TtlCache;
use hickory_resolver::TokioResolver;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use tokio::time::Instant;

/// "No records" without an SOA (no negative TTL) is kept this long.
const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(60);
/// By default no answer is kept longer than this, whatever its TTL says.
const MAX_TTL: Duration = Duration::from_secs(86_400);

/// How long cached answers live: each answer's own TTL, clamped to `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlBounds {
    /// Answers live at least this long (DNS lists publish TTLs of a few seconds to spare
    /// their servers nothing; postscreen clamps to 60 s for the same reason).
    pub min: Duration,
    pub max: Duration,
}

impl Default for TtlBounds {
    fn default() -> Self {
        TtlBounds { min: Duration::ZERO, max: MAX_TTL }
    }
}

impl TtlBounds {
    fn clamp(self, ttl: Duration) -> Duration {
        ttl.min(self.max).max(self.min)
    }
}

type Key = (Name, RecordType);

/// Why a lookup produced no records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupFailure {
    /// NXDOMAIN or NODATA: the name has no records of this type.
    #[error("no records")]
    NoRecords,
    /// No answer within the configured timeout and attempts.
    #[error("timed out")]
    Timeout,
    /// SERVFAIL, REFUSED, a network error: the answer is unknown.
    #[error("{0}")]
    Failed(String),
}

/// The records of one lookup, or why there are none.
pub type Answer = Result<Arc<[RData]>, LookupFailure>;

/// hickory's resolver with concurrent identical queries merged. Cheap to clone.
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
    inflight: Arc<Group<Key, Answer>>,
    cache: Option<Arc<TtlCache<Key, Answer>>>,
    bounds: TtlBounds,
}

impl Resolver {
    /// A resolver without an answer cache (hickory's own cache still applies).
    pub fn new(inner: TokioResolver) -> Resolver {
        Resolver::with_cache(inner, 0)
    }

    /// A resolver keeping up to `entries` answers (0: no answer cache).
    pub fn with_cache(inner: TokioResolver, entries: usize) -> Resolver {
        Resolver::with_bounds(inner, entries, TtlBounds::default())
    }

    /// A resolver keeping up to `entries` answers for their TTL clamped to `bounds`.
    pub fn with_bounds(inner: TokioResolver, entries: usize, bounds: TtlBounds) -> Resolver {
        Resolver { inner, inflight: Arc::new(Group::new()), cache: TtlCache::new(entries).map(Arc::new), bounds }
    }

    /// Looks up `name` (taken as fully qualified) and type `rtype`.
    pub async fn lookup(&self, name: Name, rtype: RecordType) -> Answer {
        let mut name = name.to_lowercase();
        name.set_fqdn(true);
        let key = (name, rtype);
        if let Some(answer) = self.cache.as_ref().and_then(|c| c.get(&key)) {
            metrics::counter!("postward_dns_cache_hits_total").increment(1);
            return answer;
        }
        let inner = &self.inner;
        let cache = &self.cache;
        let bounds = self.bounds;
        self.inflight
            .run(key.clone(), || async move {
                // Counted here, once per query sent: callers that share it are not queries.
                metrics::counter!("postward_dns_queries_total").increment(1);
                let (answer, ttl) = match inner.lookup(key.0.clone(), rtype).await {
                    Ok(lookup) => {
                        let records: Arc<[RData]> = lookup.answers().iter().map(|r| r.data.clone()).collect();
                        let ttl = lookup.valid_until().saturating_duration_since(std::time::Instant::now());
                        (Ok(records), Some(ttl))
                    }
                    Err(e) => {
                        let ttl = negative_ttl(&e).map_or(DEFAULT_NEGATIVE_TTL, |s| Duration::from_secs(u64::from(s)));
                        let failure = to_failure(&e);
                        match &failure {
                            LookupFailure::NoRecords => {}
                            LookupFailure::Timeout => {
                                metrics::counter!("postward_dns_errors_total", "kind" => "timeout").increment(1);
                            }
                            LookupFailure::Failed(_) => {
                                metrics::counter!("postward_dns_errors_total", "kind" => "failed").increment(1);
                            }
                        }
                        let ttl = (failure == LookupFailure::NoRecords).then_some(ttl);
                        (Err(failure), ttl)
                    }
                };
                let now = Instant::now();
                let expires = ttl.map(|ttl| now + bounds.clamp(ttl));
                // Stored before the in-flight entry goes, so no caller falls between the two.
                if let (Some(cache), Some(expires)) = (cache, expires)
                    && expires > now
                {
                    cache.put(key.clone(), answer.clone(), expires);
                }
                answer
            })
            .await
    }

    /// [`Resolver::lookup`] for a name given as text (`"example.org"` or `"example.org."`).
    ///
    /// # Errors
    /// [`LookupFailure::Failed`] for text that is not a domain name.
    pub async fn lookup_str(&self, name: &str, rtype: RecordType) -> Answer {
        let parsed =
            Name::from_ascii(name).map_err(|e| LookupFailure::Failed(format!("invalid name {name:?}: {e}")))?;
        self.lookup(parsed, rtype).await
    }
}

/// The text of each TXT record among `records`, its character-strings concatenated
/// (RFC 7208 §3.3 for SPF; DNS lists split long reasons the same way).
pub fn txt_texts(records: &[RData]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match r {
            RData::TXT(txt) => {
                let joined: Vec<u8> = txt.txt_data.iter().flat_map(|s| s.iter().copied()).collect();
                Some(String::from_utf8_lossy(&joined).into_owned())
            }
            _ => None,
        })
        .collect()
}

fn negative_ttl(e: &NetError) -> Option<u32> {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(NoRecords { negative_ttl, .. })) => *negative_ttl,
        _ => None,
    }
}

fn to_failure(e: &NetError) -> LookupFailure {
    if e.is_no_records_found() {
        LookupFailure::NoRecords
    } else if matches!(e, NetError::Timeout) {
        LookupFailure::Timeout
    } else {
        LookupFailure::Failed(e.to_string())
    }
}
