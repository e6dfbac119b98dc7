//! One SPF evaluation with viaspf, under RFC 7208's limits and the message's deadline, with a
//! result cache and in-flight sharing on top of the resolver's own cache.
//!
//! Two cache keys, because most domains' records use no macros:
//! - (client address, identity, domain) when no SPF or explanation record met during the
//!   evaluation held a `%`. Then the local part and the HELO cannot have mattered, and every
//!   sender of the domain shares the result: one evaluation per client and domain.
//! - (client address, identity, full identity, HELO) otherwise: everything a macro can see
//!   except the time.
//!
//! Either way a cached result is the result a new evaluation would give while the records
//! stay the same. TempError is never cached: it is a statement about now, and the next
//! attempt should ask again.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use shared::dns::SpfLookup;
use shared::logging::printable;
use shared::singleflight::Group;
use shared::ttl_cache::TtlCache;
use viaspf::lookup::{Lookup, LookupResult, Name};
use viaspf::record::Mechanism;
use viaspf::{Config, DomainName, ExplanationString, Sender, SpfResult, SpfResultCause, evaluate_sender};

use super::identity::Target;
use super::{Identity, Outcome, ResultAction};
use crate::config::SpfConfig;

/// The result of one identity, with what the header, reply and log need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub identity: Identity,
    /// The domain checked (the HELO name or the sender's domain), as received.
    pub domain: String,
    /// check_host()'s `<sender>`: `postmaster@<HELO>` for the HELO identity. Empty when the
    /// identity was not usable.
    pub sender: String,
    pub outcome: Outcome,
    /// The domain's own explanation (`exp=`) of a Fail, printable ASCII; else empty.
    pub explanation: String,
    /// The mechanism that matched (`ip4:192.0.2.0/24`, `all`, …), for pass/fail results.
    pub mechanism: Option<String>,
    /// Why an error or `none` result came about.
    pub problem: Option<String>,
    /// The domain publishes exactly `v=spf1 -all`: it sends no mail at all.
    pub no_mail: bool,
    /// viaspf's trace, when asked for (the `check` command).
    pub trace: Vec<String>,
}

impl Evaluation {
    /// The same result for another sender of the same domain (a domain-keyed cache hit).
    fn for_sender(&self, sender: &Sender) -> Evaluation {
        // Field by field: `..self.clone()` would copy the two strings replaced here.
        Evaluation {
            identity: self.identity,
            domain: sender.domain().to_string(),
            sender: sender.to_string(),
            outcome: self.outcome,
            explanation: self.explanation.clone(),
            mechanism: self.mechanism.clone(),
            problem: self.problem.clone(),
            no_mail: self.no_mail,
            trace: self.trace.clone(),
        }
    }

    /// The same result reported for another identity (the null sender reuses HELO's).
    pub fn as_identity(&self, identity: Identity) -> Evaluation {
        Evaluation { identity, trace: Vec::new(), ..self.clone() }
    }

    /// `problem`, or the matched mechanism, or the explanation: the best short "why".
    pub fn why(&self) -> String {
        self.problem
            .clone()
            .or_else(|| (!self.explanation.is_empty()).then(|| self.explanation.clone()))
            .or_else(|| self.mechanism.as_ref().map(|m| format!("matched {m}")))
            .unwrap_or_default()
    }
}

/// A cached result's key (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// The records met used no macro: (client, identity, lower-cased domain).
    Domain(IpAddr, Identity, String),
    /// (client, identity, lower-cased `<sender>`, lower-cased HELO).
    Full(IpAddr, Identity, String, String),
}

/// Evaluates identities; shared by every connection.
pub struct Evaluator {
    lookup: SpfLookup,
    max_lookups: usize,
    max_void_lookups: usize,
    hostname: String,
    /// Look up whether a failing domain publishes `v=spf1 -all` (only when some
    /// `reject-no-mail` action needs it).
    detect_no_mail: bool,
    ttl: Duration,
    cache: Option<TtlCache<Key, Arc<Evaluation>>>,
    inflight: Group<Key, Arc<Evaluation>>,
}

