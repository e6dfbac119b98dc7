//! postward-policyd: DNS list scoring (a policyd-weight / `reject_rbl_client` replacement)
//! and SPF checks (a pypolicyd-spf / postfix-policyd-spf-perl replacement) speaking the
//! Postfix SMTP access policy delegation protocol, as a pipeline of checks with one answer
//! per message.
//!
//! A request's path: [`Service::decide`] → the message already decided? answer from
//! [`message`] → otherwise the general exemptions (SMTP AUTH, trusted networks) → the DNS
//! lists ([`dnsbl`]; a refusal ends the pipeline, an allowlisting may skip SPF) → [`spf`] →
//! one [`pipeline::Verdict`] → remembered per message → the answer.

pub mod check;
pub mod config;
pub mod dnsbl;
pub mod message;
pub mod pipeline;
pub mod spf;
pub mod template;

use std::net::IpAddr;
use std::sync::Arc;

pub use config::Config;
use shared::daemon::{BuildError, Daemon, serve_policy_conn, serve_policy_stdio};
use shared::policy::{Action, Decision, PolicyRequest, PolicyService, ProtocolState, ServeOptions};
use shared::server::Conn;
use shared::signals::Shutdown;
use tokio::sync::watch;

use crate::dnsbl::{DnsblCheck, DnsblReport, Outcome};
use crate::message::Messages;
use crate::pipeline::Verdict;
use crate::spf::{Disposition, HeaderWriter, SpfCheck, SpfReport};

/// The running service, rebuilt on every reload.
pub struct Service {
    config: Arc<Config>,
    dnsbl: Option<DnsblCheck>,
    spf: Option<SpfCheck>,
    headers: HeaderWriter,
    messages: Messages,
}

impl Service {
    /// Builds the service from a configuration (also used by the `check` command).
    ///
    /// # Errors
    /// The resolver cannot be built.
    pub fn new(config: Arc<Config>) -> Result<Service, BuildError> {
        let resolver = config.dns.build()?;
        let dnsbl = DnsblCheck::new(&config.dnsbl, &config.dns)?;
        let spf = config.spf.enabled.then(|| SpfCheck::new(&config.spf, resolver));
        let headers = HeaderWriter::new(config.spf.header, &config.spf.authserv_id);
        Ok(Service { config, dnsbl, spf, headers, messages: Messages::default() })
    }

    /// The DNS list check, when lists are configured (for the `check` command).
    pub fn dnsbl(&self) -> Option<&DnsblCheck> {
        self.dnsbl.as_ref()
    }

    /// The general exemptions, which skip every check.
    pub fn exempt(&self, request: &PolicyRequest, ip: IpAddr) -> Option<String> {
        let exempt = &self.config.exempt;
        if exempt.authenticated && !request.sasl_username.is_empty() {
            return Some("authenticated".into());
        }
        exempt.networks.iter().find(|n| n.contains(&ip)).map(|n| format!("network {n}"))
    }

    /// Runs the pipeline for one message. `trace` is for the `check` command.
    pub async fn evaluate(&self, request: &PolicyRequest, ip: IpAddr, trace: bool) -> (Verdict, Reports) {
        let mut reports = Reports::default();
        if let Some(why) = self.exempt(request, ip) {
            return (exempt_verdict(why), reports);
        }
        let mut verdict = Verdict::default();
        let mut skip_spf = false;
        if let Some(dnsbl) = &self.dnsbl {
            let r = dnsbl.check(request, ip, trace).await;
            verdict = verdict.then(dnsbl.verdict(&r, ip));
            skip_spf = verdict.refuse.is_some() || (r.outcome == Some(Outcome::Allowlisted) && dnsbl.allow_skips_spf());
            reports.dnsbl = Some(r);
        }
        if let Some(spf) = self.spf.as_ref().filter(|_| !skip_spf) {
            let r = spf.check(request, ip, trace).await;
            verdict = verdict.then(self.spf_verdict(&r, request, ip));
            reports.spf = Some(r);
        }
        if verdict.reason.is_empty() {
            verdict.reason =
                if reports.spf.is_some() || reports.dnsbl.is_some() { "accepted" } else { "no-checks" }.into();
        }
        (verdict, reports)
    }

