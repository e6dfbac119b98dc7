//! DNS lists (DNSBL, DNSWL, RHSBL) scored the way postscreen scores them, at the RCPT stage
//! where the reply can name the list and its reason.
//!
//! The path of one message: the lists in use (not failing their test points, see
//! [`health`]) → one query per list and distinct name ([`target`]), all at once under one
//! deadline → each answer's codes checked (blocked codes never count) against every entry
//! of that list ([`site`]) → summed weights → thresholds ([`score`]) → for a refusal, the
//! deciding list's TXT text for the reply → a [`Verdict`].

pub mod health;
pub mod score;
pub mod site;
pub mod target;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::join_all;
use hickory_resolver::proto::rr::{RData, RecordType};
use shared::daemon::BuildError;
use shared::dns::{Answer, DnsConfig, LookupFailure, Resolver, TtlBounds, txt_texts};
use shared::policy::{Action, EnhancedStatus, Header, PolicyRequest, Reply};
use tokio::task::AbortHandle;
use tokio::time::{Instant, timeout_at};

pub use health::{Code, Health};
pub use score::{Hit, Outcome, Thresholds};
pub use site::{Filter, Site};
pub use target::Target;

use crate::config::{DnsblConfig, ListSpec};
use crate::pipeline::Verdict;
use crate::template;

const PLACEHOLDERS: &[&str] = &["list", "class", "what", "reason", "score", "ip"];
/// Postfix caps `$rbl_reason` at 500 characters.
const MAX_REASON: usize = 500;
const LISTED: EnhancedStatus = EnhancedStatus::new(7, 1);
/// The TXT lookup for a refusal's reason gets at least this long (or `timeout`, if shorter),
/// even when a slow list used up the deadline: otherwise every refusal during a list outage
/// would lose its reason.
const TXT_GRACE: Duration = Duration::from_secs(1);

/// Checks that every `{…}` in a reply template is a DNSBL placeholder.
///
/// # Errors
/// The first unknown placeholder or unclosed brace.
pub fn check_template(text: &str) -> Result<(), String> {
    template::check(text, PLACEHOLDERS)
}

/// One configured entry of a zone.
#[derive(Debug)]
struct Entry {
    site: String,
    filter: Option<Filter>,
    weight: i32,
    targets: Vec<Target>,
}

/// A zone as queried: the entries that share it share its queries.
#[derive(Debug)]
pub struct Zone {
    /// The zone as shown in replies and logs.
    pub display: String,
    /// What follows the queried labels: `zone.` or `key.zone.`.
    suffix: String,
    key: Option<String>,
    entries: Vec<Entry>,
    /// Every target some entry asks about, in configuration order.
    targets: Vec<Target>,
    probe: bool,
    pub health: Health,
}

impl Zone {
    /// The name queried for `label` (the reversed address or a domain).
    fn name(&self, label: &str) -> String {
        format!("{label}.{}", self.suffix)
    }

    /// Removes the DQS key from text the list sent back.
    fn redact(&self, text: &str) -> String {
        match &self.key {
            Some(key) => replace_ignore_case(text, key, "<key>"),
            None => text.to_owned(),
        }
    }
}

fn group(lists: Vec<ListSpec>) -> Vec<Zone> {
    let mut zones: Vec<Zone> = Vec::new();
    let mut index: HashMap<(String, Option<String>), usize> = HashMap::new();
    for list in lists {
        let at = *index.entry((list.site.zone.clone(), list.dqs_key.clone())).or_insert_with(|| {
            let suffix = match &list.dqs_key {
                Some(key) => format!("{key}.{}.", list.site.zone),
                None => format!("{}.", list.site.zone),
            };
            zones.push(Zone {
                display: list.site.zone.clone(),
                suffix,
                key: list.dqs_key.clone(),
                entries: Vec::new(),
                targets: Vec::new(),
                probe: false,
                health: Health::default(),
            });
            zones.len() - 1
        });
        let zone = &mut zones[at];
        zone.probe |= list.probe;
        for t in &list.query {
            if !zone.targets.contains(t) {
                zone.targets.push(*t);
            }
        }
        zone.entries.push(Entry {
            site: list.site.to_string(),
            filter: list.site.filter,
            weight: list.site.weight,
            targets: list.query,
        });
    }
    zones
}

