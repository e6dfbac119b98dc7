//! The greylisting decision, as pure functions of what was looked up and the time `now`
//! (seconds since the epoch), so every rule can be tested with a table and no clock.
//!
//! Two phases keep the request path cheap:
//! 1. [`precheck`] decides what needs no database: protocol state, SMTP AUTH, trusted
//!    networks, whitelists, and selective mode. A request it settles never touches the store.
//! 2. [`decide`] decides from the stored triplet, the auto-whitelist facts and, for a first
//!    attempt, a sender-pool partner, and says which store update follows.

use shared::policy::ProtocolState;

use crate::store::Entry;

/// Timing and auto-whitelist settings, in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// A retry passes once this long has gone by since the first attempt.
    pub delay: i64,
    /// A first attempt that is not retried within this window is forgotten.
    pub retry_window: i64,
    /// A passed triplet is forgotten this long after it was last seen.
    pub max_age: i64,
    /// Passes after which a client is whitelisted (0 = never).
    pub awl_client_passes: i64,
}

/// Why a request was let through without greylisting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Not at RCPT: only recipients are greylisted.
    NotRcpt,
    /// The client authenticated with SMTP AUTH.
    Authenticated,
    /// The client is in `trusted_networks`.
    TrustedNetwork,
    /// No client address in the request (never from Postfix; from a broken test client).
    NoClientAddress,
    /// A whitelist entry matched: which list and the entry as written.
    Whitelisted { list: &'static str, entry: String },
    /// Selective mode is on and the client does not look suspicious.
    NotSuspicious,
}

impl Skip {
    /// The `reason=` word of the log line.
    pub fn reason(&self) -> &'static str {
        match self {
            Skip::NotRcpt => "not-rcpt",
            Skip::Authenticated => "authenticated",
            Skip::TrustedNetwork => "trusted-network",
            Skip::NoClientAddress => "no-client-address",
            Skip::Whitelisted { list, .. } => list,
            Skip::NotSuspicious => "not-suspicious",
        }
    }
}

/// What [`precheck`] needs to know about a request.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    pub protocol_state: Option<ProtocolState>,
    pub authenticated: bool,
    pub has_client_address: bool,
    pub trusted_network: bool,
    /// `(list, entry)` of the first whitelist that matched, if any.
    pub whitelisted: Option<(&'static str, String)>,
    /// `None` when selective mode is off; else whether the client looks suspicious.
    pub suspicious: Option<bool>,
}

/// Phase 1: the rules that need no database, in the order they apply.
pub fn precheck(facts: &RequestFacts) -> Option<Skip> {
    if facts.protocol_state != Some(ProtocolState::Rcpt) {
        return Some(Skip::NotRcpt);
    }
    if facts.authenticated {
        return Some(Skip::Authenticated);
    }
    if !facts.has_client_address {
        return Some(Skip::NoClientAddress);
    }
    if facts.trusted_network {
        return Some(Skip::TrustedNetwork);
    }
    if let Some((list, entry)) = &facts.whitelisted {
        return Some(Skip::Whitelisted { list, entry: entry.clone() });
    }
    if facts.suspicious == Some(false) {
        return Some(Skip::NotSuspicious);
    }
    None
}

/// What was found in the store for phase 2.
#[derive(Debug, Clone, Default)]
pub struct StoredFacts {
    pub entry: Option<Entry>,
    /// Counted passes of this client address (client auto-whitelist).
    pub client_passes: i64,
    /// The sender domain is auto-whitelisted for this client network.
    pub domain_whitelisted: bool,
    /// First-seen time of an earlier attempt of the same sender and recipient from another
    /// client that the sender's SPF record authorizes as well as this one.
    pub pool_partner: Option<i64>,
}

