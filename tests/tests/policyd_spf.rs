#![allow(clippy::unwrap_used)]
//! policyd's SPF engine in-process (`policyd::Service`) against the in-process DNS fixture:
//! every RFC 7208 result per identity, the mechanisms, macros and limits, the identities of
//! the null sender and of HELO, the exemptions, the once-per-message headers, the time limit,
//! the result cache with in-flight sharing, and the configurable actions and texts.
//!
//! Requests are built as Postfix sends them and answered through `PolicyService::decide`, so
//! each test asserts the exact action line Postfix would receive; `Service::evaluate` gives
//! the per-identity results behind it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use policyd::config::SpfConfig;
use policyd::spf::{Evaluation, HeaderKind, Identity, Outcome, ResultAction, SpfDecision, SpfReport};
use policyd::{Config, Service};
use postward_tests::dns::{DnsFixture, DnsFixtureBuilder, RecordType};
use postward_tests::request::{Req, answer, decide, field};
use shared::duration::ConfigDuration;
use shared::policy::Decision;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The usual client: inside 192.0.2.0/24, which `pass.example.test` authorizes.
const CLIENT: &str = "192.0.2.10";
/// The usual HELO: `v=spf1 ?all`, neutral for everyone, so MAIL FROM decides.
const HELO: &str = "mta.client.test";
/// `receiver=` and authserv-id of every header.
const AUTHSERV: &str = "mx.test";

/// The DNS data most tests share. Tests that need faults on their own names add them to
/// [`zones`] before starting.
fn zones() -> DnsFixtureBuilder {
    let zones = DnsFixture::builder()
        .zone("example.test")
        .zone("client.test")
        .txt(HELO, "v=spf1 ?all")
        // One record per result.
        .txt("pass.example.test", "v=spf1 ip4:192.0.2.0/24 -all")
        .txt("fail.example.test", "v=spf1 ip4:198.51.100.1 -all")
        .txt("nomail.example.test", "v=spf1 -all")
        .txt("softfail.example.test", "v=spf1 ip4:198.51.100.1 ~all")
        .txt("neutral.example.test", "v=spf1 ip4:198.51.100.1 ?all")
        .txt("none.example.test", "google-site-verification=abc")
        .a("none.example.test", "198.51.100.2")
        .txt("syntax.example.test", "v=spf1 ip4:bad -all")
        .txt("two.example.test", "v=spf1 ip4:192.0.2.0/24 -all")
        .txt("two.example.test", "v=spf1 -all")
        .txt("explained.example.test", "v=spf1 -all exp=exp.example.test")
        .txt("exp.example.test", "%{i} is not a mail server of %{d}")
        .servfail("broken.example.test")
        .txt("slowmech.example.test", "v=spf1 a:x.slow.example.test -all")
        // include and redirect chains.
        .txt("inc.example.test", "v=spf1 include:inc1.example.test -all")
        .txt("inc1.example.test", "v=spf1 include:inc2.example.test ~all")
        .txt("inc2.example.test", "v=spf1 ip4:203.0.113.0/24 -all")
        .txt("incnone.example.test", "v=spf1 include:norecord.example.test -all")
        .a("norecord.example.test", "198.51.100.3")
        .txt("redir.example.test", "v=spf1 redirect=redir2.example.test")
        .txt("redir2.example.test", "v=spf1 ip4:198.51.100.0/24 redirect=nomail.example.test")
        .txt("redirnone.example.test", "v=spf1 redirect=norecord.example.test")
        // Mechanisms.
        .txt("a.example.test", "v=spf1 a a:host.example.test -all")
        .a("a.example.test", "192.0.2.20")
        .a("host.example.test", "198.51.100.20")
        .aaaa("host.example.test", "2001:db8::20")
        .txt("mxmech.example.test", "v=spf1 mx -all")
        .mx("mxmech.example.test", 10, "mx1.example.test")
        .mx("mxmech.example.test", 20, "mx2.example.test")
        .a("mx1.example.test", "198.51.100.24")
        .a("mx2.example.test", "198.51.100.25")
        .txt("ptr.example.test", "v=spf1 ptr -all")
        .ptr_for("203.0.113.50", "mail.ptr.example.test")
        .a("mail.ptr.example.test", "203.0.113.50")
        .ptr_for("203.0.113.51", "forged.ptr.example.test")
        .a("forged.ptr.example.test", "203.0.113.99")
        .txt("exists.example.test", "v=spf1 exists:%{i}.allow.example.test -all")
        .a("192.0.2.30.allow.example.test", "192.0.2.127")
        .txt("lp.example.test", "v=spf1 exists:%{l}.users.example.test -all")
        .a("alice.users.example.test", "192.0.2.127")
        .txt("dmacro.example.test", "v=spf1 include:_spf.%{d} -all")
        .txt("_spf.dmacro.example.test", "v=spf1 ip4:198.51.100.40 -all")
        .txt("hmacro.example.test", "v=spf1 exists:%{h}.helos.example.test -all")
        .a("mta.client.test.helos.example.test", "192.0.2.127")
        .txt("v6.example.test", "v=spf1 ip6:2001:db8:1::/48 -all")
        // Limits: 11 DNS-querying terms (RFC 7208 §4.6.4 allows 10), then exactly 10.
        .txt("limit.example.test", &lookup_terms(11))
        .txt("limit10.example.test", &lookup_terms(10))
        .txt("inc0.example.test", "v=spf1 -all")
        .txt("void.example.test", "v=spf1 a:n1.example.test a:n2.example.test a:n3.example.test -all")
        .txt("void2.example.test", "v=spf1 a:n1.example.test a:n2.example.test -all")
        // HELO names.
        .txt("mx.example.test", "v=spf1 ip4:192.0.2.0/24 -all")
        .txt("badhelo.example.test", "v=spf1 -all")
        .servfail("brokenhelo.example.test")
        .txt("softhelo.example.test", "v=spf1 ~all")
        // A record that authorizes the whole IPv4 and IPv6 address space.
        .txt("everyone.example.test", "v=spf1 ip4:0.0.0.0/0 ip6:::/0 -all")
        // Exemptions.
        .a("relay.example.test", "203.0.113.20")
        .txt("fwd.example.test", "v=spf1 ip4:203.0.113.0/28 -all")
        .ptr_for("203.0.113.60", "out2.relays.example.test")
        .a("out2.relays.example.test", "203.0.113.60")
        .ptr_for("203.0.113.61", "out3.relays.example.test")
        .a("out3.relays.example.test", "203.0.113.99");
    // The `a:` targets of `lookup_terms`.
    (0..12)
        .fold(zones, |b, i| b.a(&format!("h{i}.lim.example.test"), "198.51.100.61"))
        .a("last.lim.example.test", "198.51.100.60")
}

/// `v=spf1` with `n` terms that each cost one DNS lookup: `n - 1` that do not match
/// (includes of a `-all` record, `a:` names of another host), then `a:last.lim.example.test`
/// (198.51.100.60), then `-all`.
fn lookup_terms(n: usize) -> String {
    let mut terms = vec!["v=spf1".to_owned()];
    for i in 0..n - 1 {
        terms.push(if i % 2 == 0 {
            "include:inc0.example.test".to_owned()
        } else {
            format!("a:h{i}.lim.example.test")
        });
    }
    terms.push("a:last.lim.example.test -all".to_owned());
    terms.join(" ")
}

async fn fixture() -> DnsFixture {
    zones().start().await.unwrap()
}

/// The configuration every test starts from: only the fixture's DNS, a fixed authserv-id.
fn config(dns: &DnsFixture) -> Config {
    Config {
        dns: dns.dns_config(),
        spf: SpfConfig { authserv_id: AUTHSERV.into(), time_limit: ConfigDuration::secs(5), ..SpfConfig::default() },
        ..Config::default()
    }
}

fn service(config: Config) -> Service {
    Service::new(Arc::new(config)).unwrap()
}

fn req(ip: &str, helo: &str, sender: &str) -> Req {
    Req::rcpt(ip, helo, sender)
}

/// The usual client and HELO with `sender`.
fn from(sender: &str) -> Req {
    req(CLIENT, HELO, sender)
}

/// What the SPF check found for one message, per identity.
struct Checked {
    helo: Arc<Evaluation>,
    mail_from: Option<Arc<Evaluation>>,
    decision: SpfDecision,
    cached: usize,
}

impl Checked {
    fn mail_from(&self) -> &Evaluation {
        self.mail_from.as_deref().expect("MAIL FROM was evaluated")
    }
}