impl Evaluator {
    pub fn new(lookup: SpfLookup, config: &SpfConfig) -> Evaluator {
        let maps = [&config.helo, &config.mail_from];
        let detect_no_mail = maps.iter().any(|m| {
            [m.pass, m.fail, m.softfail, m.neutral, m.none, m.permerror, m.temperror]
                .contains(&ResultAction::RejectNoMail)
        });
        Evaluator {
            lookup,
            max_lookups: config.max_lookups,
            max_void_lookups: config.max_void_lookups,
            hostname: super::header::receiver_name(&config.authserv_id),
            detect_no_mail,
            ttl: config.cache_ttl.get(),
            cache: TtlCache::new(config.cache_size).filter(|_| !config.cache_ttl.get().is_zero()),
            inflight: Group::new(),
        }
    }

    /// Evaluates `target` for a client at `ip`, by `deadline`. Returns the result and
    /// whether it came from the cache. `trace` bypasses the cache and records viaspf's trace.
    pub async fn evaluate(
        &self,
        ip: IpAddr,
        target: &Target,
        helo: Option<&DomainName>,
        deadline: Instant,
        trace: bool,
    ) -> (Arc<Evaluation>, bool) {
        let (identity, sender) = match target {
            Target::Check { identity, sender } => (*identity, sender),
            Target::Skip { identity, domain, why } => {
                return (Arc::new(skipped(*identity, domain, why)), false);
            }
        };
        if trace {
            return (Arc::new(self.run(ip, identity, sender, helo, deadline, true).await.0), false);
        }
        let domain_key = Key::Domain(ip, identity, lowercase(sender.domain()));
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(&domain_key)) {
            return (Arc::new(hit.for_sender(sender)), true);
        }
        let full_key = Key::Full(ip, identity, lowercase(sender), helo.map(lowercase).unwrap_or_default());
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(&full_key)) {
            return (hit, true);
        }
        // The result goes into the cache inside the shared run, before the in-flight entry is
        // removed, so no request can fall between the two and evaluate again.
        let eval = self
            .inflight
            .run(full_key.clone(), || async {
                let (eval, used_macros) = self.run(ip, identity, sender, helo, deadline, false).await;
                let eval = Arc::new(eval);
                if eval.outcome != Outcome::Temperror
                    && let Some(cache) = &self.cache
                {
                    let key = if used_macros { full_key.clone() } else { domain_key.clone() };
                    cache.put(key, eval.clone(), tokio::time::Instant::now() + self.ttl);
                }
                eval
            })
            .await;
        // A request that shared the run may spell the sender in another case.
        if eval.sender != sender.to_string() {
            return (Arc::new(eval.for_sender(sender)), false);
        }
        (eval, false)
    }

    async fn run(
        &self,
        ip: IpAddr,
        identity: Identity,
        sender: &Sender,
        helo: Option<&DomainName>,
        deadline: Instant,
        trace: bool,
    ) -> (Evaluation, bool) {
        let domain = sender.domain().to_string();
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            let eval = Evaluation {
                identity,
                domain,
                sender: sender.to_string(),
                outcome: Outcome::Temperror,
                explanation: String::new(),
                mechanism: None,
                problem: Some("SPF time limit reached".into()),
                no_mail: false,
                trace: Vec::new(),
            };
            return (eval, true);
        }
        let config = Config::builder()
            .max_lookups(self.max_lookups)
            .max_void_lookups(self.max_void_lookups)
            .timeout(remaining)
            .hostname(self.hostname.clone())
            .capture_trace(trace)
            .build();
        let watched = Watched { inner: &self.lookup, saw_macro: AtomicBool::new(false) };
        let result = evaluate_sender(&watched, &config, ip, sender, helo).await;
        let used_macros = watched.saw_macro.load(Ordering::Relaxed);
        let (outcome, explanation) = match &result.spf_result {
            SpfResult::Pass => (Outcome::Pass, String::new()),
            SpfResult::Fail(ExplanationString::External(text)) => (Outcome::Fail, ascii(text)),
            SpfResult::Fail(ExplanationString::Default) => (Outcome::Fail, String::new()),
            SpfResult::Softfail => (Outcome::Softfail, String::new()),
            SpfResult::Neutral => (Outcome::Neutral, String::new()),
            SpfResult::None => (Outcome::None, String::new()),
            SpfResult::Permerror => (Outcome::Permerror, String::new()),
            SpfResult::Temperror => (Outcome::Temperror, String::new()),
        };
        let (mechanism, problem) = match &result.cause {
            Some(SpfResultCause::Match(m)) => (Some(m.to_string()), None),
            Some(SpfResultCause::Error(e)) => (None, Some(e.to_string())),
            None if outcome == Outcome::None => (None, Some("no SPF record".to_owned())),
            None => (None, None),
        };
        let matched_all = matches!(&result.cause, Some(SpfResultCause::Match(Mechanism::All)));
        let no_mail = outcome == Outcome::Fail && matched_all && self.detect_no_mail && self.no_mail(&domain).await;
        let trace = result.trace.map(|t| readable(&t.events)).unwrap_or_default();
        let eval = Evaluation {
            identity,
            domain,
            sender: sender.to_string(),
            outcome,
            explanation,
            mechanism,
            problem,
            no_mail,
            trace,
        };
        (eval, used_macros)
    }

    /// True when `domain`'s only SPF record is `v=spf1 -all` (pypolicyd-spf's `No_Mail`).
    async fn no_mail(&self, domain: &str) -> bool {
        let Ok(name) = Name::new(domain) else { return false };
        let Ok(records) = self.lookup.lookup_txt(&name).await else { return false };
        let spf: Vec<Vec<String>> = records
            .iter()
            .map(|r| r.split_ascii_whitespace().map(str::to_ascii_lowercase).collect::<Vec<_>>())
            .filter(|terms| terms.first().is_some_and(|v| v == "v=spf1"))
            .collect();
        matches!(spf.as_slice(), [terms] if terms.len() == 2 && terms[1] == "-all")
    }
}

