//! From an SPF result to an answer: the per-identity action maps, strict domains, the
//! "no mail" mode, dry run, and the reply texts with RFC 7372 status codes (5.7.23 for a
//! failed check, 5.7.24 for a broken record, 4.7.24 for a temporary error).

use std::net::IpAddr;

use shared::policy::{Action, EnhancedStatus, Reply, ReplyCode};

use super::evaluate::Evaluation;
use super::reply::{Vars, expand};
use super::{Identity, Outcome, ResultAction};
use crate::config::{ActionMap, SpfConfig};

const FAILED: EnhancedStatus = EnhancedStatus::new(7, 23);
const ERROR: EnhancedStatus = EnhancedStatus::new(7, 24);

/// Accept (with or without the result header) or refuse (reject or defer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    Accept { header: bool },
    Refuse(Action),
}

/// The decision for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfDecision {
    /// The identity whose result decided.
    pub identity: Identity,
    pub outcome: Outcome,
    /// The configured action that applied (after strict-domain promotion).
    pub configured: ResultAction,
    /// Softfail or Neutral counted as Fail because the domain is in `strict_domains`.
    pub strict: bool,
    pub disposition: Disposition,
    /// In dry-run mode: the refusal that was not sent.
    pub dry_run: Option<Action>,
}

/// The configured mapping.
pub struct Rules {
    helo: ActionMap,
    mail_from: ActionMap,
    strict_domains: Vec<String>,
    dry_run: bool,
    helo_pass_decides: bool,
    reject_text: String,
    permerror_text: String,
    defer_text: String,
    why_url: String,
}

impl Rules {
    pub fn new(config: &SpfConfig) -> Rules {
        Rules {
            helo: config.helo.clone(),
            mail_from: config.mail_from.clone(),
            strict_domains: config.strict_domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            dry_run: config.dry_run,
            helo_pass_decides: config.helo_pass_decides,
            reject_text: config.reject_text.clone(),
            permerror_text: config.permerror_text.clone(),
            defer_text: config.defer_text.clone(),
            why_url: config.why_url.clone(),
        }
    }

    /// The HELO decision if the HELO result is definitive; otherwise `None` and MAIL FROM
    /// decides (RFC 7208 §2.3). Definitive: a fail (strict domains' softfail and neutral
    /// count) whose action refuses, or would in dry-run mode; and a pass when
    /// `helo_pass_decides` is on. A HELO temperror, permerror, none, neutral or softfail
    /// never ends the check, whatever its action says: a sender whose MAIL FROM passes is
    /// not deferred for its HELO name's broken DNS.
    pub fn decide_helo(&self, eval: &Evaluation, ip: IpAddr, helo: &str) -> Option<SpfDecision> {
        let d = self.decide(eval, &self.helo, ip, helo);
        let refuses = matches!(d.disposition, Disposition::Refuse(_)) || d.dry_run.is_some();
        let failed = eval.outcome == Outcome::Fail || d.strict;
        let decides = (failed && refuses) || (eval.outcome == Outcome::Pass && self.helo_pass_decides);
        decides.then_some(d)
    }

    /// Whether a HELO result that did not decide goes into a header of its own: unless its
    /// action is `ignore`.
    pub fn records_helo(&self, eval: &Evaluation, ip: IpAddr, helo: &str) -> bool {
        self.decide(eval, &self.helo, ip, helo).configured != ResultAction::Ignore
    }

    pub fn decide_mail_from(&self, eval: &Evaluation, ip: IpAddr, helo: &str) -> SpfDecision {
        self.decide(eval, &self.mail_from, ip, helo)
    }

    fn decide(&self, eval: &Evaluation, map: &ActionMap, ip: IpAddr, helo: &str) -> SpfDecision {
        let strict = matches!(eval.outcome, Outcome::Softfail | Outcome::Neutral) && self.is_strict(&eval.domain);
        let effective = if strict { Outcome::Fail } else { eval.outcome };
        let configured = match effective {
            Outcome::Pass => map.pass,
            Outcome::Fail => map.fail,
            Outcome::Softfail => map.softfail,
            Outcome::Neutral => map.neutral,
            Outcome::None => map.none,
            Outcome::Permerror => map.permerror,
            Outcome::Temperror => map.temperror,
        };
        let refuse = |temporary: bool| {
            let ip = ip.to_string();
            let explanation = if eval.explanation.is_empty() {
                eval.problem.clone().unwrap_or_default()
            } else {
                eval.explanation.clone()
            };
            let mut vars = Vars {
                result: eval.outcome.as_str(),
                identity: eval.identity.as_str(),
                domain: &eval.domain,
                sender: &eval.sender,
                ip: &ip,
                helo,
                explanation: &explanation,
                url: "",
            };
            let url = if self.why_url.is_empty() { String::new() } else { expand(&self.why_url, &vars) };
            vars.url = &url;
            if temporary {
                Action::DeferIfPermit(Reply::new(Some(ERROR), &expand(&self.defer_text, &vars)))
            } else if effective == Outcome::Permerror {
                Action::Literal(ReplyCode::PERMANENT, Reply::new(Some(ERROR), &expand(&self.permerror_text, &vars)))
            } else {
                Action::Literal(ReplyCode::PERMANENT, Reply::new(Some(FAILED), &expand(&self.reject_text, &vars)))
            }
        };
        let disposition = match configured {
            ResultAction::Reject => Disposition::Refuse(refuse(false)),
            ResultAction::RejectNoMail if eval.no_mail => Disposition::Refuse(refuse(false)),
            ResultAction::RejectNoMail | ResultAction::Header => Disposition::Accept { header: true },
            ResultAction::Defer => Disposition::Refuse(refuse(true)),
            ResultAction::Ignore => Disposition::Accept { header: false },
        };
        let (disposition, dry_run) = match disposition {
            Disposition::Refuse(action) if self.dry_run => (Disposition::Accept { header: true }, Some(action)),
            other => (other, None),
        };
        SpfDecision { identity: eval.identity, outcome: eval.outcome, configured, strict, disposition, dry_run }
    }

    /// `strict_domains` entries: `example.org` matches that domain, `.example.org` any
    /// name below it.
    fn is_strict(&self, domain: &str) -> bool {
        super::exempt::matches_any(&domain.trim_end_matches('.').to_ascii_lowercase(), &self.strict_domains)
    }
}