async fn check(svc: &Service, r: &Req) -> Checked {
    let request = r.build();
    let ip = request.client_address.unwrap();
    let (_, reports) = svc.evaluate(&request, ip, false).await;
    match reports.spf {
        Some(SpfReport::Checked { helo, mail_from, decision, cached, .. }) => {
            Checked { helo, mail_from, decision, cached }
        }
        other => panic!("expected an SPF result, got {other:?}"),
    }
}

/// The MAIL FROM result for `sender` from `ip` (usual HELO): outcome, mechanism, problem.
async fn mail_from_result(svc: &Service, ip: &str, sender: &str) -> (Outcome, Option<String>, Option<String>) {
    let c = check(svc, &req(ip, HELO, sender)).await;
    let m = c.mail_from();
    (m.outcome, m.mechanism.clone(), m.problem.clone())
}

/// `PREPEND Received-SPF: …` for a MAIL FROM result of the usual client and HELO.
fn received_spf(result_and_comment: &str, sender: &str, tail: &str) -> String {
    format!(
        "PREPEND Received-SPF: {result_and_comment} client-ip={CLIENT}; envelope-from=\"{sender}\"; helo={HELO}; \
         receiver={AUTHSERV}; identity=mailfrom;{tail}"
    )
}

fn reject_line(result: &str, domain: &str, ip: &str, identity: &str) -> String {
    format!("550 5.7.23 SPF {result}: {domain} does not allow {ip} to send mail ({identity}).")
}

// ---------------------------------------------------------------------------------------
// 1. Every result for MAIL FROM (RFC 7208 §2.6), and the default answer for each (§8)
// ---------------------------------------------------------------------------------------

/// §2.6.3 pass: an `ip4` match; the default action only records it in Received-SPF (§9.1).
#[tokio::test]
async fn pass_by_ip4_adds_received_spf() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let c = check(&svc, &from("a@pass.example.test")).await;
    assert_eq!(c.helo.outcome, Outcome::Neutral);
    assert_eq!(c.mail_from().outcome, Outcome::Pass);
    assert_eq!(c.mail_from().mechanism.as_deref(), Some("ip4:192.0.2.0/24"));
    assert_eq!(c.mail_from().sender, "a@pass.example.test");
    assert_eq!(c.decision.identity, Identity::MailFrom);

    let d = decide(&svc, &from("a@pass.example.test")).await;
    assert_eq!(
        d.action.to_string(),
        received_spf(
            "pass (mx.test: domain of a@pass.example.test designates 192.0.2.10 as permitted sender)",
            "a@pass.example.test",
            " mechanism=\"ip4:192.0.2.0/24\";"
        )
    );
    assert_eq!(d.reason, "spf-mailfrom-pass");
    assert_eq!(field(&d, "helo"), Some("neutral"));
    assert_eq!(field(&d, "mailfrom"), Some("pass"));
    assert_eq!(field(&d, "domain"), Some("pass.example.test"));
    assert_eq!(field(&d, "why"), Some("matched ip4:192.0.2.0/24"));
}

/// §2.6.4 fail (`-all`): rejected with 550 5.7.23 (RFC 7372 §3.2) by default.
#[tokio::test]
async fn fail_is_rejected_with_5_7_23() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let (outcome, mechanism, _) = mail_from_result(&svc, CLIENT, "a@fail.example.test").await;
    assert_eq!((outcome, mechanism.as_deref()), (Outcome::Fail, Some("all")));
    let d = decide(&svc, &from("a@fail.example.test")).await;
    assert_eq!(d.action.to_string(), reject_line("fail", "fail.example.test", CLIENT, "mailfrom"));
    assert_eq!(d.reason, "spf-mailfrom-fail");
    assert_eq!(field(&d, "why"), Some("matched all"));
}

/// §2.6.5 softfail (`~all`): accepted, recorded as softfail.
#[tokio::test]
async fn softfail_adds_header() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    assert_eq!(
        answer(&svc, &from("a@softfail.example.test")).await,
        received_spf(
            "softfail (mx.test: transitioning domain of a@softfail.example.test does not designate 192.0.2.10 as \
             permitted sender)",
            "a@softfail.example.test",
            " mechanism=\"all\";"
        )
    );
}

/// §2.6.2 neutral (`?all`): accepted, recorded as neutral.
#[tokio::test]
async fn neutral_adds_header() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    assert_eq!(
        answer(&svc, &from("a@neutral.example.test")).await,
        received_spf(
            "neutral (mx.test: 192.0.2.10 is neither permitted nor denied by domain of a@neutral.example.test)",
            "a@neutral.example.test",
            " mechanism=\"all\";"
        )
    );
}

/// §4.5 / §2.6.1 none: TXT records that are not SPF, and a name without any record.
#[tokio::test]
async fn no_spf_record_is_none() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    for sender in ["a@none.example.test", "a@absent.example.test", "a@host.example.test"] {
        let (outcome, mechanism, problem) = mail_from_result(&svc, CLIENT, sender).await;
        assert_eq!((outcome, mechanism, problem.as_deref()), (Outcome::None, None, Some("no SPF record")), "{sender}");
    }
    assert_eq!(
        answer(&svc, &from("a@none.example.test")).await,
        received_spf("none (mx.test: no SPF record for a@none.example.test)", "a@none.example.test", "")
    );
}

/// §4.6 permerror: a record that does not parse, and two SPF records (§4.5); by default
/// only recorded, with `problem=` (§9.1).
#[tokio::test]
async fn permerror_syntax_and_two_records() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let (outcome, _, problem) = mail_from_result(&svc, CLIENT, "a@syntax.example.test").await;
    assert_eq!((outcome, problem.as_deref()), (Outcome::Permerror, Some("invalid SPF record found")));
    let (outcome, _, problem) = mail_from_result(&svc, CLIENT, "a@two.example.test").await;
    assert_eq!((outcome, problem.as_deref()), (Outcome::Permerror, Some("more than one SPF record found")));

    let d = decide(&svc, &from("a@syntax.example.test")).await;
    assert_eq!(
        d.action.to_string(),
        received_spf(
            "permerror (mx.test: permanent error in processing domain of a@syntax.example.test: invalid SPF \
             record found)",
            "a@syntax.example.test",
            " problem=\"invalid SPF record found\";"
        )
    );
    assert_eq!(field(&d, "why"), Some("invalid SPF record found"));
}

/// §2.6.7 temperror from a DNS timeout: DEFER_IF_PERMIT 4.7.24 (RFC 7372 §3.2). viaspf
/// reports an unanswered SPF record query as a failed lookup, an unanswered mechanism
/// lookup as a timeout.
#[tokio::test]
async fn temperror_by_timeout_defers() {
    let dns = zones().timeout("slow.example.test").start().await.unwrap();
    let svc = service(config(&dns));
    let d = decide(&svc, &from("a@slow.example.test")).await;
    assert_eq!(
        d.action.to_string(),
        "DEFER_IF_PERMIT 4.7.24 SPF temperror: cannot check slow.example.test now (DNS lookup failed), try again later"
    );
    assert_eq!(d.reason, "spf-mailfrom-temperror");
    assert!(dns.queries_for("slow.example.test", RecordType::TXT) >= 1);
    let c = check(&svc, &from("a@slowmech.example.test")).await;
    assert_eq!(
        (c.mail_from().outcome, c.mail_from().problem.as_deref()),
        (Outcome::Temperror, Some("DNS lookup timed out"))
    );
    assert!(dns.queries_for("x.slow.example.test", RecordType::A) >= 1);
}

/// §2.6.7 temperror from SERVFAIL: DEFER_IF_PERMIT 4.7.24.
#[tokio::test]
async fn temperror_by_servfail_defers() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let (outcome, _, problem) = mail_from_result(&svc, CLIENT, "a@broken.example.test").await;
    assert_eq!((outcome, problem.as_deref()), (Outcome::Temperror, Some("DNS lookup failed")));
    assert_eq!(
        answer(&svc, &from("a@broken.example.test")).await,
        "DEFER_IF_PERMIT 4.7.24 SPF temperror: cannot check broken.example.test now (DNS lookup failed), try again later"
    );
}

// ---------------------------------------------------------------------------------------
// 2. include and redirect (RFC 7208 §5.2, §6.1)
// ---------------------------------------------------------------------------------------