/// One DNS query of a message: a zone and a name, for one or more targets.
struct Query<'z> {
    zone: &'z Zone,
    label: String,
    what: String,
    targets: Vec<Target>,
}

/// Everything the check found, for the verdict, the log and the `check` command.
#[derive(Debug, Clone, Default)]
pub struct DnsblReport {
    pub score: i32,
    pub outcome: Option<Outcome>,
    pub hits: Vec<Hit>,
    /// Lists that did not answer (`list target: error`): counted as not listed.
    pub errors: Vec<String>,
    /// Lists skipped because their test points fail: (list, why).
    pub skipped: Vec<(String, String)>,
    /// The client address was not sent to the address lists: it is loopback, private or
    /// link-local and `query_private_clients` is off.
    pub private_client: bool,
    /// The deciding list's TXT text (key removed), for refusals.
    pub reason: Option<String>,
    /// One line per query, for the `check` command (empty unless asked for).
    pub trace: Vec<String>,
}

/// The configured DNS list check.
pub struct DnsblCheck {
    zones: Arc<[Zone]>,
    resolver: Resolver,
    timeout: Duration,
    thresholds: Thresholds,
    dry_run: bool,
    allow_skips_spf: bool,
    query_private_clients: bool,
    reject_text: String,
    defer_text: String,
    header_name: String,
    prober: Option<AbortHandle>,
}

impl Drop for DnsblCheck {
    fn drop(&mut self) {
        if let Some(p) = &self.prober {
            p.abort();
        }
    }
}

impl DnsblCheck {
    /// Builds the check, or `None` when no list is configured. Starts the prober, so it must
    /// be called inside a Tokio runtime.
    ///
    /// # Errors
    /// An invalid list entry (already refused by configuration validation) or resolver setup.
    pub fn new(config: &DnsblConfig, dns: &DnsConfig) -> Result<Option<DnsblCheck>, BuildError> {
        let lists = config.lists().map_err(|(key, msg)| format!("{key}: {msg}"))?;
        if lists.is_empty() {
            return Ok(None);
        }
        let bounds = TtlBounds { min: config.min_ttl.get(), max: config.max_ttl.get() };
        let resolver = dns.build_bounded(config.cache_size, bounds)?.quiet_outages();
        let zones: Arc<[Zone]> = group(lists).into();
        let timeout = config.timeout.get();
        let prober = zones.iter().any(|z| z.probe).then(|| {
            let task = prober(Arc::downgrade(&zones), resolver.clone(), timeout, config.probe_interval.get());
            tokio::spawn(task).abort_handle()
        });
        Ok(Some(DnsblCheck {
            zones,
            resolver,
            timeout,
            thresholds: Thresholds::new(config),
            dry_run: config.dry_run,
            allow_skips_spf: config.allow_skips_spf,
            query_private_clients: config.query_private_clients,
            reject_text: config.reject_text.clone(),
            defer_text: config.defer_text.clone(),
            header_name: config.header_name.clone(),
            prober,
        }))
    }

    /// The zones, for the `check` command.
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// Whether an allowlisted client skips SPF too.
    pub fn allow_skips_spf(&self) -> bool {
        self.allow_skips_spf
    }

    /// Checks every list's test points now (the prober does this periodically).
    pub async fn probe_all(&self) {
        probe_all(&self.zones, &self.resolver, self.timeout).await;
    }

    /// Queries every usable list for this message and scores the answers. `trace` fills
    /// [`DnsblReport::trace`].
    pub async fn check(&self, request: &PolicyRequest, ip: IpAddr, trace: bool) -> DnsblReport {
        let deadline = Instant::now() + self.timeout;
        let mut report = DnsblReport::default();
        let queries = self.queries(request, ip, &mut report);
        let answers = join_all(queries.iter().map(|q| {
            let name = q.zone.name(&q.label);
            async move { timeout_at(deadline, self.resolver.lookup_str(&name, RecordType::A)).await }
        }))
        .await;
        for (q, answer) in queries.iter().zip(answers) {
            let answer = answer.unwrap_or(Err(LookupFailure::Timeout));
            score_answer(q, &answer, &mut report, trace);
        }
        report.score = score::total(&report.hits);
        let outcome = self.thresholds.outcome(report.score);
        report.outcome = Some(outcome);
        if matches!(outcome, Outcome::Reject | Outcome::Defer)
            && let Some(hit) = score::deciding(&report.hits)
            && let Some(q) = queries.iter().find(|q| q.zone.display == hit.list && q.what == hit.what)
        {
            report.reason = self.reason(q, deadline).await;
        }
        report
    }