/// The resolver, noting whether any TXT record met holds a `%`: a macro (RFC 7208 §7) in an
/// SPF record or an explanation, which may make the result depend on the local part, the
/// HELO or the time. Only TXT matters: macros live in records, and every other lookup is
/// about names those records (and the domain) gave.
struct Watched<'a> {
    inner: &'a SpfLookup,
    saw_macro: AtomicBool,
}

#[async_trait]
impl Lookup for Watched<'_> {
    async fn lookup_a<'lookup, 'a>(&'lookup self, name: &'a Name) -> LookupResult<Vec<Ipv4Addr>> {
        self.inner.lookup_a(name).await
    }

    async fn lookup_aaaa<'lookup, 'a>(&'lookup self, name: &'a Name) -> LookupResult<Vec<Ipv6Addr>> {
        self.inner.lookup_aaaa(name).await
    }

    async fn lookup_mx<'lookup, 'a>(&'lookup self, name: &'a Name) -> LookupResult<Vec<Name>> {
        self.inner.lookup_mx(name).await
    }

    async fn lookup_txt<'lookup, 'a>(&'lookup self, name: &'a Name) -> LookupResult<Vec<String>> {
        let texts = self.inner.lookup_txt(name).await?;
        if texts.iter().any(|t| t.contains('%')) {
            self.saw_macro.store(true, Ordering::Relaxed);
        }
        Ok(texts)
    }

    async fn lookup_ptr<'lookup>(&'lookup self, ip: IpAddr) -> LookupResult<Vec<Name>> {
        self.inner.lookup_ptr(ip).await
    }
}

fn skipped(identity: Identity, domain: &str, why: &str) -> Evaluation {
    Evaluation {
        identity,
        domain: printable(domain).into_owned(),
        sender: String::new(),
        outcome: Outcome::None,
        explanation: String::new(),
        mechanism: None,
        problem: Some(why.to_owned()),
        no_mail: false,
        trace: Vec::new(),
    }
}

/// RFC 7208 §6.2: an explanation used in a reply must be ASCII; anything else is dropped.
fn ascii(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').collect::<String>().trim().to_owned()
}

/// `value` displayed and ASCII-lower-cased, in one allocation (cache keys, per request).
fn lowercase(value: impl std::fmt::Display) -> String {
    let mut s = value.to_string();
    s.make_ascii_lowercase();
    s
}

/// viaspf's trace as the `check` command prints it: one line per step in viaspf's own words
/// (each DNS lookup, record, mechanism and result), nested queries (include, redirect)
/// indented under the query that made them, as `spfquery -v` shows them.
fn readable(events: &[viaspf::trace::TraceEvent]) -> Vec<String> {
    use viaspf::trace::Tracepoint;
    let mut depth = 0usize;
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        if matches!(event.tracepoint, Tracepoint::QueryResult(_)) {
            depth = depth.saturating_sub(1);
        }
        out.push(format!("{}{}", "  ".repeat(depth), event.tracepoint));
        if matches!(event.tracepoint, Tracepoint::ExecuteQuery(_)) {
            depth += 1;
        }
    }
    out
}