/// §5.2: a nested include passes when the innermost record passes; an include whose record
/// gives softfail does not match, so the outer `-all` decides.
#[tokio::test]
async fn nested_include() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let (outcome, mechanism, _) = mail_from_result(&svc, "203.0.113.5", "a@inc.example.test").await;
    assert_eq!((outcome, mechanism.as_deref()), (Outcome::Pass, Some("include:inc1.example.test")));
    let (outcome, mechanism, _) = mail_from_result(&svc, CLIENT, "a@inc.example.test").await;
    assert_eq!((outcome, mechanism.as_deref()), (Outcome::Fail, Some("all")));
    assert_eq!(
        answer(&svc, &from("a@inc.example.test")).await,
        reject_line("fail", "inc.example.test", CLIENT, "mailfrom")
    );
}

/// §5.2: include of a domain without an SPF record is permerror.
#[tokio::test]
async fn include_without_record_is_permerror() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let (outcome, _, problem) = mail_from_result(&svc, CLIENT, "a@incnone.example.test").await;
    assert_eq!((outcome, problem.as_deref()), (Outcome::Permerror, Some("no SPF record found at included domain")));
}

/// §6.1: redirect chains; the result is the target's (pass in the middle of the chain,
/// `-all` at its end); a redirect to a domain without a record is permerror.
#[tokio::test]
async fn redirect_chain() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let (outcome, mechanism, _) = mail_from_result(&svc, "198.51.100.7", "a@redir.example.test").await;
    assert_eq!((outcome, mechanism.as_deref()), (Outcome::Pass, Some("ip4:198.51.100.0/24")));
    let (outcome, mechanism, _) = mail_from_result(&svc, CLIENT, "a@redir.example.test").await;
    assert_eq!((outcome, mechanism.as_deref()), (Outcome::Fail, Some("all")));
    // The reply names the domain of the MAIL FROM identity, not the redirect target.
    assert_eq!(
        answer(&svc, &from("a@redir.example.test")).await,
        reject_line("fail", "redir.example.test", CLIENT, "mailfrom")
    );
    let (outcome, _, _) = mail_from_result(&svc, CLIENT, "a@redirnone.example.test").await;
    assert_eq!(outcome, Outcome::Permerror);
}

// ---------------------------------------------------------------------------------------
// 3. Mechanisms (§5), macros (§7), IPv6 and IPv4-mapped clients
// ---------------------------------------------------------------------------------------

/// §5.3 `a` (own name and `a:<domain>`, A and AAAA) and §5.4 `mx` (every exchange).
#[tokio::test]
async fn a_and_mx_mechanisms() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let cases: &[(&str, &str, Outcome, Option<&str>)] = &[
        ("192.0.2.20", "a@a.example.test", Outcome::Pass, Some("a")),
        ("198.51.100.20", "a@a.example.test", Outcome::Pass, Some("a:host.example.test")),
        ("2001:db8::20", "a@a.example.test", Outcome::Pass, Some("a:host.example.test")),
        ("2001:db8::21", "a@a.example.test", Outcome::Fail, Some("all")),
        ("192.0.2.21", "a@a.example.test", Outcome::Fail, Some("all")),
        ("198.51.100.24", "a@mxmech.example.test", Outcome::Pass, Some("mx")),
        ("198.51.100.25", "a@mxmech.example.test", Outcome::Pass, Some("mx")),
        ("198.51.100.26", "a@mxmech.example.test", Outcome::Fail, Some("all")),
    ];
    for (client, sender, outcome, mechanism) in cases {
        let got = mail_from_result(&svc, client, sender).await;
        assert_eq!((got.0, got.1.as_deref()), (*outcome, *mechanism), "{client} {sender}");
    }
}

/// §5.5 `ptr`: the PTR name must be forward-confirmed (its A record is the client).
#[tokio::test]
async fn ptr_mechanism_needs_forward_confirmation() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let (outcome, mechanism, _) = mail_from_result(&svc, "203.0.113.50", "a@ptr.example.test").await;
    assert_eq!((outcome, mechanism.as_deref()), (Outcome::Pass, Some("ptr")));
    // The PTR points to a name whose A record is another host.
    let (outcome, mechanism, _) = mail_from_result(&svc, "203.0.113.51", "a@ptr.example.test").await;
    assert_eq!((outcome, mechanism.as_deref()), (Outcome::Fail, Some("all")));
    // No PTR record at all.
    let (outcome, _, _) = mail_from_result(&svc, "203.0.113.52", "a@ptr.example.test").await;
    assert_eq!(outcome, Outcome::Fail);
}

/// §5.7 `exists` with the §7.3 `%{i}` macro, `%{l}` (local part), `%{d}` (domain) and
/// `%{h}` (HELO) macros.
#[tokio::test]
async fn exists_and_macros() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let cases: &[(&str, &str, Outcome, Option<&str>)] = &[
        ("192.0.2.30", "a@exists.example.test", Outcome::Pass, Some("exists:%{i}.allow.example.test")),
        ("192.0.2.31", "a@exists.example.test", Outcome::Fail, Some("all")),
        (CLIENT, "alice@lp.example.test", Outcome::Pass, Some("exists:%{l}.users.example.test")),
        (CLIENT, "bob@lp.example.test", Outcome::Fail, Some("all")),
        ("198.51.100.40", "a@dmacro.example.test", Outcome::Pass, Some("include:_spf.%{d}")),
        ("198.51.100.41", "a@dmacro.example.test", Outcome::Fail, Some("all")),
        (CLIENT, "a@hmacro.example.test", Outcome::Pass, Some("exists:%{h}.helos.example.test")),
    ];
    for (client, sender, outcome, mechanism) in cases {
        let got = mail_from_result(&svc, client, sender).await;
        assert_eq!((got.0, got.1.as_deref()), (*outcome, *mechanism), "{client} {sender}");
    }
    assert_eq!(dns.queries_for("192.0.2.30.allow.example.test", RecordType::A), 1);
    assert_eq!(dns.queries_for("alice.users.example.test", RecordType::A), 1);
    assert_eq!(dns.queries_for("bob.users.example.test", RecordType::A), 1);
    // %{h} with another HELO expands to another name, which does not exist.
    let c = check(&svc, &req(CLIENT, "other.client.test", "a@hmacro.example.test")).await;
    assert_eq!(c.mail_from().outcome, Outcome::Fail);
    assert_eq!(dns.queries_for("other.client.test.helos.example.test", RecordType::A), 1);
}

/// §5.6 `ip6` for an IPv6 client, and the headers name the IPv6 client address.
#[tokio::test]
async fn ipv6_client() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let (outcome, mechanism, _) = mail_from_result(&svc, "2001:db8:1::5", "a@v6.example.test").await;
    assert_eq!((outcome, mechanism.as_deref()), (Outcome::Pass, Some("ip6:2001:db8:1::/48")));
    let (outcome, _, _) = mail_from_result(&svc, "2001:db8:2::5", "a@v6.example.test").await;
    assert_eq!(outcome, Outcome::Fail);
    // An ip4-only record never matches an IPv6 client.
    let (outcome, _, _) = mail_from_result(&svc, "2001:db8:1::5", "a@pass.example.test").await;
    assert_eq!(outcome, Outcome::Fail);
    assert_eq!(
        answer(&svc, &req("2001:db8:2::5", HELO, "a@v6.example.test")).await,
        reject_line("fail", "v6.example.test", "2001:db8:2::5", "mailfrom")
    );
    let line = answer(&svc, &req("2001:db8:1::5", HELO, "a@v6.example.test")).await;
    assert!(line.starts_with("PREPEND Received-SPF: pass (mx.test: domain of a@v6.example.test designates 2001:db8:1::5 as permitted sender) client-ip=2001:db8:1::5;"), "{line}");
}

/// §5.6: an IPv4-mapped IPv6 client (`::ffff:192.0.2.10`) is the IPv4 client: `ip4:` matches
/// and every text shows the IPv4 form.
#[tokio::test]
async fn ipv4_mapped_client_is_ipv4() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let mapped = req("::ffff:192.0.2.10", HELO, "a@pass.example.test");
    let c = check(&svc, &mapped).await;
    assert_eq!(c.mail_from().outcome, Outcome::Pass);
    assert_eq!(c.mail_from().mechanism.as_deref(), Some("ip4:192.0.2.0/24"));
    assert_eq!(
        answer(&svc, &mapped).await,
        received_spf(
            "pass (mx.test: domain of a@pass.example.test designates 192.0.2.10 as permitted sender)",
            "a@pass.example.test",
            " mechanism=\"ip4:192.0.2.0/24\";"
        )
    );
    assert_eq!(
        answer(&svc, &req("::ffff:192.0.2.10", HELO, "a@fail.example.test")).await,
        reject_line("fail", "fail.example.test", CLIENT, "mailfrom")
    );
}