/// The outcome of phase 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// First attempt (or the earlier one expired): defer.
    New,
    /// Retried before the delay was over: defer again, first-seen unchanged.
    TooEarly { seconds_left: i64 },
    /// Retried after the delay and within the retry window: the first pass.
    FirstPass { delayed: i64 },
    /// Passed before and seen again within `max_age`.
    Known { delayed: i64 },
    /// Another client of the sender's SPF-authorized pool made the first attempt long enough
    /// ago: this retry from a new address passes.
    PoolPass { delayed: i64 },
    /// The client is on the auto-whitelist.
    AwlClient,
    /// The sender domain is auto-whitelisted for this client network.
    AwlDomain,
    /// A first attempt from a network that holds `greylist.max_pending_per_network` pending
    /// triplets already: deferred like a new one, but not stored (not `decide`'s verdict:
    /// the service's, after it).
    PendingLimit,
}

impl Verdict {
    pub fn passes(self) -> bool {
        !matches!(self, Verdict::New | Verdict::TooEarly { .. } | Verdict::PendingLimit)
    }

    /// The `reason=` word of the log line.
    pub fn reason(self) -> &'static str {
        match self {
            Verdict::New => "new",
            Verdict::TooEarly { .. } => "early-retry",
            Verdict::FirstPass { .. } => "retry-passed",
            Verdict::Known { .. } => "known",
            Verdict::PoolPass { .. } => "sender-pool",
            Verdict::AwlClient => "awl-client",
            Verdict::AwlDomain => "awl-domain",
            Verdict::PendingLimit => "pending-limit",
        }
    }
}

/// The store write that follows a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Nothing to write (auto-whitelisted).
    None,
    /// Insert the first attempt.
    InsertFirst,
    /// The stored attempt expired: start over with this one as the first.
    Restart,
    /// Mark the first early retry.
    RecordRetry,
    /// Mark passed (first time) or refresh `last_seen`.
    RecordPass,
    /// Insert this triplet as already passed (sender pool).
    InsertPassed,
}

/// True when the stored entry is missing or expired, so a sender-pool partner is worth
/// looking for (the only case where [`StoredFacts::pool_partner`] matters).
pub fn needs_pool(now: i64, entry: Option<&Entry>, policy: &Policy) -> bool {
    match entry {
        None => true,
        Some(e) => expired(now, e, policy),
    }
}

fn expired(now: i64, e: &Entry, policy: &Policy) -> bool {
    match e.passed_at {
        Some(_) => now - e.last_seen > policy.max_age,
        None => now - e.first_seen > policy.retry_window,
    }
}

/// Phase 2.
///
/// For a triplet that is not stored, SQLite's writer applies the same rule inside its insert
/// (`store::FirstRule`): keep the two in step.
pub fn decide(now: i64, facts: &StoredFacts, policy: &Policy) -> (Verdict, Update) {
    if policy.awl_client_passes > 0 && facts.client_passes >= policy.awl_client_passes {
        return (Verdict::AwlClient, Update::None);
    }
    if facts.domain_whitelisted {
        return (Verdict::AwlDomain, Update::None);
    }
    match &facts.entry {
        Some(e) if !expired(now, e, policy) => match e.passed_at {
            Some(passed_at) => (Verdict::Known { delayed: passed_at - e.first_seen }, Update::RecordPass),
            None if now - e.first_seen < policy.delay => {
                // Only the first early retry is written: it marks the triplet as retried (for
                // `stats`); later ones would change nothing a decision reads.
                let update = if e.attempts == 0 { Update::RecordRetry } else { Update::None };
                (Verdict::TooEarly { seconds_left: policy.delay - (now - e.first_seen) }, update)
            }
            None => (Verdict::FirstPass { delayed: now - e.first_seen }, Update::RecordPass),
        },
        stale => {
            let update = if stale.is_some() { Update::Restart } else { Update::InsertFirst };
            match facts.pool_partner {
                // SPF alone never skips the first deferral: the partner's attempt must be
                // at least `delay` old, and inside the retry window.
                Some(first) if now - first >= policy.delay && now - first <= policy.retry_window => {
                    (Verdict::PoolPass { delayed: now - first }, Update::InsertPassed)
                }
                _ => (Verdict::New, update),
            }
        }
    }
}

#[cfg(test)]
mod tests;
