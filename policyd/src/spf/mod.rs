//! SPF (RFC 7208): HELO first, then MAIL FROM, mapped to one answer per message.
//!
//! The path of one message: [`exempt`] (relays SPF would wrongly fail) → [`identity`] (what
//! to evaluate, RFC 7208 §2.3/§2.4) → [`evaluate`] (viaspf with limits, a result cache and
//! shared in-flight evaluations) → [`policy`] (result → action, per identity) → [`header`]
//! (Received-SPF / Authentication-Results).

pub mod evaluate;
pub mod exempt;
pub mod header;
pub mod identity;
pub mod policy;
pub mod reply;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use shared::dns::{Resolver, SpfLookup};
use shared::policy::PolicyRequest;

pub use evaluate::{Evaluation, Evaluator};
pub use exempt::Exemptions;
pub use header::HeaderWriter;
pub use policy::{Disposition, Rules, SpfDecision};

use crate::config::SpfConfig;

/// The identity an SPF result is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Identity {
    Helo,
    MailFrom,
}

impl Identity {
    /// The RFC 7208 §9.1 `identity=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Identity::Helo => "helo",
            Identity::MailFrom => "mailfrom",
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An SPF result (RFC 7208 §2.6), without viaspf's payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Pass,
    Fail,
    Softfail,
    Neutral,
    None,
    Permerror,
    Temperror,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Softfail => "softfail",
            Outcome::Neutral => "neutral",
            Outcome::None => "none",
            Outcome::Permerror => "permerror",
            Outcome::Temperror => "temperror",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with one SPF result of one identity (`[spf.helo]`, `[spf.mail_from]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResultAction {
    /// Reject: `550 5.7.23` (`550 5.7.24` for permerror).
    Reject,
    /// Reject only when the domain publishes exactly `v=spf1 -all` (it sends no mail at
    /// all), otherwise as `header`. Meant for `fail`.
    RejectNoMail,
    /// `DEFER_IF_PERMIT 4.7.24`: try later, unless something else rejects.
    Defer,
    /// Accept and record the result in the configured header.
    Header,
    /// Accept without a header.
    Ignore,
}

impl fmt::Display for ResultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResultAction::Reject => "reject",
            ResultAction::RejectNoMail => "reject-no-mail",
            ResultAction::Defer => "defer",
            ResultAction::Header => "header",
            ResultAction::Ignore => "ignore",
        })
    }
}

/// Which header records the result (`spf.header`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeaderKind {
    ReceivedSpf,
    AuthenticationResults,
    Both,
    None,
}

/// Everything the SPF check found for one message.
#[derive(Debug, Clone)]
pub enum SpfReport {
    /// Not evaluated, and why (`authenticated`, `helo-name mx.partner.example`, …).
    Exempt(String),
    Checked {
        helo: Arc<Evaluation>,
        /// `None` when the HELO result already decided (RFC 7208 §2.3).
        mail_from: Option<Arc<Evaluation>>,
        decision: SpfDecision,
        /// MAIL FROM decided, but HELO was checked on its own and its action records it:
        /// its header goes out too, after MAIL FROM's.
        record_helo: bool,
        /// Results taken from the cache, of those evaluated.
        cached: usize,
    },
}

/// The SPF check of the policy pipeline.
pub struct SpfCheck {
    evaluator: Evaluator,
    exemptions: Exemptions,
    rules: Rules,
    time_limit: Duration,
}

impl SpfCheck {
    pub fn new(config: &SpfConfig, resolver: Resolver) -> SpfCheck {
        let lookup = SpfLookup(resolver.clone());
        SpfCheck {
            evaluator: Evaluator::new(lookup.clone(), config),
            exemptions: Exemptions::new(&config.exempt, lookup, config.time_limit.get()),
            rules: Rules::new(config),
            time_limit: config.time_limit.get(),
        }
    }

    /// Checks one message. `trace` records viaspf's trace (for the `check` command) and
    /// bypasses the cache.
    pub async fn check(&self, request: &PolicyRequest, ip: IpAddr, trace: bool) -> SpfReport {
        // The time limit covers the exemption lookups too, so the answer comes within it.
        let deadline = Instant::now() + self.time_limit;
        let exempt = tokio::time::timeout_at(deadline.into(), self.exemptions.exempt(request, ip)).await;
        if let Ok(Some(reason)) = exempt {
            return SpfReport::Exempt(reason);
        }
        let ids = identity::Identities::from_request(&request.helo_name, &request.sender);
        let (helo, helo_cached) =
            self.evaluator.evaluate(ip, &ids.helo, ids.helo_domain.as_ref(), deadline, trace).await;
        let mut cached = usize::from(helo_cached);
        if let Some(decision) = self.rules.decide_helo(&helo, ip, &request.helo_name) {
            return SpfReport::Checked { helo, mail_from: None, decision, cached, record_helo: false };
        }
        // The null sender's MAIL FROM identity is postmaster@HELO: the very same check_host()
        // as the HELO one (RFC 7208 §2.4), so its result is reused.
        let mail_from = if ids.mail_from_is_helo {
            Arc::new(helo.as_identity(Identity::MailFrom))
        } else {
            let (eval, hit) =
                self.evaluator.evaluate(ip, &ids.mail_from, ids.helo_domain.as_ref(), deadline, trace).await;
            cached += usize::from(hit);
            eval
        };
        let decision = self.rules.decide_mail_from(&mail_from, ip, &request.helo_name);
        let record_helo = !ids.mail_from_is_helo
            && matches!(ids.helo, identity::Target::Check { .. })
            && self.rules.records_helo(&helo, ip, &request.helo_name);
        SpfReport::Checked { helo, mail_from: Some(mail_from), decision, cached, record_helo }
    }
}