// ---------------------------------------------------------------------------------------
// 4. Processing limits (RFC 7208 §4.6.4)
// ---------------------------------------------------------------------------------------

/// §4.6.4: at most 10 DNS-querying terms; the 11th is permerror. Exactly 10 is fine.
#[tokio::test]
async fn lookup_limit() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let (outcome, _, problem) = mail_from_result(&svc, "198.51.100.60", "a@limit.example.test").await;
    assert_eq!(outcome, Outcome::Permerror);
    assert_eq!(problem.as_deref(), Some("lookup limit exceeded"));
    // The 11th term's name was never looked up.
    assert_eq!(dns.queries_for("last.lim.example.test", RecordType::A), 0);
    let (outcome, mechanism, _) = mail_from_result(&svc, "198.51.100.60", "a@limit10.example.test").await;
    assert_eq!((outcome, mechanism.as_deref()), (Outcome::Pass, Some("a:last.lim.example.test")));
}

/// §4.6.4: more than 2 void lookups (NXDOMAIN or no data) is permerror; 2 are fine.
#[tokio::test]
async fn void_lookup_limit() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let (outcome, _, problem) = mail_from_result(&svc, CLIENT, "a@void.example.test").await;
    assert_eq!((outcome, problem.as_deref()), (Outcome::Permerror, Some("void lookup limit exceeded")));
    let (outcome, mechanism, _) = mail_from_result(&svc, CLIENT, "a@void2.example.test").await;
    assert_eq!((outcome, mechanism.as_deref()), (Outcome::Fail, Some("all")));
}

/// `max_lookups` and `max_void_lookups` are configurable.
#[tokio::test]
async fn limits_are_configurable() {
    let dns = fixture().await;
    let mut cfg = config(&dns);
    cfg.spf.max_lookups = 2;
    let svc = service(cfg);
    let (outcome, _, problem) = mail_from_result(&svc, "198.51.100.60", "a@limit10.example.test").await;
    assert_eq!((outcome, problem.as_deref()), (Outcome::Permerror, Some("lookup limit exceeded")));
    let mut cfg = config(&dns);
    cfg.spf.max_void_lookups = 3;
    let svc = service(cfg);
    let (outcome, mechanism, _) = mail_from_result(&svc, CLIENT, "a@void.example.test").await;
    assert_eq!((outcome, mechanism.as_deref()), (Outcome::Fail, Some("all")));
}

// ---------------------------------------------------------------------------------------
// 5. The null sender and unusable HELO names (RFC 7208 §2.3, §2.4)
// ---------------------------------------------------------------------------------------

/// §2.4: the null sender's MAIL FROM identity is postmaster@<HELO>; it is the same
/// check_host() as the HELO check, so the HELO's record is fetched once.
#[tokio::test]
async fn null_sender_uses_postmaster_at_helo() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let r = req(CLIENT, "mx.example.test", "");
    let c = check(&svc, &r).await;
    assert_eq!(c.helo.outcome, Outcome::Pass);
    assert_eq!(c.helo.sender, "postmaster@mx.example.test");
    let m = c.mail_from();
    assert_eq!((m.identity, m.outcome), (Identity::MailFrom, Outcome::Pass));
    assert_eq!(m.sender, "postmaster@mx.example.test");
    assert_eq!(m.domain, "mx.example.test");
    assert_eq!(dns.queries_for("mx.example.test", RecordType::TXT), 1);

    assert_eq!(
        answer(&svc, &req(CLIENT, "mx.example.test", "")).await,
        "PREPEND Received-SPF: pass (mx.test: domain of postmaster@mx.example.test designates 192.0.2.10 as \
         permitted sender) client-ip=192.0.2.10; envelope-from=\"postmaster@mx.example.test\"; helo=mx.example.test; \
         receiver=mx.test; identity=mailfrom; mechanism=\"ip4:192.0.2.0/24\";"
    );
    // A failing HELO with the null sender is rejected on the HELO identity.
    assert_eq!(
        answer(&svc, &req("203.0.113.9", "mx.example.test", "")).await,
        reject_line("fail", "mx.example.test", "203.0.113.9", "helo")
    );
}

/// §2.3/§2.4: without a fully qualified HELO the null sender has no identity to check:
/// none for both, no DNS query, no crash.
#[tokio::test]
async fn null_sender_with_unusable_helo_is_none() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    for (helo, helo_problem, helo_in_header) in [
        ("localhost", "HELO name is not a fully qualified domain name", "localhost"),
        ("[192.0.2.1]", "HELO is an address literal", "\"[192.0.2.1]\""),
        ("", "no HELO name", ""),
        ("192.0.2.1", "HELO name is not a fully qualified domain name", "192.0.2.1"),
    ] {
        let c = check(&svc, &req(CLIENT, helo, "")).await;
        assert_eq!((c.helo.outcome, c.helo.problem.as_deref()), (Outcome::None, Some(helo_problem)), "{helo}");
        let m = c.mail_from();
        assert_eq!(
            (m.outcome, m.problem.as_deref()),
            (Outcome::None, Some("null sender without a usable HELO name")),
            "{helo}"
        );
        let helo_part = if helo_in_header.is_empty() { String::new() } else { format!(" helo={helo_in_header};") };
        let who = if helo.is_empty() { "(unnamed)" } else { helo };
        assert_eq!(
            answer(&svc, &req(CLIENT, helo, "")).await,
            format!(
                "PREPEND Received-SPF: none (mx.test: null sender without a usable HELO name for {who}) \
                 client-ip=192.0.2.10;{helo_part} receiver=mx.test; identity=mailfrom;"
            ),
            "{helo}"
        );
    }
    assert_eq!(dns.queries(), 0);
}

/// §2.3: a missing HELO gives none for HELO and MAIL FROM is still checked (and rejected).
#[tokio::test]
async fn missing_helo_still_checks_mail_from() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let r = req(CLIENT, "", "a@fail.example.test");
    let c = check(&svc, &r).await;
    assert_eq!((c.helo.outcome, c.helo.problem.as_deref()), (Outcome::None, Some("no HELO name")));
    assert_eq!(c.mail_from().outcome, Outcome::Fail);
    assert_eq!(
        answer(&svc, &req(CLIENT, "", "a@fail.example.test")).await,
        reject_line("fail", "fail.example.test", CLIENT, "mailfrom")
    );
    let r = req(CLIENT, "", "a@pass.example.test").without("helo_name");
    let line = answer(&svc, &r).await;
    assert!(line.ends_with("receiver=mx.test; identity=mailfrom; mechanism=\"ip4:192.0.2.0/24\";"), "{line}");
    assert!(!line.contains("helo="), "{line}");
}

/// §4.3: a sender whose domain is not a domain name gives none, never an error.
#[tokio::test]
async fn invalid_sender_domain_is_none() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    for sender in ["a@[192.0.2.1]", "a@nodot", "a@bad..example.test"] {
        let c = check(&svc, &from(sender)).await;
        assert_eq!(
            (c.mail_from().outcome, c.mail_from().problem.as_deref()),
            (Outcome::None, Some("sender domain is not a domain name")),
            "{sender}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 6. HELO first (RFC 7208 §2.3)
// ---------------------------------------------------------------------------------------

/// §2.3: a HELO check that fails decides: rejected on the HELO identity, MAIL FROM not
/// evaluated (its record never fetched).
#[tokio::test]
async fn failing_helo_decides() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let c = check(&svc, &req(CLIENT, "badhelo.example.test", "a@pass.example.test")).await;
    assert_eq!(c.helo.outcome, Outcome::Fail);
    assert!(c.mail_from.is_none());
    assert_eq!(c.decision.identity, Identity::Helo);
    let d = decide(&svc, &req(CLIENT, "badhelo.example.test", "a@pass.example.test")).await;
    assert_eq!(d.action.to_string(), reject_line("fail", "badhelo.example.test", CLIENT, "helo"));
    assert_eq!(d.reason, "spf-helo-fail");
    assert_eq!(field(&d, "mailfrom"), None);
    assert_eq!(dns.queries_for_name("pass.example.test"), 0);
}

/// Only a definitive HELO result ends the check (RFC 7208 §2.3): a HELO temperror (its
/// action is `defer`) or softfail leaves the decision to MAIL FROM, and both results are in
/// the log line.
#[tokio::test]
async fn a_helo_temperror_or_softfail_leaves_the_decision_to_mail_from() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    for helo in ["brokenhelo.example.test", "softhelo.example.test"] {
        let c = check(&svc, &req(CLIENT, helo, "a@pass.example.test")).await;
        assert_ne!(c.helo.outcome, Outcome::Pass, "{helo}");
        assert_eq!(c.decision.identity, Identity::MailFrom, "{helo}");
        let d = decide(&svc, &req(CLIENT, helo, "a@pass.example.test")).await;
        assert_eq!(d.reason, "spf-mailfrom-pass", "{helo}");
        assert!(d.action.to_string().starts_with("PREPEND Received-SPF: pass "), "{helo}: {}", d.action);
        assert_eq!(field(&d, "mailfrom"), Some("pass"), "{helo}");
        assert!(matches!(field(&d, "helo"), Some("temperror" | "softfail")), "{helo}: {:?}", field(&d, "helo"));
    }
    // Both results are recorded: MAIL FROM's header, then (next recipient) HELO's.
    let msg = req(CLIENT, "softhelo.example.test", "a@pass.example.test").with("instance", "helo-both");
    assert!(answer(&svc, &msg).await.starts_with("PREPEND Received-SPF: pass "));
    let helo_header = answer(&svc, &msg).await;
    assert!(
        helo_header.starts_with("PREPEND Received-SPF: softfail ") && helo_header.contains("identity=helo;"),
        "{helo_header}"
    );
    // A MAIL FROM fail behind a HELO temperror is still rejected, as a MAIL FROM fail.
    let d = decide(&svc, &req(CLIENT, "brokenhelo.example.test", "a@fail.example.test")).await;
    assert_eq!(d.action.to_string(), reject_line("fail", "fail.example.test", CLIENT, "mailfrom"));
}