    /// One query per usable zone and distinct name.
    fn queries<'z>(&'z self, request: &PolicyRequest, ip: IpAddr, report: &mut DnsblReport) -> Vec<Query<'z>> {
        let mut queries: Vec<Query<'z>> = Vec::with_capacity(self.zones.len());
        // Each target's name, worked out once per message, not once per list.
        let mut names: Vec<(Target, Option<(String, String)>)> = Vec::new();
        let skip_client = !self.query_private_clients && !target::public(ip);
        for zone in self.zones.iter() {
            if !zone.health.usable() {
                report.skipped.push((zone.display.clone(), zone.health.broken_why()));
                continue;
            }
            for &target in &zone.targets {
                if target == Target::Client && skip_client {
                    if !report.private_client {
                        report.private_client = true;
                        metrics::counter!("postward_policyd_dnsbl_skipped_total", "reason" => "private-client")
                            .increment(1);
                    }
                    continue;
                }
                let at = match names.iter().position(|(t, _)| *t == target) {
                    Some(at) => at,
                    None => {
                        names.push((target, target.query(request, ip)));
                        names.len() - 1
                    }
                };
                let Some((label, what)) = &names[at].1 else { continue };
                match queries.iter_mut().find(|q| std::ptr::eq(q.zone, zone) && q.label == *label) {
                    Some(q) => q.targets.push(target),
                    None => {
                        queries.push(Query { zone, label: label.clone(), what: what.clone(), targets: vec![target] })
                    }
                }
            }
        }
        queries
    }

    /// The list's TXT text for a listed name, within what is left of the deadline.
    async fn reason(&self, q: &Query<'_>, deadline: Instant) -> Option<String> {
        let name = q.zone.name(&q.label);
        let deadline = deadline.max(Instant::now() + TXT_GRACE.min(self.timeout));
        let records = timeout_at(deadline, self.resolver.lookup_str(&name, RecordType::TXT)).await.ok()?.ok()?;
        let texts = txt_texts(&records);
        if texts.is_empty() {
            return None;
        }
        let mut text = q.zone.redact(&texts.join(" / "));
        if text.len() > MAX_REASON {
            let mut cut = MAX_REASON;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        Some(text)
    }

    /// The pipeline's view of a report.
    pub fn verdict(&self, report: &DnsblReport, ip: IpAddr) -> Verdict {
        let mut verdict = Verdict::default();
        let Some(outcome) = report.outcome else { return verdict };
        verdict.fields.push(("dnsbl_score", report.score.to_string()));
        if !report.hits.is_empty() {
            let listed: Vec<String> =
                report.hits.iter().map(|h| format!("{}:{}:{}", h.list, h.target, h.what)).collect();
            verdict.fields.push(("dnsbl", listed.join(",")));
        }
        if !report.errors.is_empty() {
            verdict.fields.push(("dnsbl_error", report.errors.join(",")));
        }
        let mut skipped: Vec<&str> = report.skipped.iter().map(|(list, _)| list.as_str()).collect();
        if report.private_client {
            skipped.insert(0, "private-client");
        }
        if !skipped.is_empty() {
            verdict.fields.push(("dnsbl_skipped", skipped.join(",")));
        }
        let refuse = match outcome {
            Outcome::Reject => {
                Some(Action::Reject(Reply::new(Some(LISTED), &self.reply(&self.reject_text, report, ip))))
            }
            Outcome::Defer => {
                Some(Action::DeferIfPermit(Reply::new(Some(LISTED), &self.reply(&self.defer_text, report, ip))))
            }
            _ => None,
        };
        match (refuse, self.dry_run) {
            (Some(action), false) => {
                verdict.reason = format!("dnsbl-{outcome}");
                verdict.refuse = Some(action);
                return verdict;
            }
            (Some(action), true) => verdict.fields.push(("dnsbl_dry_run_would", action.to_string())),
            (None, _) => {}
        }
        if outcome == Outcome::Allowlisted {
            verdict.reason = "dnsbl-allowlisted".into();
        }
        if outcome != Outcome::Clean
            && let Ok(header) = Header::new(&self.header_name, &header_value(report))
        {
            verdict.headers.push(header);
        }
        verdict
    }

    fn reply(&self, text: &str, report: &DnsblReport, ip: IpAddr) -> String {
        let hit = score::deciding(&report.hits);
        let reason = report.reason.as_ref().map(|r| format!("; {r}")).unwrap_or_default();
        let score = report.score.to_string();
        let ip = ip.to_string();
        let vars = [
            ("list", hit.map_or("", |h| h.list.as_str())),
            ("class", hit.map_or("", |h| h.target.class())),
            ("what", hit.map_or("", |h| h.what.as_str())),
            ("reason", reason.as_str()),
            ("score", score.as_str()),
            ("ip", ip.as_str()),
        ];
        template::expand(text, &vars)
    }
}