    fn spf_verdict(&self, report: &SpfReport, request: &PolicyRequest, ip: IpAddr) -> Verdict {
        let (helo, mail_from, decision, cached, record_helo) = match report {
            SpfReport::Exempt(why) => return exempt_verdict(why.clone()),
            SpfReport::Checked { helo, mail_from, decision, cached, record_helo } => {
                (helo, mail_from, decision, *cached, *record_helo)
            }
        };
        let decided = mail_from.as_ref().filter(|_| decision.identity == spf::Identity::MailFrom).unwrap_or(helo);
        let mut fields = vec![("helo", helo.outcome.to_string())];
        if let Some(m) = mail_from {
            fields.push(("mailfrom", m.outcome.to_string()));
        }
        fields.push(("domain", decided.domain.clone()));
        let why = decided.why();
        if !why.is_empty() {
            fields.push(("why", why));
        }
        if decision.strict {
            fields.push(("strict", "yes".into()));
        }
        if let Some(would) = &decision.dry_run {
            fields.push(("dry_run_would", would.to_string()));
        }
        if cached > 0 {
            fields.push(("cached", cached.to_string()));
        }
        let (refuse, mut headers) = match &decision.disposition {
            Disposition::Refuse(action) => (Some(action.clone()), Vec::new()),
            Disposition::Accept { header: true } => {
                (None, self.headers.headers(decided, ip, &request.helo_name, &request.sender))
            }
            Disposition::Accept { header: false } => (None, Vec::new()),
        };
        // RFC 7208 §2.3: a HELO result that did not decide is recorded too, in a header of
        // its own after the deciding one (Postfix takes one per reply: the next recipient's
        // or the DATA-stage reply carries it), when MAIL FROM's result is recorded at all.
        if record_helo && matches!(decision.disposition, Disposition::Accept { header: true }) {
            headers.extend(self.headers.headers(helo, ip, &request.helo_name, &request.sender));
        }
        Verdict { refuse, headers, reason: format!("spf-{}-{}", decided.identity, decided.outcome), fields }
    }
}

/// What each check found, for the `check` command.
#[derive(Debug, Default)]
pub struct Reports {
    pub dnsbl: Option<DnsblReport>,
    pub spf: Option<SpfReport>,
}

fn exempt_verdict(why: String) -> Verdict {
    Verdict { reason: "exempt".into(), fields: vec![("exempt", why)], ..Verdict::default() }
}

impl PolicyService for Service {
    async fn decide(&self, request: &PolicyRequest) -> Decision {
        let Some(ip) = request.client_address else {
            return Decision::new(Action::Dunno, "no-client-address");
        };
        // The sender is known from MAIL FROM on; earlier stages have nothing to check.
        if !matches!(
            request.protocol_state,
            ProtocolState::Mail | ProtocolState::Rcpt | ProtocolState::Data | ProtocolState::EndOfMessage
        ) {
            return Decision::new(Action::Dunno, "not-applicable");
        }
        let (message, again) = match self.messages.get(&request.instance, ip) {
            Some(m) => (m, true),
            None => {
                let (verdict, _) = self.evaluate(request, ip, false).await;
                (self.messages.insert(&request.instance, ip, verdict), false)
            }
        };
        let verdict = &message.verdict;
        let mut decision = Decision::new(message.answer(&request.protocol_state), verdict.reason.clone());
        decision.fields = verdict.fields.clone();
        if again {
            decision.fields.push(("message", "seen".into()));
        }
        decision
    }
}

impl Daemon for Service {
    const NAME: &'static str = "postward-policyd";
    const DEFAULT_CONFIG: &'static str = "/etc/postward/policyd.toml";
    const DEFAULT_LISTEN: &'static str = "unix:/var/spool/postfix/private/postward-policyd";
    type Config = Config;
    const COMMANDS: &'static str = "  check --ip ADDR [--helo NAME] [--sender ADDR] [--client-name NAME] [--reverse-client-name NAME]\n\
                                    \x20                      one message through the checks: each DNS list query and SPF step, and the answer\n";

    async fn build(config: Arc<Config>) -> Result<Self, BuildError> {
        Service::new(config)
    }

    fn serve(
        service: watch::Receiver<Arc<Self>>,
        conn: Conn,
        peer: String,
        options: ServeOptions,
        shutdown: Shutdown,
    ) -> impl Future<Output = ()> + Send {
        serve_policy_conn(service, conn, peer, options, shutdown)
    }

    fn serve_stdio(
        service: watch::Receiver<Arc<Self>>,
        options: ServeOptions,
        shutdown: Shutdown,
    ) -> impl Future<Output = Result<(), String>> + Send {
        serve_policy_stdio(service, options, shutdown)
    }
}