/// `helo_pass_decides`: off, a HELO pass leaves MAIL FROM to decide (and a forged MAIL FROM
/// is rejected); on, the HELO pass ends the check and MAIL FROM is never looked up.
#[tokio::test]
async fn a_helo_pass_decides_only_when_configured() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let d = decide(&svc, &req(CLIENT, "mx.example.test", "a@fail.example.test")).await;
    assert_eq!(d.action.to_string(), reject_line("fail", "fail.example.test", CLIENT, "mailfrom"));
    let mut cfg = config(&dns);
    cfg.spf.helo_pass_decides = true;
    let svc = service(cfg);
    dns.reset_counts();
    let d = decide(&svc, &req(CLIENT, "mx.example.test", "a@fail.example.test")).await;
    assert_eq!(d.reason, "spf-helo-pass");
    assert!(d.action.to_string().starts_with("PREPEND Received-SPF: pass "), "{}", d.action);
    assert_eq!(dns.queries_for_name("fail.example.test"), 0);
}

/// An empty, quoted or odd local part is checked like any other (RFC 7208 §4.3: empty is
/// `postmaster`), so a forger cannot get past an SPF fail with `<@fail.example.test>` or
/// `<"x y"@fail.example.test>` (Postfix passes the latter unquoted).
#[tokio::test]
async fn odd_local_parts_are_checked_and_rejected() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    for sender in ["@fail.example.test", "x y@fail.example.test", "a@b@fail.example.test", "%{l}/:@fail.example.test"] {
        let d = decide(&svc, &req(CLIENT, HELO, sender)).await;
        assert_eq!(d.action.to_string(), reject_line("fail", "fail.example.test", CLIENT, "mailfrom"), "{sender}");
    }
    let (outcome, _, _) = mail_from_result(&svc, CLIENT, "@pass.example.test").await;
    assert_eq!(outcome, Outcome::Pass);
}

/// A /0 prefix matches every address, IPv4 and IPv6 (viaspf computed the mask with an
/// overflowing shift and compared the whole address: vendor-patches/viaspf).
#[tokio::test]
async fn a_zero_prefix_matches_every_address() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    for ip in ["198.51.100.200", "203.0.113.7", "2001:db8::99", "::ffff:192.0.2.200"] {
        let (outcome, _, _) = mail_from_result(&svc, ip, "a@everyone.example.test").await;
        assert_eq!(outcome, Outcome::Pass, "{ip}");
    }
}

/// `[spf.helo]`: with HELO fail only recorded, MAIL FROM decides.
#[tokio::test]
async fn helo_action_map_is_separate() {
    let dns = fixture().await;
    let mut cfg = config(&dns);
    cfg.spf.helo.fail = ResultAction::Header;
    let svc = service(cfg);
    let c = check(&svc, &req(CLIENT, "badhelo.example.test", "a@pass.example.test")).await;
    assert_eq!((c.helo.outcome, c.mail_from().outcome), (Outcome::Fail, Outcome::Pass));
    let d = decide(&svc, &req(CLIENT, "badhelo.example.test", "a@pass.example.test")).await;
    assert_eq!(d.reason, "spf-mailfrom-pass");
    assert_eq!(field(&d, "helo"), Some("fail"));
    assert!(d.action.to_string().starts_with("PREPEND Received-SPF: pass "), "{}", d.action);
}

// ---------------------------------------------------------------------------------------
// 7. Exemptions
// ---------------------------------------------------------------------------------------

fn assert_exempt(d: &Decision, why: &str) {
    assert_eq!(d.action.to_string(), "DUNNO");
    assert_eq!(d.reason, "exempt");
    assert_eq!(field(d, "exempt"), Some(why));
}

/// SMTP AUTH clients are the site's own users: DUNNO even for a `-all` sender, without a
/// DNS query; with `exempt.authenticated = false` they are checked.
#[tokio::test]
async fn authenticated_clients_are_exempt() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let r = from("a@nomail.example.test").with("sasl_username", "alice").with("sasl_method", "PLAIN");
    assert_exempt(&decide(&svc, &r).await, "authenticated");
    assert_eq!(dns.queries(), 0);

    let mut cfg = config(&dns);
    cfg.exempt.authenticated = false;
    let svc = service(cfg);
    let r = from("a@nomail.example.test").with("sasl_username", "alice");
    assert_eq!(answer(&svc, &r).await, reject_line("fail", "nomail.example.test", CLIENT, "mailfrom"));
}

/// Trusted networks, IPv4 and IPv6.
#[tokio::test]
async fn trusted_networks_are_exempt() {
    let dns = fixture().await;
    let mut cfg = config(&dns);
    cfg.exempt.networks = vec!["192.0.2.0/24".parse().unwrap(), "2001:db8:5::/64".parse().unwrap()];
    let svc = service(cfg);
    assert_exempt(&decide(&svc, &from("a@nomail.example.test")).await, "network 192.0.2.0/24");
    assert_exempt(
        &decide(&svc, &req("::ffff:192.0.2.99", HELO, "a@nomail.example.test")).await,
        "network 192.0.2.0/24",
    );
    assert_exempt(&decide(&svc, &req("2001:db8:5::9", HELO, "a@nomail.example.test")).await, "network 2001:db8:5::/64");
    assert_eq!(dns.queries(), 0);
    // Just outside both.
    assert_eq!(
        answer(&svc, &req("2001:db8:5:1::9", HELO, "a@nomail.example.test")).await,
        reject_line("fail", "nomail.example.test", "2001:db8:5:1::9", "mailfrom")
    );
    assert_eq!(
        answer(&svc, &req("198.51.100.9", HELO, "a@nomail.example.test")).await,
        reject_line("fail", "nomail.example.test", "198.51.100.9", "mailfrom")
    );
}

/// `spf.exempt.helo_names`: exempt only when the listed HELO resolves to the client, so a
/// forged HELO gains nothing; `.domain` entries match names below.
#[tokio::test]
async fn helo_names_exempt_only_when_they_resolve_to_the_client() {
    let dns = fixture().await;
    for listed in ["relay.example.test", ".example.test", "RELAY.example.test."] {
        let mut cfg = config(&dns);
        cfg.spf.exempt.helo_names = vec![listed.into()];
        let svc = service(cfg);
        assert_exempt(
            &decide(&svc, &req("203.0.113.20", "relay.example.test", "a@fail.example.test")).await,
            "helo-name relay.example.test",
        );
        assert_eq!(
            answer(&svc, &req("203.0.113.21", "relay.example.test", "a@fail.example.test")).await,
            reject_line("fail", "fail.example.test", "203.0.113.21", "mailfrom"),
            "{listed}"
        );
    }
    // Not listed: checked as usual.
    let svc = service(config(&dns));
    assert_eq!(
        answer(&svc, &req("203.0.113.20", "relay.example.test", "a@fail.example.test")).await,
        reject_line("fail", "fail.example.test", "203.0.113.20", "mailfrom")
    );
}