/// `score=3 listed=zen.example(127.0.0.2),dbl.example(127.0.1.2)`.
fn header_value(report: &DnsblReport) -> String {
    let mut value = format!("score={}", report.score);
    for (i, h) in report.hits.iter().enumerate() {
        let codes: Vec<String> = h.codes.iter().map(Ipv4Addr::to_string).collect();
        let sep = if i == 0 { " listed=" } else { "," };
        let _ = write!(value, "{sep}{}({})", h.list, codes.join(" "));
    }
    value
}

/// Adds one answer's hits (or its failure) to the report; with `trace`, a line saying so.
fn score_answer(q: &Query<'_>, answer: &Answer, report: &mut DnsblReport, trace: bool) {
    let zone = q.zone;
    let head = || {
        let targets: Vec<&str> = q.targets.iter().map(|t| t.as_str()).collect();
        format!("{} ({}) {}.{}:", zone.display, targets.join(","), q.label, zone.display)
    };
    let records = match answer {
        Ok(records) => records,
        Err(LookupFailure::NoRecords) => {
            zone.health.answered(&zone.display);
            if trace {
                report.trace.push(format!("{} not listed", head()));
            }
            return;
        }
        Err(e) => {
            zone.health.failed(&zone.display, &e.to_string());
            let word = if *e == LookupFailure::Timeout { "timeout" } else { "failed" };
            report.errors.push(format!("{}:{word}", zone.display));
            if trace {
                report.trace.push(format!("{} {e}, counted as not listed", head()));
            }
            return;
        }
    };
    zone.health.answered(&zone.display);
    let mut codes = Vec::new();
    let mut ignored = Vec::new();
    for r in records.iter() {
        if let RData::A(a) = r {
            match Code::of(a.0) {
                Code::Listed(a) => codes.push(a),
                other => {
                    zone.health.suspicious(&zone.display, other);
                    ignored.push(a.0.to_string());
                }
            }
        }
    }
    let mut line = String::new();
    if trace {
        line = head();
        for a in &codes {
            let _ = write!(line, " {a}");
        }
        if !ignored.is_empty() {
            let _ = write!(line, " (ignored, not listing codes: {})", ignored.join(" "));
        }
        if codes.is_empty() && ignored.is_empty() {
            line.push_str(" no address records");
        }
    }
    for entry in &zone.entries {
        let Some(target) = q.targets.iter().find(|t| entry.targets.contains(t)) else { continue };
        let matched: Vec<Ipv4Addr> =
            codes.iter().copied().filter(|a| entry.filter.as_ref().is_none_or(|f| f.matches(*a))).collect();
        if matched.is_empty() {
            if trace {
                let _ = write!(line, "; {} no match", entry.site);
            }
            continue;
        }
        if trace {
            let _ = write!(line, "; {} matches ({:+})", entry.site, entry.weight);
        }
        report.hits.push(Hit {
            list: zone.display.clone(),
            site: entry.site.clone(),
            target: *target,
            what: q.what.clone(),
            codes: matched,
            weight: entry.weight,
        });
    }
    if trace {
        report.trace.push(line);
    }
}

