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
    health: Arc<Health>,
}

/// Failed lookups in a row (timeouts, SERVFAIL, network errors; "no records" is an answer)
/// after which the resolver counts as down. One broken domain fails a lookup or two; a run
/// of failures with no answer between them is the resolver itself.
const OUTAGE_AFTER: u32 = 5;

/// Whether the resolver answers at all, so that an outage is one warning when it starts and
/// one line when it ends, not a warning per lookup.
#[derive(Default)]
struct Health {
    /// True for a resolver whose user reports outages itself (the DNS lists, per list).
    quiet: bool,
    failed_in_a_row: std::sync::atomic::AtomicU32,
    /// When the current outage was declared; `None` while the resolver answers.
    outage: std::sync::Mutex<Option<(Instant, u64)>>,
}

impl Health {
    /// A lookup sent at `started` got an answer. One sent before the outage was declared
    /// says nothing about now (it may have been answered just before the resolver went
    /// away), so it neither ends the outage nor resets the count.
    fn answered(&self, started: Instant) {
        if self.quiet || self.failed_in_a_row.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            return;
        }
        let mut outage = self.outage.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((since, failed)) = *outage {
            if started < since {
                return;
            }
            *outage = None;
            tracing::info!(
                "DNS answering again after {}s; {failed} lookup(s) failed during the outage",
                since.elapsed().as_secs()
            );
        }
        self.failed_in_a_row.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    fn failed(&self, failure: &LookupFailure) {
        if self.quiet {
            return;
        }
        let n = self.failed_in_a_row.fetch_add(1, std::sync::atomic::Ordering::Relaxed).saturating_add(1);
        if n < OUTAGE_AFTER {
            return;
        }
        let mut outage = self.outage.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match outage.as_mut() {
            Some((_, failed)) => *failed += 1,
            None => {
                *outage = Some((Instant::now(), u64::from(n)));
                tracing::warn!(
                    "DNS not answering: {n} lookups in a row failed (last: {failure}); checks that need DNS \
                     give their temporary-error answers until it recovers"
                );
            }
        }
    }
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
        Resolver {
            inner,
            inflight: Arc::new(Group::new()),
            cache: TtlCache::new(entries).map(Arc::new),
            bounds,
            health: Arc::new(Health::default()),
        }
    }

    /// This resolver does not log outages: its user logs them in its own terms (each DNS
    /// list warns once when it stops answering), and a second warning would say the same.
    #[must_use]
    pub fn quiet_outages(mut self) -> Resolver {
        self.health = Arc::new(Health { quiet: true, ..Health::default() });
        self
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
        let health = &self.health;
        self.inflight
            .run(key.clone(), || async move {
                // Counted here, once per query sent: callers that share it are not queries.
                metrics::counter!("postward_dns_queries_total").increment(1);
                let sent = Instant::now();
                let (answer, ttl) = match inner.lookup(key.0.clone(), rtype).await {
                    Ok(lookup) => {
                        health.answered(sent);
                        let records: Arc<[RData]> = lookup.answers().iter().map(|r| r.data.clone()).collect();
                        let ttl = lookup.valid_until().saturating_duration_since(std::time::Instant::now());
                        (Ok(records), Some(ttl))
                    }
                    Err(e) => {
                        let ttl = negative_ttl(&e).map_or(DEFAULT_NEGATIVE_TTL, |s| Duration::from_secs(u64::from(s)));
                        let failure = to_failure(&e);
                        match &failure {
                            LookupFailure::NoRecords => health.answered(sent),
                            LookupFailure::Timeout => {
                                metrics::counter!("postward_dns_errors_total", "kind" => "timeout").increment(1);
                                health.failed(&failure);
                            }
                            LookupFailure::Failed(_) => {
                                metrics::counter!("postward_dns_errors_total", "kind" => "failed").increment(1);
                                health.failed(&failure);
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
    /// [`LookupFailure::Failed`] for text that cannot be a DNS name (see [`wire_name`]).
    pub async fn lookup_str(&self, name: &str, rtype: RecordType) -> Answer {
        let parsed = wire_name(name).map_err(|e| LookupFailure::Failed(format!("invalid name {name:?}: {e}")))?;
        self.lookup(parsed, rtype).await
    }
}

/// `text` as a fully qualified DNS name, label by label, octet for octet.
///
/// A DNS label may hold any octet (RFC 2181 §11), and SPF macro expansion produces names
/// with `:`, `/` or spaces in them (a local part, an address); a host-name parser would
/// refuse those and so fail a lookup that DNS can answer. No escapes are read: a `\` is
/// an octet like any other. Only the DNS limits refuse a name: an empty label inside it,
/// a label over 63 octets, a name over 255.
///
/// # Errors
/// Which limit `text` breaks.
pub fn wire_name(text: &str) -> Result<Name, String> {
    let bare = text.strip_suffix('.').unwrap_or(text);
    if bare.is_empty() {
        return Ok(Name::root());
    }
    if let Some(empty) = bare.split('.').position(str::is_empty) {
        return Err(format!("label {} is empty", empty + 1));
    }
    let mut name = Name::from_labels(bare.split('.').map(str::as_bytes)).map_err(|e| e.to_string())?;
    name.set_fqdn(true);
    Ok(name)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Octets as they are, label by label: what macro expansion makes reaches DNS.
    #[test]
    fn wire_names_keep_every_octet() {
        let name = wire_name("foo:bar/baz x.example.com.").unwrap();
        let labels: Vec<&[u8]> = name.iter().collect();
        assert_eq!(labels, [&b"foo:bar/baz x"[..], b"example", b"com"]);
        assert!(name.is_fqdn());
        assert_eq!(wire_name("example.com").unwrap(), wire_name("example.com.").unwrap());
        assert!(wire_name("a..example.com").unwrap_err().contains("label 2 is empty"));
        assert!(wire_name(&format!("{}.example.com", "x".repeat(64))).is_err());
        assert!(wire_name(".").unwrap().is_root());
    }

    fn in_outage(h: &Health) -> bool {
        h.outage.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some()
    }

    #[test]
    fn an_outage_starts_after_a_run_of_failures_and_ends_with_a_fresh_answer() {
        let h = Health::default();
        let before = Instant::now();
        for _ in 0..OUTAGE_AFTER - 1 {
            h.failed(&LookupFailure::Timeout);
        }
        assert!(!in_outage(&h), "a few failures are one broken domain, not an outage");
        h.failed(&LookupFailure::Timeout);
        assert!(in_outage(&h));
        // An answer to a query sent before the outage began does not end it.
        h.answered(before);
        assert!(in_outage(&h));
        h.answered(Instant::now());
        assert!(!in_outage(&h));
        assert_eq!(h.failed_in_a_row.load(std::sync::atomic::Ordering::Relaxed), 0);
    }

    #[test]
    fn an_answer_between_failures_resets_the_count() {
        let h = Health::default();
        for _ in 0..OUTAGE_AFTER * 3 {
            h.failed(&LookupFailure::Failed("SERVFAIL".into()));
            h.failed(&LookupFailure::Timeout);
            h.answered(Instant::now());
        }
        assert!(!in_outage(&h));
        let quiet = Health { quiet: true, ..Health::default() };
        for _ in 0..OUTAGE_AFTER * 2 {
            quiet.failed(&LookupFailure::Timeout);
        }
        assert!(!in_outage(&quiet), "a quiet resolver leaves outages to its user");
    }
}