/// `spf.exempt.forwarder_domains`: exempt when the forwarder's own SPF passes the client.
#[tokio::test]
async fn forwarder_domains_exempt_by_their_own_spf() {
    let dns = fixture().await;
    let mut cfg = config(&dns);
    cfg.spf.exempt.forwarder_domains = vec!["fwd.example.test".into()];
    let svc = service(cfg);
    assert_exempt(
        &decide(&svc, &req("203.0.113.7", HELO, "a@fail.example.test")).await,
        "forwarder-spf fwd.example.test",
    );
    assert_eq!(
        answer(&svc, &req("203.0.113.100", HELO, "a@fail.example.test")).await,
        reject_line("fail", "fail.example.test", "203.0.113.100", "mailfrom")
    );
}

/// `spf.exempt.forwarder_names`: Postfix's validated `client_name`; without that attribute,
/// postward's own forward-confirmed reverse lookup.
#[tokio::test]
async fn forwarder_names_exempt_by_validated_name() {
    let dns = fixture().await;
    let mut cfg = config(&dns);
    cfg.spf.exempt.forwarder_names = vec![".relays.example.test".into()];
    let svc = service(cfg);
    // Postfix's client_name: trusted as is, no PTR query.
    let r = req("203.0.113.70", HELO, "a@fail.example.test").with("client_name", "out1.relays.example.test");
    assert_exempt(&decide(&svc, &r).await, "forwarder-name out1.relays.example.test");
    assert_eq!(dns.queries(), 0);
    // Postfix could not validate the name.
    let r = req("203.0.113.70", HELO, "a@fail.example.test").with("client_name", "unknown");
    assert_eq!(answer(&svc, &r).await, reject_line("fail", "fail.example.test", "203.0.113.70", "mailfrom"));
    assert_eq!(dns.queries_for_name("70.113.0.203.in-addr.arpa"), 0);
    // No client_name attribute: PTR, then A of the name.
    let r = req("203.0.113.60", HELO, "a@fail.example.test");
    assert_exempt(&decide(&svc, &r).await, "forwarder-name out2.relays.example.test");
    assert_eq!(dns.queries_for("60.113.0.203.in-addr.arpa", RecordType::PTR), 1);
    assert_eq!(dns.queries_for("out2.relays.example.test", RecordType::A), 1);
    // The PTR name's A record is another host: not validated, not exempt.
    let r = req("203.0.113.61", HELO, "a@fail.example.test");
    assert_eq!(answer(&svc, &r).await, reject_line("fail", "fail.example.test", "203.0.113.61", "mailfrom"));
}

// ---------------------------------------------------------------------------------------
// 8. One answer per message (Postfix `instance`)
// ---------------------------------------------------------------------------------------

/// One Received-SPF per identity and message: the first recipient gets MAIL FROM's, the
/// second the HELO result's (which did not decide, RFC 7208 §2.3), the others DUNNO, and
/// the DNS is asked once.
#[tokio::test]
async fn header_once_per_message() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let msg = from("a@pass.example.test").with("instance", "msg-1");
    let first = decide(&svc, &msg.clone().with("recipient", "u1@rcpt.test")).await;
    assert!(first.action.to_string().starts_with("PREPEND Received-SPF: pass (mx.test:"), "{}", first.action);
    let second = decide(&svc, &msg.clone().with("recipient", "u2@rcpt.test")).await;
    let second = second.action.to_string();
    assert!(
        second.starts_with("PREPEND Received-SPF: neutral (mx.test:") && second.contains("identity=helo;"),
        "{second}"
    );
    for n in 3..=4 {
        let d = decide(&svc, &msg.clone().with("recipient", &format!("u{n}@rcpt.test"))).await;
        assert_eq!(d.action.to_string(), "DUNNO", "recipient {n}");
        assert_eq!(d.reason, "spf-mailfrom-pass");
        assert_eq!(field(&d, "message"), Some("seen"));
    }
    assert_eq!(dns.queries_for_name("pass.example.test"), 1);
    assert_eq!(dns.queries_for_name(HELO), 1);
}

/// `header = "both"`: Received-SPF with the first recipient, Authentication-Results
/// (RFC 8601) with the second, then nothing.
#[tokio::test]
async fn both_headers_go_out_one_per_request() {
    let dns = fixture().await;
    let mut cfg = config(&dns);
    cfg.spf.header = HeaderKind::Both;
    let svc = service(cfg);
    let msg = from("a@pass.example.test").with("instance", "msg-2");
    assert_eq!(
        answer(&svc, &msg).await,
        received_spf(
            "pass (mx.test: domain of a@pass.example.test designates 192.0.2.10 as permitted sender)",
            "a@pass.example.test",
            " mechanism=\"ip4:192.0.2.0/24\";"
        )
    );
    assert_eq!(
        answer(&svc, &msg).await,
        "PREPEND Authentication-Results: mx.test; spf=pass (matched ip4:192.0.2.0/24) smtp.mailfrom=a@pass.example.test"
    );
    // Then the HELO result's two (neutral: it did not decide).
    assert!(answer(&svc, &msg).await.contains("identity=helo;"));
    assert_eq!(
        answer(&svc, &msg).await,
        "PREPEND Authentication-Results: mx.test; spf=neutral (matched all) smtp.helo=mta.client.test"
    );
    assert_eq!(answer(&svc, &msg).await, "DUNNO");
    assert_eq!(dns.queries_for_name("pass.example.test"), 1);
}

/// The other header settings: Authentication-Results alone, and none.
#[tokio::test]
async fn header_kinds() {
    let dns = fixture().await;
    let mut cfg = config(&dns);
    cfg.spf.header = HeaderKind::AuthenticationResults;
    let svc = service(cfg);
    assert_eq!(
        answer(&svc, &from("a@softfail.example.test")).await,
        "PREPEND Authentication-Results: mx.test; spf=softfail (matched all) smtp.mailfrom=a@softfail.example.test"
    );
    let mut cfg = config(&dns);
    cfg.spf.header = HeaderKind::None;
    let svc = service(cfg);
    let d = decide(&svc, &from("a@pass.example.test")).await;
    assert_eq!((d.action.to_string(), d.reason.as_str()), ("DUNNO".to_owned(), "spf-mailfrom-pass"));
}

/// A refusal applies to every recipient of the message, with the DNS asked once.
#[tokio::test]
async fn reject_applies_to_every_recipient() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let msg = from("a@fail.example.test").with("instance", "msg-3");
    for n in 1..=3 {
        let r = msg.clone().with("recipient", &format!("u{n}@rcpt.test"));
        assert_eq!(
            answer(&svc, &r).await,
            reject_line("fail", "fail.example.test", CLIENT, "mailfrom"),
            "recipient {n}"
        );
    }
    assert_eq!(dns.queries_for_name("fail.example.test"), 1);
}

/// The same `instance` from another client is another message; stages before MAIL are not
/// checked; headers are not sent at END-OF-MESSAGE (too late for PREPEND).
#[tokio::test]
async fn message_boundaries_and_stages() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let a = from("a@pass.example.test").with("instance", "shared");
    let b = req("192.0.2.11", HELO, "a@pass.example.test").with("instance", "shared");
    assert!(answer(&svc, &a).await.starts_with("PREPEND Received-SPF: pass"));
    assert!(
        answer(&svc, &b)
            .await
            .starts_with("PREPEND Received-SPF: pass (mx.test: domain of a@pass.example.test designates 192.0.2.11")
    );

    let early = decide(&svc, &from("a@fail.example.test").with("protocol_state", "EHLO")).await;
    assert_eq!((early.action.to_string(), early.reason.as_str()), ("DUNNO".to_owned(), "not-applicable"));
    let eom = decide(&svc, &from("a@pass.example.test").with("protocol_state", "END-OF-MESSAGE")).await;
    assert_eq!((eom.action.to_string(), eom.reason.as_str()), ("DUNNO".to_owned(), "spf-mailfrom-pass"));
    let eom = decide(&svc, &from("a@fail.example.test").with("protocol_state", "END-OF-MESSAGE")).await;
    assert_eq!(eom.action.to_string(), reject_line("fail", "fail.example.test", CLIENT, "mailfrom"));
}

// ---------------------------------------------------------------------------------------
// 9. The per-check time limit
// ---------------------------------------------------------------------------------------