/// The periodic test-point check; ends when the check it belongs to is dropped.
async fn prober(zones: Weak<[Zone]>, resolver: Resolver, timeout: Duration, interval: Duration) {
    loop {
        let Some(live) = zones.upgrade() else { return };
        probe_all(&live, &resolver, timeout).await;
        drop(live);
        tokio::time::sleep(interval).await;
    }
}

async fn probe_all(zones: &[Zone], resolver: &Resolver, timeout: Duration) {
    let results =
        join_all(zones.iter().filter(|z| z.probe).map(|z| async move { (z, probe(z, resolver, timeout).await) })).await;
    for (zone, result) in results {
        if let Some(result) = result {
            zone.health.probed(&zone.display, result);
        }
    }
}

/// RFC 5782 §5 test points: `Some(Err(why))` when the list fails them, `None` when they
/// could not be checked (a DNS failure is an outage, not a broken list).
async fn probe(zone: &Zone, resolver: &Resolver, timeout: Duration) -> Option<Result<(), String>> {
    let mut points = Vec::new();
    if zone.targets.contains(&Target::Client) {
        points.push(("2.0.0.127", "127.0.0.2", true));
        points.push(("1.0.0.127", "127.0.0.1", false));
    }
    if zone.targets.iter().any(|t| *t != Target::Client) {
        points.push(("test", "the name test", true));
        points.push(("invalid", "the name invalid", false));
    }
    for (label, shown, must_list) in points {
        let name = zone.name(label);
        let answer = tokio::time::timeout(timeout, resolver.lookup_str(&name, RecordType::A)).await.ok()?;
        let codes: Vec<Code> = match answer {
            Ok(records) => {
                records.iter().filter_map(|r| if let RData::A(a) = r { Some(Code::of(a.0)) } else { None }).collect()
            }
            Err(LookupFailure::NoRecords) => Vec::new(),
            Err(_) => return None,
        };
        if let Some(Code::Blocked(a) | Code::Foreign(a)) = codes.iter().find(|c| !matches!(c, Code::Listed(_))) {
            return Some(Err(format!(
                "test point {shown} answered {a}: the list refuses this resolver or is not a DNS list"
            )));
        }
        let listed = codes.iter().any(|c| matches!(c, Code::Listed(_)));
        if listed != must_list {
            let why = if must_list {
                "is not listed (the zone is gone or not an RFC 5782 list)"
            } else {
                "is listed (the zone lists everything)"
            };
            return Some(Err(format!("test point {shown} {why}")));
        }
    }
    Some(Ok(()))
}

/// `text` with every ASCII-case-insensitive occurrence of `needle` replaced.
fn replace_ignore_case(text: &str, needle: &str, with: &str) -> String {
    if needle.is_empty() {
        return text.to_owned();
    }
    let lower = text.to_ascii_lowercase();
    let needle = needle.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in lower.match_indices(&needle) {
        out.push_str(&text[last..at]);
        out.push_str(with);
        last = at + needle.len();
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_redacted_whatever_their_case() {
        assert_eq!(
            replace_ignore_case("see https://x/AbC123/q abc123", "abc123", "<key>"),
            "see https://x/<key>/q <key>"
        );
        assert_eq!(replace_ignore_case("nothing here", "abc", "<key>"), "nothing here");
    }

    #[test]
    fn entries_of_one_zone_share_it() {
        let spec = |text: &str, query: Vec<Target>, key: Option<&str>| ListSpec {
            site: text.parse().unwrap(),
            query,
            dqs_key: key.map(str::to_owned),
            probe: true,
        };
        let zones = group(vec![
            spec("list.dnswl.org=127.0.[0..255].0*-2", vec![Target::Client], None),
            spec("list.dnswl.org=127.0.[0..255].[1..3]*-5", vec![Target::Client], None),
            spec("dbl.example=127.0.1.[2..99]*3", vec![Target::Sender, Target::Helo], None),
            spec("zen.dq.example=127.0.0.[2..11]*3", vec![Target::Client], Some("k3y")),
        ]);
        assert_eq!(zones.len(), 3);
        assert_eq!(zones[0].entries.len(), 2);
        assert_eq!(zones[1].targets, vec![Target::Sender, Target::Helo]);
        assert_eq!(zones[2].name("2.0.0.127"), "2.0.0.127.k3y.zen.dq.example.");
        assert_eq!(zones[2].display, "zen.dq.example");
    }
}