/// `spf.time_limit` bounds the whole check even when the resolver would wait longer: a
/// record 3 s away gives temperror after ~1 s.
#[tokio::test]
async fn time_limit_bounds_a_slow_lookup() {
    let dns = zones().delay("slow.example.test", Duration::from_secs(3)).start().await.unwrap();
    let mut cfg = config(&dns);
    cfg.dns.timeout = ConfigDuration::secs(5);
    cfg.spf.time_limit = ConfigDuration::secs(1);
    let svc = service(cfg);
    let start = Instant::now();
    let line = answer(&svc, &from("a@slow.example.test")).await;
    let elapsed = start.elapsed();
    assert_eq!(
        line,
        "DEFER_IF_PERMIT 4.7.24 SPF temperror: cannot check slow.example.test now (DNS lookup timed out), try again later"
    );
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
}

/// The limit is for HELO and MAIL FROM together: a slow HELO leaves MAIL FROM only the rest.
/// Each lookup alone (1 s) fits in the limit (1.5 s); both do not.
#[tokio::test]
async fn time_limit_is_shared_by_helo_and_mail_from() {
    let dns = zones()
        .zone("slow.test")
        .txt("helo.slow.test", "v=spf1 ?all")
        .txt("sender.slow.test", "v=spf1 ip4:192.0.2.0/24 -all")
        .delay("slow.test", Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let mut cfg = config(&dns);
    cfg.dns.timeout = ConfigDuration::secs(5);
    cfg.spf.time_limit = ConfigDuration::millis(1500);
    let svc = service(cfg);
    let start = Instant::now();
    let c = check(&svc, &req(CLIENT, "helo.slow.test", "a@sender.slow.test")).await;
    let elapsed = start.elapsed();
    assert_eq!(c.helo.outcome, Outcome::Neutral);
    assert_eq!(
        (c.mail_from().outcome, c.mail_from().problem.as_deref()),
        (Outcome::Temperror, Some("DNS lookup timed out"))
    );
    assert!(elapsed >= Duration::from_millis(1400), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
}

/// The limit covers the exemption lookups too: slow forwarder domains cannot push the answer
/// past `time_limit` (and so past Postfix's `smtpd_policy_service_timeout`); what is left
/// undecided at the deadline is temperror.
#[tokio::test]
async fn time_limit_covers_exemption_lookups() {
    let dns = zones()
        .zone("slowfwd.test")
        .txt("one.slowfwd.test", "v=spf1 ip4:203.0.113.0/24 -all")
        .txt("two.slowfwd.test", "v=spf1 ip4:203.0.113.0/24 -all")
        .txt("three.slowfwd.test", "v=spf1 ip4:203.0.113.0/24 -all")
        .delay("slowfwd.test", Duration::from_secs(3))
        .start()
        .await
        .unwrap();
    let mut cfg = config(&dns);
    cfg.dns.timeout = ConfigDuration::secs(5);
    cfg.spf.time_limit = ConfigDuration::secs(1);
    cfg.spf.exempt.forwarder_domains =
        vec!["one.slowfwd.test".into(), "two.slowfwd.test".into(), "three.slowfwd.test".into()];
    let svc = service(cfg);
    let start = Instant::now();
    let line = answer(&svc, &from("a@pass.example.test")).await;
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
    assert_eq!(
        line,
        "DEFER_IF_PERMIT 4.7.24 SPF temperror: cannot check pass.example.test now (SPF time limit reached), try again later"
    );
}

// ---------------------------------------------------------------------------------------
// 10. Result cache and in-flight sharing
// ---------------------------------------------------------------------------------------

async fn cache_fixture(delay: Duration) -> DnsFixture {
    zones()
        .zone("sender.test")
        .txt("sender.test", "v=spf1 ip4:192.0.2.0/24 -all")
        .delay("sender.test", delay)
        .start()
        .await
        .unwrap()
}

/// 50 messages at once for the same client and sender share one evaluation (one TXT
/// query); a later message is answered from the result cache without any query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_share_one_lookup_and_are_cached() {
    let dns = cache_fixture(Duration::from_millis(200)).await;
    let svc = Arc::new(service(config(&dns)));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let svc = svc.clone();
            let r = from("a@sender.test");
            tokio::spawn(async move { decide(&*svc, &r).await.action.to_string() })
        })
        .collect();
    for t in tasks {
        let line = t.await.unwrap();
        assert!(line.starts_with("PREPEND Received-SPF: pass (mx.test: domain of a@sender.test designates"), "{line}");
    }
    assert_eq!(dns.queries_for("sender.test.", RecordType::TXT), 1);
    assert_eq!(dns.queries_for("sender.test", RecordType::TXT), 1);

    let d = decide(&*svc, &from("a@sender.test")).await;
    assert!(d.action.to_string().starts_with("PREPEND Received-SPF: pass"), "{}", d.action);
    assert_eq!(field(&d, "cached"), Some("2"), "HELO and MAIL FROM from the cache: {:?}", d.fields);
    let c = check(&svc, &from("a@sender.test")).await;
    assert_eq!(c.cached, 2);
    assert_eq!(c.mail_from().outcome, Outcome::Pass);
    assert_eq!(dns.queries_for("sender.test", RecordType::TXT), 1);
    // The record has no macro, so another local part of the domain shares the result, and
    // the result names this message's sender.
    let c = check(&svc, &from("b@sender.test")).await;
    assert_eq!(c.cached, 2);
    assert_eq!(c.mail_from().sender, "b@sender.test");
    assert_eq!(dns.queries_for("sender.test", RecordType::TXT), 1);
    let d = decide(&*svc, &from("b@sender.test")).await;
    assert!(d.action.to_string().contains("domain of b@sender.test designates"), "{}", d.action);
    // Another client is another result.
    assert_eq!(check(&svc, &req("192.0.2.99", HELO, "a@sender.test")).await.cached, 0);
}

/// A record or explanation with a macro keeps the result to the very sender and HELO it was
/// evaluated for: `%{l}` lets alice pass and bob fail from the same client, `%{h}` depends on
/// the HELO, and an `exp=` text with macros names the client and domain.
#[tokio::test]
async fn macro_results_are_cached_per_sender_and_helo() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    let lp = |local: &str| from(&format!("{local}@lp.example.test"));
    for _ in 0..2 {
        assert_eq!(check(&svc, &lp("alice")).await.mail_from().outcome, Outcome::Pass);
        assert_eq!(check(&svc, &lp("bob")).await.mail_from().outcome, Outcome::Fail);
    }
    assert_eq!(check(&svc, &lp("alice")).await.cached, 2, "alice's own result is cached");
    assert_eq!(check(&svc, &lp("carol")).await.cached, 1, "carol is evaluated, HELO from the cache");

    let h = |helo: &str| req(CLIENT, helo, "a@hmacro.example.test");
    assert_eq!(check(&svc, &h(HELO)).await.mail_from().outcome, Outcome::Pass);
    let other = check(&svc, &h("mx.example.test")).await;
    assert_eq!(other.mail_from().outcome, Outcome::Fail, "another HELO is another result");

    let first = check(&svc, &from("a@explained.example.test")).await;
    assert_eq!(first.mail_from().explanation, format!("{CLIENT} is not a mail server of explained.example.test"));
    let again = check(&svc, &from("b@explained.example.test")).await;
    assert_eq!((again.cached, again.mail_from().outcome), (1, Outcome::Fail));
    assert_eq!(check(&svc, &from("a@explained.example.test")).await.cached, 2);
}

/// `cache_size = 0` turns the result cache off: every message asks again.
#[tokio::test]
async fn no_cache_asks_again() {
    let dns = cache_fixture(Duration::ZERO).await;
    let mut cfg = config(&dns);
    cfg.spf.cache_size = 0;
    let svc = service(cfg);
    for n in 1..=2 {
        let d = decide(&svc, &from("a@sender.test")).await;
        assert!(d.action.to_string().starts_with("PREPEND Received-SPF: pass"), "{}", d.action);
        assert_eq!(field(&d, "cached"), None);
        assert_eq!(dns.queries_for("sender.test", RecordType::TXT), n);
    }
}

/// `cache_ttl`: an entry older than the TTL is evaluated again.
#[tokio::test]
async fn cache_entries_expire() {
    let dns = cache_fixture(Duration::ZERO).await;
    let mut cfg = config(&dns);
    cfg.spf.cache_ttl = ConfigDuration::millis(300);
    let svc = service(cfg);
    assert_eq!(check(&svc, &from("a@sender.test")).await.cached, 0);
    assert_eq!(check(&svc, &from("a@sender.test")).await.cached, 2);
    assert_eq!(dns.queries_for("sender.test", RecordType::TXT), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(check(&svc, &from("a@sender.test")).await.cached, 0);
    assert_eq!(dns.queries_for("sender.test", RecordType::TXT), 2);
}

/// TempError is never cached: the next message asks the DNS again.
#[tokio::test]
async fn temperror_is_not_cached() {
    let dns = fixture().await;
    let svc = service(config(&dns));
    for n in 1..=2 {
        let c = check(&svc, &from("a@broken.example.test")).await;
        assert_eq!(c.mail_from().outcome, Outcome::Temperror);
        assert_eq!(c.cached, usize::from(n > 1), "only HELO from the cache");
        assert_eq!(dns.queries_for("broken.example.test", RecordType::TXT), n);
    }
}

// ---------------------------------------------------------------------------------------
// 11. Configuration: actions, strict domains, dry run, reply texts
// ---------------------------------------------------------------------------------------

/// `strict_domains`: softfail and neutral from a listed domain count as fail.
#[tokio::test]
async fn strict_domains_turn_softfail_into_reject() {
    let dns = fixture().await;
    let mut cfg = config(&dns);
    cfg.spf.strict_domains = vec!["softfail.example.test".into(), ".strict.test".into(), "neutral.example.test".into()];
    let svc = service(cfg);
    let d = decide(&svc, &from("a@softfail.example.test")).await;
    assert_eq!(d.action.to_string(), reject_line("softfail", "softfail.example.test", CLIENT, "mailfrom"));
    assert_eq!(field(&d, "strict"), Some("yes"));
    assert_eq!(d.reason, "spf-mailfrom-softfail");
    let d = decide(&svc, &from("a@neutral.example.test")).await;
    assert_eq!(d.action.to_string(), reject_line("neutral", "neutral.example.test", CLIENT, "mailfrom"));
    // Not listed: only the header.
    let svc = service(config(&dns));
    let d = decide(&svc, &from("a@softfail.example.test")).await;
    assert!(d.action.to_string().starts_with("PREPEND Received-SPF: softfail"), "{}", d.action);
    assert_eq!(field(&d, "strict"), None);
}

/// `fail = "reject-no-mail"`: only a domain publishing exactly `v=spf1 -all` is rejected.
#[tokio::test]
async fn reject_no_mail() {
    let dns = fixture().await;
    let mut cfg = config(&dns);
    cfg.spf.mail_from.fail = ResultAction::RejectNoMail;
    let svc = service(cfg);
    let c = check(&svc, &from("a@nomail.example.test")).await;
    assert!(c.mail_from().no_mail);
    assert_eq!(c.decision.configured, ResultAction::RejectNoMail);
    assert_eq!(
        answer(&svc, &from("a@nomail.example.test")).await,
        reject_line("fail", "nomail.example.test", CLIENT, "mailfrom")
    );
    let c = check(&svc, &from("a@fail.example.test")).await;
    assert!(!c.mail_from().no_mail);
    assert_eq!(
        answer(&svc, &from("a@fail.example.test")).await,
        received_spf(
            "fail (mx.test: domain of a@fail.example.test does not designate 192.0.2.10 as permitted sender)",
            "a@fail.example.test",
            " mechanism=\"all\";"
        )
    );
}

/// `dry_run`: nothing is refused; the header goes out and the log shows what would have
/// been answered.
#[tokio::test]
async fn dry_run_only_adds_headers() {
    let dns = fixture().await;
    let mut cfg = config(&dns);
    cfg.spf.dry_run = true;
    let svc = service(cfg);
    let d = decide(&svc, &from("a@fail.example.test")).await;
    assert_eq!(
        d.action.to_string(),
        received_spf(
            "fail (mx.test: domain of a@fail.example.test does not designate 192.0.2.10 as permitted sender)",
            "a@fail.example.test",
            " mechanism=\"all\";"
        )
    );
    assert_eq!(field(&d, "dry_run_would"), Some(reject_line("fail", "fail.example.test", CLIENT, "mailfrom").as_str()));
    // A failing HELO is recorded on the HELO identity.
    let d = decide(&svc, &req(CLIENT, "badhelo.example.test", "a@pass.example.test")).await;
    assert!(
        d.action
            .to_string()
            .starts_with("PREPEND Received-SPF: fail (mx.test: domain of postmaster@badhelo.example.test"),
        "{}",
        d.action
    );
    assert_eq!(field(&d, "dry_run_would"), Some(reject_line("fail", "badhelo.example.test", CLIENT, "helo").as_str()));
    let d = decide(&svc, &from("a@broken.example.test")).await;
    assert!(d.action.to_string().starts_with("PREPEND Received-SPF: temperror"), "{}", d.action);
    assert_eq!(
        field(&d, "dry_run_would"),
        Some(
            "DEFER_IF_PERMIT 4.7.24 SPF temperror: cannot check broken.example.test now (DNS lookup failed), try again later"
        )
    );
}

/// `temperror = "header"` accepts on a DNS failure; `permerror = "reject"` rejects with
/// 550 5.7.24; `pass = "ignore"` answers DUNNO.
#[tokio::test]
async fn configurable_error_actions() {
    let dns = fixture().await;
    let mut cfg = config(&dns);
    cfg.spf.mail_from.temperror = ResultAction::Header;
    cfg.spf.mail_from.permerror = ResultAction::Reject;
    cfg.spf.mail_from.pass = ResultAction::Ignore;
    let svc = service(cfg);
    assert_eq!(
        answer(&svc, &from("a@broken.example.test")).await,
        received_spf(
            "temperror (mx.test: temporary error in processing domain of a@broken.example.test: DNS lookup failed)",
            "a@broken.example.test",
            " problem=\"DNS lookup failed\";"
        )
    );
    assert_eq!(
        answer(&svc, &from("a@syntax.example.test")).await,
        "550 5.7.24 SPF permerror: the SPF record of syntax.example.test is invalid (invalid SPF record found)."
    );
    assert_eq!(
        answer(&svc, &from("a@two.example.test")).await,
        "550 5.7.24 SPF permerror: the SPF record of two.example.test is invalid (more than one SPF record found)."
    );
    assert_eq!(answer(&svc, &from("a@pass.example.test")).await, "DUNNO");
}

/// The reply texts' placeholders and `why_url`, and a domain's own `exp=` explanation
/// (RFC 7208 §6.2).
#[tokio::test]
async fn reply_texts_and_why_url() {
    let dns = fixture().await;
    let mut cfg = config(&dns);
    cfg.spf.reject_text = "{result}|{identity}|{domain}|{sender}|{ip}|{helo}|{explanation}|{url}".into();
    cfg.spf.defer_text = "later: {domain} {explanation} {url}".into();
    cfg.spf.why_url = "https://why.example.test/?s={sender}&ip={ip}&r={result}".into();
    let svc = service(cfg);
    assert_eq!(
        answer(&svc, &from("a@fail.example.test")).await,
        "550 5.7.23 fail|mailfrom|fail.example.test|a@fail.example.test|192.0.2.10|mta.client.test||\
         https://why.example.test/?s=a@fail.example.test&ip=192.0.2.10&r=fail"
    );
    assert_eq!(
        answer(&svc, &from("a@explained.example.test")).await,
        "550 5.7.23 fail|mailfrom|explained.example.test|a@explained.example.test|192.0.2.10|mta.client.test|\
         192.0.2.10 is not a mail server of explained.example.test|\
         https://why.example.test/?s=a@explained.example.test&ip=192.0.2.10&r=fail"
    );
    assert_eq!(
        answer(&svc, &from("a@broken.example.test")).await,
        "DEFER_IF_PERMIT 4.7.24 later: broken.example.test DNS lookup failed \
         https://why.example.test/?s=a@broken.example.test&ip=192.0.2.10&r=temperror"
    );
    // The default text carries the explanation too.
    let svc = service(config(&dns));
    let d = decide(&svc, &from("a@explained.example.test")).await;
    assert_eq!(
        d.action.to_string(),
        "550 5.7.23 SPF fail: explained.example.test does not allow 192.0.2.10 to send mail (mailfrom). \
         192.0.2.10 is not a mail server of explained.example.test"
    );
    assert_eq!(field(&d, "why"), Some("192.0.2.10 is not a mail server of explained.example.test"));
}

/// With SPF disabled no check runs and nothing is asked.
#[tokio::test]
async fn spf_disabled() {
    let dns = fixture().await;
    let mut cfg = config(&dns);
    cfg.spf.enabled = false;
    let svc = service(cfg);
    let d = decide(&svc, &from("a@nomail.example.test")).await;
    assert_eq!((d.action.to_string(), d.reason.as_str()), ("DUNNO".to_owned(), "no-checks"));
    assert_eq!(dns.queries(), 0);
}
