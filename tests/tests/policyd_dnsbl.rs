#![allow(clippy::unwrap_used)]
//! policyd's DNS list check (`[dnsbl]`, postscreen-style scoring) in-process
//! (`policyd::Service`) against the in-process DNS fixture: listed and unlisted clients,
//! reply filters, weights and thresholds, allowlists and SPF, blocked and foreign answer
//! codes, TXT reasons, DQS keys kept out of replies and logs, IPv6 clients, RHSBL lookups
//! of every name kind, timeouts and fail-open, concurrent queries, the answer cache with its
//! TTL clamping, in-flight sharing, RFC 5782 test-point probes, configuration errors, and the
//! `check` command of the real binary.
//!
//! Requests are built as Postfix sends them and answered through `PolicyService::decide`, so
//! each test asserts the exact action line Postfix would receive; `Service::evaluate` gives
//! the DNS list report behind it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use policyd::config::ListConfig;
use policyd::dnsbl::{DnsblReport, Outcome, Target};
use policyd::{Config, Reports, Service};
use postward_tests::dns::{DnsFixture, DnsFixtureBuilder, RecordType};
use postward_tests::process::bin_path;
use postward_tests::request::{Req, answer, decide, field};
use shared::config::CommonConfig;
use shared::duration::ConfigDuration;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Listed in `bl.test` (127.0.0.2) with a TXT reason, and in most other client lists.
const LISTED: &str = "192.0.2.99";
/// The TXT reason of [`LISTED`] in `bl.test`.
const LISTED_WHY: &str = "Listed: see https://bl.test/q?192.0.2.99";
/// Listed in `bl.test` without a TXT record.
const LISTED_NO_TXT: &str = "192.0.2.98";
/// Listed nowhere.
const CLEAN: &str = "192.0.2.10";
/// The DQS key of `dq.test`.
const KEY: &str = "secretkey123";
/// An IPv6 client listed in `bl.test`, and its 32 nibbles, least significant first, written
/// out by hand.
const V6: &str = "2001:db8::1";
const V6_NIBBLES: &str = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2";

/// RFC 5782 §5 test points of an IPv4 list: 127.0.0.2 listed (127.0.0.1 is left unlisted).
fn ip_test_points(b: DnsFixtureBuilder, zone: &str) -> DnsFixtureBuilder {
    b.a(&format!("2.0.0.127.{zone}"), "127.0.0.2")
}

/// The DNS data every test shares: one zone per kind of list.
fn zones() -> DnsFixtureBuilder {
    let mut b = DnsFixture::builder();
    for zone in [
        "bl.test",
        "bl2.test",
        "bl3.test",
        "wl.test",
        "multi.test",
        "blocked.test",
        "wlblock.test",
        "parked.test",
        "slow.test",
        "d1.test",
        "d2.test",
        "d3.test",
        "all.test",
        "zero.test",
    ] {
        b = ip_test_points(b.zone(zone), zone);
    }
    b
        // bl.test: the plain IP DNSBL.
        .a("99.2.0.192.bl.test", "127.0.0.2")
        .txt("99.2.0.192.bl.test", LISTED_WHY)
        .a("98.2.0.192.bl.test", "127.0.0.2")
        .a("97.2.0.192.bl.test", "127.0.0.20")
        .a("96.2.0.192.bl.test", "127.0.0.2")
        .txt("96.2.0.192.bl.test", "first reason")
        .txt("96.2.0.192.bl.test", "second reason")
        .a("95.2.0.192.bl.test", "127.0.0.2")
        .txt_strings("95.2.0.192.bl.test", &["part one, ", "part two"])
        .a("94.2.0.192.bl.test", "127.0.0.2")
        .txt("94.2.0.192.bl.test", &"x".repeat(600))
        .a("51.2.0.192.bl.test", "127.0.0.2")
        .a(&format!("{}.bl.test", V6_NIBBLES), "127.0.0.2")
        .txt(&format!("{}.bl.test", V6_NIBBLES), "v6 listed")
        // Weights: 192.0.2.1 on both, .2 only on bl3, .3 only on bl2.
        .a("1.2.0.192.bl2.test", "127.0.0.2")
        .a("1.2.0.192.bl3.test", "127.0.0.2")
        .a("2.2.0.192.bl3.test", "127.0.0.2")
        .a("3.2.0.192.bl2.test", "127.0.0.2")
        // The allowlist: .50 alone, .51 also on bl.test, .52 with a code outside the filter.
        .a("50.2.0.192.wl.test", "127.0.10.2")
        .a("51.2.0.192.wl.test", "127.0.10.2")
        .a("52.2.0.192.wl.test", "127.0.10.0")
        // One zone, two entries with their own filters.
        .a("60.2.0.192.multi.test", "127.0.0.2")
        .a("60.2.0.192.multi.test", "127.0.0.3")
        .a("61.2.0.192.multi.test", "127.0.0.3")
        // Answers that are never listings.
        .a("70.2.0.192.blocked.test", "127.255.255.254")
        .a("70.2.0.192.wlblock.test", "127.0.0.255")
        .a("70.2.0.192.parked.test", "192.0.2.1")
        // Lists used for timing.
        .a("99.2.0.192.slow.test", "127.0.0.2")
        .a("99.2.0.192.d1.test", "127.0.0.2")
        .txt("99.2.0.192.d1.test", "d1 reason")
        // all.test lists everything, its 127.0.0.1 test point too.
        .a("1.0.0.127.all.test", "127.0.0.2")
        .a("99.2.0.192.all.test", "127.0.0.2")
        // Lists without test points.
        .zone("nolist.test")
        .a("99.2.0.192.nolist.test", "127.0.0.2")
        .zone("noprobe.test")
        .a("99.2.0.192.noprobe.test", "127.0.0.2")
        .zone("refused.test")
        .a("2.0.0.127.refused.test", "127.255.255.254")
        .a("99.2.0.192.refused.test", "127.255.255.254")
        // The RHSBL, with its test points (the name `test` listed, `invalid` not).
        .zone("dbl.test")
        .a("test.dbl.test", "127.0.1.2")
        .a("bad-sender.test.dbl.test", "127.0.1.2")
        .a("bad-helo.test.dbl.test", "127.0.1.2")
        .a("bad-client.test.dbl.test", "127.0.1.2")
        .a("bad-reverse.test.dbl.test", "127.0.1.2")
        // A DQS list: every name sits under the key.
        .zone("dq.test")
        .a(&format!("2.0.0.127.{KEY}.dq.test"), "127.0.0.2")
        .a(&format!("99.2.0.192.{KEY}.dq.test"), "127.0.0.2")
        .txt(&format!("99.2.0.192.{KEY}.dq.test"), &format!("see https://x/{KEY}/lookup (SecretKey123)"))
        .servfail(&format!("98.2.0.192.{KEY}.dq.test"))
        // SPF records for the allowlist tests.
        .zone("spf.test")
        .txt("mail.spf.test", "v=spf1 ?all")
        .txt("fail.spf.test", "v=spf1 -all")
        // Records with a TTL of 0 (last: `ttl` applies to what follows).
        .ttl(0)
        .a("99.2.0.192.zero.test", "127.0.0.2")
}

async fn fixture() -> DnsFixture {
    zones().start().await.unwrap()
}

/// Only the fixture's DNS, SPF off, and these `sites` with the default thresholds.
fn config(dns: &DnsFixture, sites: &[&str]) -> Config {
    let mut c = Config { dns: dns.dns_config(), ..Config::default() };
    c.spf.enabled = false;
    c.dnsbl.sites = sites.iter().map(|s| (*s).to_owned()).collect();
    c
}

/// A `[[dnsbl.list]]` entry.
fn list(site: &str, query: &[Target]) -> ListConfig {
    ListConfig { site: site.into(), query: query.to_vec(), ..ListConfig::default() }
}

/// The service for a configuration that must pass the checks a configuration file does.
fn service(config: Config) -> Service {
    config.validate().unwrap();
    Service::new(Arc::new(config)).unwrap()
}

/// One RCPT-stage request from `ip`, as Postfix writes it for an unverified client.
fn req(ip: &str) -> Req {
    Req::rcpt(ip, "mail.spf.test", "a@sender.test")
        .with("client_name", "unknown")
        .with("reverse_client_name", "unknown")
}

async fn evaluate(svc: &Service, r: &Req) -> Reports {
    let request = r.build();
    let ip = request.client_address.unwrap();
    svc.evaluate(&request, ip, true).await.1
}

/// The DNS list report for one request.
async fn report(svc: &Service, r: &Req) -> DnsblReport {
    evaluate(svc, r).await.dnsbl.expect("the DNS lists were checked")
}

/// The default reject line.
fn reject(class: &str, what: &str, list: &str, reason: Option<&str>) -> String {
    let reason = reason.map(|r| format!("; {r}")).unwrap_or_default();
    format!("REJECT 5.7.1 Service unavailable; {class} [{what}] blocked using {list}{reason}")
}

fn line(text: &str) -> String {
    text.to_owned()
}

// ---------------------------------------------------------------------------------------
// 1. Listed and unlisted clients
// ---------------------------------------------------------------------------------------

/// The default thresholds reject a client on one list (reject_threshold 1), with the list's
/// TXT text after "; ", and without it when the list has none.
#[tokio::test]
async fn listed_client_is_rejected_with_the_txt_reason() {
    let dns = fixture().await;
    let svc = service(config(&dns, &["bl.test"]));
    let d = decide(&svc, &req(LISTED)).await;
    assert_eq!(d.action.to_string(), reject("Client host", LISTED, "bl.test", Some(LISTED_WHY)));
    assert_eq!(
        d.action.to_string(),
        "REJECT 5.7.1 Service unavailable; Client host [192.0.2.99] blocked using bl.test; Listed: see \
         https://bl.test/q?192.0.2.99"
    );
    assert_eq!(d.reason, "dnsbl-reject");
    assert_eq!(field(&d, "dnsbl_score"), Some("1"));
    assert_eq!(field(&d, "dnsbl"), Some("bl.test:client:192.0.2.99"));

    assert_eq!(
        answer(&svc, &req(LISTED_NO_TXT)).await,
        "REJECT 5.7.1 Service unavailable; Client host [192.0.2.98] blocked using bl.test"
    );
    let r = report(&svc, &req(LISTED_NO_TXT)).await;
    assert_eq!(r.reason, None);
    assert_eq!(r.outcome, Some(Outcome::Reject));
    assert_eq!(r.hits.len(), 1);
    assert_eq!(r.hits[0].site, "bl.test*1");
    assert_eq!(r.hits[0].codes, vec!["127.0.0.2".parse::<std::net::Ipv4Addr>().unwrap()]);
    assert_eq!(r.trace, vec![line("bl.test (client) 98.2.0.192.bl.test: 127.0.0.2; bl.test*1 matches (+1)")]);
}

/// A client no list knows: accepted, and with SPF off nothing else is said.
#[tokio::test]
async fn unlisted_client_is_accepted() {
    let dns = fixture().await;
    let svc = service(config(&dns, &["bl.test", "bl2.test"]));
    let d = decide(&svc, &req(CLEAN)).await;
    assert_eq!(d.action.to_string(), "DUNNO");
    assert_eq!(d.reason, "accepted");
    assert_eq!(field(&d, "dnsbl_score"), Some("0"));
    assert_eq!(field(&d, "dnsbl"), None);
    let r = report(&svc, &req(CLEAN)).await;
    assert_eq!((r.score, r.outcome), (0, Some(Outcome::Clean)));
    assert!(r.hits.is_empty() && r.errors.is_empty() && r.skipped.is_empty(), "{r:?}");
    assert_eq!(
        r.trace,
        vec![
            line("bl.test (client) 10.2.0.192.bl.test: not listed"),
            line("bl2.test (client) 10.2.0.192.bl2.test: not listed")
        ]
    );
    assert_eq!(dns.queries_for("10.2.0.192.bl.test", RecordType::TXT), 0, "no reason is fetched for a clean client");
}

// ---------------------------------------------------------------------------------------
// 2. Filters, weights, thresholds
// ---------------------------------------------------------------------------------------

/// A reply outside the entry's filter does not count; without the filter it does.
#[tokio::test]
async fn reply_outside_the_filter_does_not_count() {
    let dns = fixture().await;
    let svc = service(config(&dns, &["bl.test=127.0.0.[2..11]"]));
    assert_eq!(answer(&svc, &req("192.0.2.97")).await, "DUNNO");
    let r = report(&svc, &req("192.0.2.97")).await;
    assert_eq!((r.score, r.hits.len()), (0, 0));
    assert_eq!(
        r.trace,
        vec![line("bl.test (client) 97.2.0.192.bl.test: 127.0.0.20; bl.test=127.0.0.[2..11]*1 no match")]
    );
    // The same client, the same list, no filter: listed.
    let svc = service(config(&dns, &["bl.test"]));
    assert_eq!(answer(&svc, &req("192.0.2.97")).await, reject("Client host", "192.0.2.97", "bl.test", None));
}

/// Two entries of one zone share its query; each matches on its own filter and the weights
/// sum.
#[tokio::test]
async fn entries_of_one_zone_sum_their_weights() {
    let dns = fixture().await;
    let mut c = config(&dns, &["multi.test=127.0.0.2*2", "multi.test=127.0.0.[3..4]*3"]);
    c.dnsbl.reject_threshold = 5;
    c.dnsbl.defer_threshold = 0;
    c.dnsbl.header_threshold = 1;
    let svc = service(c);
    let r = report(&svc, &req("192.0.2.60")).await;
    assert_eq!((r.score, r.outcome), (5, Some(Outcome::Reject)));
    let sites: Vec<&str> = r.hits.iter().map(|h| h.site.as_str()).collect();
    assert_eq!(sites, ["multi.test=127.0.0.2*2", "multi.test=127.0.0.[3..4]*3"]);
    assert_eq!(dns.queries_for("60.2.0.192.multi.test", RecordType::A), 1, "one query for both entries");
    assert_eq!(
        answer(&svc, &req("192.0.2.60")).await,
        reject("Client host", "192.0.2.60", "multi.test", None),
        "a cached answer decides the same"
    );
    assert_eq!(dns.queries_for("60.2.0.192.multi.test", RecordType::A), 1);
    // Only 127.0.0.3: the second entry alone, below the reject threshold.
    let r = report(&svc, &req("192.0.2.61")).await;
    assert_eq!((r.score, r.outcome), (3, Some(Outcome::Header)));
    assert_eq!(
        r.trace,
        vec![line(
            "multi.test (client) 61.2.0.192.multi.test: 127.0.0.3; multi.test=127.0.0.2*2 no match; \
               multi.test=127.0.0.[3..4]*3 matches (+3)"
        )]
    );
    assert_eq!(
        answer(&svc, &req("192.0.2.61")).await,
        "PREPEND X-Postward-DNSBL: score=3 listed=multi.test(127.0.0.3)"
    );
}

/// Lists weighted 2 and 3 against reject 5, defer 3, header 1.
#[tokio::test]
async fn weights_and_thresholds() {
    let dns = fixture().await;
    let mut c = config(&dns, &["bl2.test*2", "bl3.test*3"]);
    c.dnsbl.reject_threshold = 5;
    c.dnsbl.defer_threshold = 3;
    c.dnsbl.header_threshold = 1;
    let svc = service(c);
    // Both lists: 5, rejected, named after the heavier list.
    let d = decide(&svc, &req("192.0.2.1")).await;
    assert_eq!(d.action.to_string(), reject("Client host", "192.0.2.1", "bl3.test", None));
    assert_eq!(field(&d, "dnsbl_score"), Some("5"));
    assert_eq!(field(&d, "dnsbl"), Some("bl2.test:client:192.0.2.1,bl3.test:client:192.0.2.1"));
    // Only the list weighted 3: deferred with defer_text.
    let d = decide(&svc, &req("192.0.2.2")).await;
    assert_eq!(
        d.action.to_string(),
        "DEFER_IF_PERMIT 4.7.1 Service temporarily unavailable; Client host [192.0.2.2] listed by bl3.test"
    );
    assert_eq!(d.reason, "dnsbl-defer");
    // Only the list weighted 2: accepted with the score header.
    let d = decide(&svc, &req("192.0.2.3")).await;
    assert_eq!(d.action.to_string(), "PREPEND X-Postward-DNSBL: score=2 listed=bl2.test(127.0.0.2)");
    assert_eq!(d.reason, "accepted");
    // Neither: nothing.
    assert_eq!(answer(&svc, &req(CLEAN)).await, "DUNNO");
}

/// dry_run: the would-be answer is logged, the header goes out instead.
#[tokio::test]
async fn dry_run_only_adds_the_header() {
    let dns = fixture().await;
    let mut c = config(&dns, &["bl.test"]);
    c.dnsbl.dry_run = true;
    let svc = service(c);
    let d = decide(&svc, &req(LISTED)).await;
    assert_eq!(d.action.to_string(), "PREPEND X-Postward-DNSBL: score=1 listed=bl.test(127.0.0.2)");
    assert_eq!(
        field(&d, "dnsbl_dry_run_would"),
        Some(reject("Client host", LISTED, "bl.test", Some(LISTED_WHY)).as_str())
    );
}

/// Custom texts with every placeholder.
#[tokio::test]
async fn reply_templates_expand_every_placeholder() {
    let dns = fixture().await;
    let mut c = config(&dns, &["bl.test*2"]);
    c.dnsbl.reject_text = "{ip} scored {score} ({class}: {what} on {list}){reason}".into();
    let svc = service(c);
    assert_eq!(
        answer(&svc, &req(LISTED)).await,
        format!("REJECT 5.7.1 192.0.2.99 scored 2 (Client host: 192.0.2.99 on bl.test); {LISTED_WHY}")
    );
}

// ---------------------------------------------------------------------------------------
// 3. Allowlists
// ---------------------------------------------------------------------------------------

const WL: &str = "wl.test=127.0.[0..255].[1..3]*-5";
const SPF_FAIL: &str = "550 5.7.23 SPF fail: fail.spf.test does not allow 192.0.2.50 to send mail (mailfrom).";

/// An allowlisted client skips SPF by default (`allow_skips_spf`), and is checked with
/// `allow_skips_spf = false`.
#[tokio::test]
async fn allowlisted_client_skips_spf_unless_configured() {
    let dns = fixture().await;
    let mut c = config(&dns, &[WL]);
    c.spf.enabled = true;
    let svc = service(c.clone());
    let forged = req("192.0.2.50").with("sender", "a@fail.spf.test");
    let d = decide(&svc, &forged).await;
    assert_eq!(d.action.to_string(), "PREPEND X-Postward-DNSBL: score=-5 listed=wl.test(127.0.10.2)");
    assert_eq!(d.reason, "dnsbl-allowlisted");
    let reports = evaluate(&svc, &forged).await;
    assert!(reports.spf.is_none(), "SPF is skipped: {:?}", reports.spf);
    let r = reports.dnsbl.unwrap();
    assert_eq!((r.score, r.outcome), (-5, Some(Outcome::Allowlisted)));
    assert_eq!(dns.queries_for("fail.spf.test", RecordType::TXT), 0);

    c.dnsbl.allow_skips_spf = false;
    let svc = service(c);
    let reports = evaluate(&svc, &forged).await;
    assert!(reports.spf.is_some(), "SPF is evaluated");
    assert_eq!(reports.dnsbl.unwrap().outcome, Some(Outcome::Allowlisted));
    assert_eq!(answer(&svc, &forged).await, SPF_FAIL);

    // A code the allowlist entry's filter leaves out (127.0.10.0): not allowlisted, SPF runs.
    let c = {
        let mut c = config(&dns, &[WL]);
        c.spf.enabled = true;
        c
    };
    let svc = service(c);
    let other = req("192.0.2.52").with("sender", "a@fail.spf.test");
    let reports = evaluate(&svc, &other).await;
    assert_eq!(reports.dnsbl.unwrap().outcome, Some(Outcome::Clean));
    assert!(reports.spf.is_some());
}

/// An allowlisting outweighs a listing of smaller weight: -5 + 3 = -2 <= -1.
#[tokio::test]
async fn allowlist_overrides_a_lighter_listing() {
    let dns = fixture().await;
    let svc = service(config(&dns, &[WL, "bl.test*3"]));
    let d = decide(&svc, &req("192.0.2.51")).await;
    assert_eq!(
        d.action.to_string(),
        "PREPEND X-Postward-DNSBL: score=-2 listed=wl.test(127.0.10.2),bl.test(127.0.0.2)"
    );
    assert_eq!(d.reason, "dnsbl-allowlisted");
    assert_eq!(field(&d, "dnsbl_score"), Some("-2"));
    // The same listing alone rejects.
    assert_eq!(answer(&svc, &req(LISTED_NO_TXT)).await, reject("Client host", LISTED_NO_TXT, "bl.test", None));
    // A heavier listing wins over the allowlist: -5 + 6 = 1.
    let svc = service(config(&dns, &[WL, "bl.test*6"]));
    assert_eq!(answer(&svc, &req("192.0.2.51")).await, reject("Client host", "192.0.2.51", "bl.test", None));
}

// ---------------------------------------------------------------------------------------
// 4. Answers that are never listings
// ---------------------------------------------------------------------------------------

/// 127.255.255.254 (Spamhaus: refused resolver), 127.0.0.255 (DNSWL: refused) and an answer
/// outside 127/8 (a parked domain) never count, even without a filter.
#[tokio::test]
async fn blocked_and_foreign_codes_never_count() {
    let dns = fixture().await;
    let svc = service(config(&dns, &["blocked.test", "wlblock.test", "parked.test"]));
    let d = decide(&svc, &req("192.0.2.70")).await;
    assert_eq!(d.action.to_string(), "DUNNO");
    assert_eq!(field(&d, "dnsbl"), None);
    let r = report(&svc, &req("192.0.2.70")).await;
    assert!(r.hits.is_empty(), "{r:?}");
    assert!(r.skipped.is_empty() && r.errors.is_empty(), "{r:?}");
    assert_eq!((r.score, r.outcome), (0, Some(Outcome::Clean)));
    assert_eq!(
        r.trace,
        vec![
            line(
                "blocked.test (client) 70.2.0.192.blocked.test: (ignored, not listing codes: 127.255.255.254); \
               blocked.test*1 no match"
            ),
            line(
                "wlblock.test (client) 70.2.0.192.wlblock.test: (ignored, not listing codes: 127.0.0.255); \
               wlblock.test*1 no match"
            ),
            line(
                "parked.test (client) 70.2.0.192.parked.test: (ignored, not listing codes: 192.0.2.1); \
               parked.test*1 no match"
            ),
        ]
    );
    // Not even a filter that names the code makes it count.
    let svc = service(config(&dns, &["blocked.test=127.255.255.254", "parked.test=192.0.2.1"]));
    assert_eq!(answer(&svc, &req("192.0.2.70")).await, "DUNNO");
}

// ---------------------------------------------------------------------------------------
// 5. TXT reasons and DQS keys
// ---------------------------------------------------------------------------------------

/// Several TXT records are joined with " / ", the strings of one record without a
/// separator, and the reason is cut at 500 characters (Postfix's limit).
#[tokio::test]
async fn txt_reasons_are_joined_and_capped() {
    let dns = fixture().await;
    let svc = service(config(&dns, &["bl.test"]));
    let line = answer(&svc, &req("192.0.2.96")).await;
    let prefix = reject("Client host", "192.0.2.96", "bl.test", None);
    assert!(
        [format!("{prefix}; first reason / second reason"), format!("{prefix}; second reason / first reason")]
            .contains(&line),
        "{line}"
    );
    assert_eq!(
        answer(&svc, &req("192.0.2.95")).await,
        reject("Client host", "192.0.2.95", "bl.test", Some("part one, part two"))
    );
    assert_eq!(
        answer(&svc, &req("192.0.2.94")).await,
        reject("Client host", "192.0.2.94", "bl.test", Some(&"x".repeat(500)))
    );
}

/// A DQS key goes into the queried names, and never into a reply, a log field or a trace
/// line, not even when the list's own TXT text quotes it (in any case) or a lookup fails.
#[tokio::test]
async fn dqs_key_is_queried_but_never_shown() {
    let dns = fixture().await;
    let mut c = config(&dns, &[]);
    c.dnsbl.list = vec![ListConfig { dqs_key: "SecretKey123".into(), ..list("dq.test", &[Target::Client]) }];
    let svc = service(c);
    svc.dnsbl().unwrap().probe_all().await;
    let d = decide(&svc, &req(LISTED)).await;
    assert_eq!(
        d.action.to_string(),
        reject("Client host", LISTED, "dq.test", Some("see https://x/<key>/lookup (<key>)"))
    );
    assert_eq!(dns.queries_for(&format!("99.2.0.192.{KEY}.dq.test"), RecordType::A), 1);
    assert_eq!(dns.queries_for("99.2.0.192.dq.test", RecordType::A), 0);
    let r = report(&svc, &req(LISTED)).await;
    assert!(r.skipped.is_empty(), "the keyed test points pass: {r:?}");
    assert_eq!(r.trace, vec![line("dq.test (client) 99.2.0.192.dq.test: 127.0.0.2; dq.test*1 matches (+1)")]);
    // SERVFAIL under the key: the error says so without the key.
    let failed = req(LISTED_NO_TXT);
    let df = decide(&svc, &failed).await;
    assert_eq!(df.action.to_string(), "DUNNO");
    let rf = report(&svc, &failed).await;
    assert_eq!(rf.errors.len(), 1, "{rf:?}");
    assert!(rf.errors[0].starts_with("dq.test:"), "{rf:?}");
    for text in
        [format!("{:?}", d.fields), d.reason.clone(), format!("{r:?}"), format!("{:?}", df.fields), format!("{rf:?}")]
    {
        assert!(!text.to_ascii_lowercase().contains(KEY), "the key leaked: {text}");
    }
}

// ---------------------------------------------------------------------------------------
// 6. IPv6 clients
// ---------------------------------------------------------------------------------------

/// An IPv6 client is looked up by its 32 nibbles (RFC 5782 §2.4); an IPv4-mapped address is
/// the IPv4 client.
#[tokio::test]
async fn ipv6_client_by_nibbles() {
    let dns = fixture().await;
    let svc = service(config(&dns, &["bl.test"]));
    assert_eq!(answer(&svc, &req(V6)).await, reject("Client host", V6, "bl.test", Some("v6 listed")));
    assert_eq!(dns.queries_for(&format!("{V6_NIBBLES}.bl.test"), RecordType::A), 1);
    assert_eq!(answer(&svc, &req("2001:db8::2")).await, "DUNNO");
    assert_eq!(answer(&svc, &req("::ffff:192.0.2.98")).await, reject("Client host", LISTED_NO_TXT, "bl.test", None));
}

// ---------------------------------------------------------------------------------------
// 7. RHSBL
// ---------------------------------------------------------------------------------------

const ALL_NAMES: [Target; 4] = [Target::Sender, Target::Helo, Target::ClientName, Target::ReverseClientName];

/// Each name kind is looked up, and the reply names its class as Postfix does.
#[tokio::test]
async fn rhsbl_on_every_name_kind() {
    let dns = fixture().await;
    let mut c = config(&dns, &[]);
    c.dnsbl.list = vec![list("dbl.test=127.0.1.[2..99]", &ALL_NAMES)];
    let svc = service(c);
    let cases = [
        (req(CLEAN).with("sender", "a@Bad-Sender.test"), "Sender address", "bad-sender.test"),
        (req(CLEAN).with("helo_name", "bad-helo.test"), "Helo command", "bad-helo.test"),
        (
            req(CLEAN).with("client_name", "bad-client.test").with("reverse_client_name", "bad-client.test"),
            "Client host",
            "bad-client.test",
        ),
        (req(CLEAN).with("reverse_client_name", "bad-reverse.test"), "Unverified Client host", "bad-reverse.test"),
    ];
    for (r, class, what) in &cases {
        assert_eq!(answer(&svc, r).await, reject(class, what, "dbl.test", None), "{class}");
    }
    // The verified and the unverified name were the same: one query for both.
    assert_eq!(dns.queries_for("bad-client.test.dbl.test", RecordType::A), 1);
    let rep = report(&svc, &cases[1].0).await;
    assert_eq!(rep.hits.len(), 1);
    assert_eq!((rep.hits[0].target, rep.hits[0].what.as_str()), (Target::Helo, "bad-helo.test"));
    assert_eq!(
        rep.trace,
        vec![
            line("dbl.test (sender) sender.test.dbl.test: not listed"),
            line("dbl.test (helo) bad-helo.test.dbl.test: 127.0.1.2; dbl.test=127.0.1.[2..99]*1 matches (+1)"),
        ]
    );

    // A list asked only about senders never sees the HELO name.
    let mut c = config(&dns, &[]);
    c.dnsbl.list = vec![ListConfig { probe: false, ..list("dbl.test", &[Target::Sender]) }];
    let svc = service(c);
    dns.reset_counts();
    assert_eq!(answer(&svc, &req(CLEAN).with("helo_name", "bad-helo.test")).await, "DUNNO");
    assert_eq!(dns.queries_for("bad-helo.test.dbl.test", RecordType::A), 0);
    assert_eq!(dns.queries_for("sender.test.dbl.test", RecordType::A), 1);
}

/// Address literals, bare addresses and names ending in a numeric label are never sent to
/// an RHSBL; neither are `unknown` and the null sender.
#[tokio::test]
async fn rhsbl_never_queries_addresses() {
    let dns = fixture().await;
    let mut c = config(&dns, &[]);
    c.dnsbl.list = vec![ListConfig { probe: false, ..list("dbl.test", &ALL_NAMES) }];
    let svc = service(c);
    let requests = [
        req(CLEAN).with("helo_name", "[192.0.2.1]").with("sender", "a@[192.0.2.1]"),
        req(CLEAN)
            .with("helo_name", "host.example.123")
            .with("sender", "a@mail.456")
            .with("client_name", "192.0.2.1")
            .with("reverse_client_name", "[IPv6:2001:db8::1]"),
        req(CLEAN).with("helo_name", "192.0.2.1").with("sender", ""),
    ];
    for r in &requests {
        assert_eq!(answer(&svc, r).await, "DUNNO");
        let rep = report(&svc, r).await;
        assert!(rep.trace.is_empty() && rep.errors.is_empty(), "{rep:?}");
    }
    assert_eq!(dns.queries_for("192.0.2.1.dbl.test", RecordType::A), 0);
    assert_eq!(dns.queries_for("host.example.123.dbl.test", RecordType::A), 0);
    assert_eq!(dns.queries_for("mail.456.dbl.test", RecordType::A), 0);
    assert_eq!(dns.queries(), 0, "no query at all: {dns:?}");
}

// ---------------------------------------------------------------------------------------
// 8. Timeouts, concurrency, cache, in-flight sharing
// ---------------------------------------------------------------------------------------

/// A list that never answers counts as not listed once `[dnsbl] timeout` passes; the other
/// lists still decide, and the whole check takes about the timeout.
#[tokio::test]
async fn a_list_timing_out_counts_as_not_listed() {
    let dns = zones().timeout("slow.test").start().await.unwrap();
    let mut c = config(&dns, &["bl.test", "slow.test"]);
    c.dnsbl.timeout = ConfigDuration::millis(300);
    let svc = service(c);
    let start = Instant::now();
    let r = report(&svc, &req(LISTED_NO_TXT)).await;
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(280), "waited for the slow list until the deadline: {took:?}");
    assert!(took < Duration::from_millis(900), "the check's timeout bounds it, not the resolver's 1s: {took:?}");
    assert_eq!(r.errors, vec![line("slow.test:timeout")]);
    assert_eq!(r.outcome, Some(Outcome::Reject));
    assert!(
        r.trace.contains(&line("slow.test (client) 98.2.0.192.slow.test: timed out, counted as not listed")),
        "{r:?}"
    );
    let d = decide(&svc, &req(LISTED_NO_TXT)).await;
    assert_eq!(d.action.to_string(), reject("Client host", LISTED_NO_TXT, "bl.test", None));
    assert_eq!(field(&d, "dnsbl_error"), Some("slow.test:timeout"));

    // The slow list used up the deadline, yet the reply still carries the TXT reason: its
    // lookup gets a grace of its own.
    let d = decide(&svc, &req(LISTED)).await;
    assert_eq!(d.action.to_string(), reject("Client host", LISTED, "bl.test", Some(LISTED_WHY)));

    // Only the slow list: fail-open.
    let mut c = config(&dns, &["slow.test"]);
    c.dnsbl.timeout = ConfigDuration::millis(300);
    let svc = service(c);
    let start = Instant::now();
    let d = decide(&svc, &req(LISTED)).await;
    let took = start.elapsed();
    assert_eq!(d.action.to_string(), "DUNNO");
    assert_eq!(d.reason, "accepted");
    assert_eq!(field(&d, "dnsbl_error"), Some("slow.test:timeout"));
    assert!(took < Duration::from_millis(900), "{took:?}");
    assert!(dns.queries_for("99.2.0.192.slow.test", RecordType::A) >= 1);
}

/// All lists are asked at once: three lists answering after 200 ms each take about 200 ms,
/// not 600 ms.
#[tokio::test]
async fn lists_are_queried_concurrently() {
    let delay = Duration::from_millis(200);
    let dns = zones().delay("d1.test", delay).delay("d2.test", delay).delay("d3.test", delay).start().await.unwrap();
    let svc = service(config(&dns, &["d1.test", "d2.test", "d3.test"]));
    let start = Instant::now();
    let r = report(&svc, &req(CLEAN)).await;
    let took = start.elapsed();
    assert_eq!(r.trace.len(), 3, "{r:?}");
    assert!(r.errors.is_empty(), "{r:?}");
    assert!(took >= Duration::from_millis(190), "the fixture delays each answer: {took:?}");
    assert!(took < Duration::from_millis(500), "concurrent, not one after another: {took:?}");
    for zone in ["d1.test", "d2.test", "d3.test"] {
        assert_eq!(dns.queries_for(&format!("10.2.0.192.{zone}"), RecordType::A), 1, "{zone}");
    }
}

/// Answers are cached: the same client again costs no query, listed (A and TXT) or not.
#[tokio::test]
async fn answers_are_cached() {
    let dns = fixture().await;
    let svc = service(config(&dns, &["bl.test"]));
    for ip in [LISTED, CLEAN] {
        let first = answer(&svc, &req(ip)).await;
        let second = answer(&svc, &req(ip)).await;
        assert_eq!(first, second);
    }
    assert_eq!(dns.queries_for("99.2.0.192.bl.test", RecordType::A), 1);
    assert_eq!(dns.queries_for("99.2.0.192.bl.test", RecordType::TXT), 1);
    assert_eq!(dns.queries_for("10.2.0.192.bl.test", RecordType::A), 1, "the NXDOMAIN is cached too");
}

/// `max_ttl` cuts a record's TTL (300 s here to 1 s): asked again after that, the list is
/// queried again, and not before.
#[tokio::test]
async fn max_ttl_expires_answers() {
    let dns = fixture().await;
    let mut c = config(&dns, &["bl.test"]);
    c.dnsbl.min_ttl = ConfigDuration::secs(0);
    c.dnsbl.max_ttl = ConfigDuration::secs(1);
    let svc = service(c);
    let want = reject("Client host", LISTED, "bl.test", Some(LISTED_WHY));
    assert_eq!(answer(&svc, &req(LISTED)).await, want);
    assert_eq!(answer(&svc, &req(LISTED)).await, want);
    assert_eq!(dns.queries_for("99.2.0.192.bl.test", RecordType::A), 1, "cached within max_ttl");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(answer(&svc, &req(LISTED)).await, want);
    assert_eq!(dns.queries_for("99.2.0.192.bl.test", RecordType::A), 2, "expired after max_ttl");
    assert_eq!(dns.queries_for("99.2.0.192.bl.test", RecordType::TXT), 2);
}

/// `min_ttl` keeps a record with TTL 0 (the default 60 s); with `min_ttl = 0` it is not
/// kept at all.
#[tokio::test]
async fn min_ttl_keeps_zero_ttl_answers() {
    let dns = fixture().await;
    let svc = service(config(&dns, &["zero.test"]));
    for _ in 0..2 {
        assert_eq!(answer(&svc, &req(LISTED)).await, reject("Client host", LISTED, "zero.test", None));
    }
    assert_eq!(dns.queries_for("99.2.0.192.zero.test", RecordType::A), 1, "kept for min_ttl");

    let mut c = config(&dns, &["zero.test"]);
    c.dnsbl.min_ttl = ConfigDuration::secs(0);
    let svc = service(c);
    dns.reset_counts();
    for _ in 0..2 {
        assert_eq!(answer(&svc, &req(LISTED)).await, reject("Client host", LISTED, "zero.test", None));
    }
    assert_eq!(dns.queries_for("99.2.0.192.zero.test", RecordType::A), 2, "TTL 0 and no min_ttl: not kept");
}

/// Twenty messages from one client at once, before anything is cached: one query per name.
#[tokio::test]
async fn concurrent_requests_share_one_query() {
    let dns = zones().delay("d1.test", Duration::from_millis(200)).start().await.unwrap();
    let svc = Arc::new(service(config(&dns, &["d1.test"])));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let svc = Arc::clone(&svc);
        tasks.spawn(async move { answer(&*svc, &req(LISTED)).await });
    }
    let want = reject("Client host", LISTED, "d1.test", Some("d1 reason"));
    let mut answers = 0;
    while let Some(line) = tasks.join_next().await {
        assert_eq!(line.unwrap(), want);
        answers += 1;
    }
    assert_eq!(answers, 20);
    assert_eq!(dns.queries_for("99.2.0.192.d1.test", RecordType::A), 1);
    assert_eq!(dns.queries_for("99.2.0.192.d1.test", RecordType::TXT), 1);
}

// ---------------------------------------------------------------------------------------
// 9. RFC 5782 test points
// ---------------------------------------------------------------------------------------

/// Lists failing their test points (127.0.0.2 not listed, 127.0.0.1 listed, a blocked
/// code) are skipped without a query; a list with `probe = false` is used regardless.
#[tokio::test]
async fn lists_failing_their_test_points_are_skipped() {
    let dns = fixture().await;
    let mut c = config(&dns, &["nolist.test", "all.test", "refused.test"]);
    c.dnsbl.list = vec![ListConfig { probe: false, ..list("noprobe.test", &[Target::Client]) }];
    let svc = service(c);
    let check = svc.dnsbl().unwrap();
    check.probe_all().await;
    let usable: Vec<(&str, bool)> = check.zones().iter().map(|z| (z.display.as_str(), z.health.usable())).collect();
    assert_eq!(usable, [("nolist.test", false), ("all.test", false), ("refused.test", false), ("noprobe.test", true)]);

    let r = report(&svc, &req(LISTED)).await;
    assert_eq!(
        r.skipped,
        vec![
            (
                line("nolist.test"),
                line("test point 127.0.0.2 is not listed (the zone is gone or not an RFC 5782 list)")
            ),
            (line("all.test"), line("test point 127.0.0.1 is listed (the zone lists everything)")),
            (
                line("refused.test"),
                line(
                    "test point 127.0.0.2 answered 127.255.255.254: the list refuses this resolver or is not a DNS \
                     list"
                )
            ),
        ]
    );
    for zone in ["nolist.test", "all.test", "refused.test"] {
        assert_eq!(dns.queries_for(&format!("99.2.0.192.{zone}"), RecordType::A), 0, "{zone} skipped");
    }
    let d = decide(&svc, &req(LISTED)).await;
    assert_eq!(d.action.to_string(), reject("Client host", LISTED, "noprobe.test", None));
    assert_eq!(field(&d, "dnsbl_skipped"), Some("nolist.test,all.test,refused.test"));
    assert_eq!(dns.queries_for("2.0.0.127.noprobe.test", RecordType::A), 0, "probe = false: never probed");

    // The broken lists alone: the client is accepted.
    let mut c = config(&dns, &["nolist.test", "all.test"]);
    c.dnsbl.list.clear();
    let svc = service(c);
    svc.dnsbl().unwrap().probe_all().await;
    assert_eq!(answer(&svc, &req(LISTED)).await, "DUNNO");
}

/// An RHSBL's test points are the names `test` (listed) and `invalid` (not).
#[tokio::test]
async fn rhsbl_test_points() {
    let dns = fixture().await;
    let mut c = config(&dns, &[]);
    c.dnsbl.list = vec![list("dbl.test", &[Target::Helo]), list("bl.test", &[Target::Sender])];
    let svc = service(c);
    let check = svc.dnsbl().unwrap();
    check.probe_all().await;
    assert!(check.zones()[0].health.usable(), "{}", check.zones()[0].health.broken_why());
    assert_eq!(
        check.zones()[1].health.broken_why(),
        "test point the name test is not listed (the zone is gone or not an RFC 5782 list)"
    );
    assert!(dns.queries_for("test.dbl.test", RecordType::A) >= 1);
    assert!(dns.queries_for("invalid.dbl.test", RecordType::A) >= 1);
    assert_eq!(dns.queries_for("2.0.0.127.dbl.test", RecordType::A), 0, "no address test points for an RHSBL");
}

// ---------------------------------------------------------------------------------------
// 10. Configuration errors
// ---------------------------------------------------------------------------------------

fn config_error(toml_text: &str) -> (String, String) {
    let config: Config = toml::from_str(toml_text).unwrap();
    config.validate().expect_err(toml_text)
}

#[test]
fn configuration_errors_name_the_key_and_the_text() {
    let (key, msg) = config_error("[dnsbl]\nsites = [\"bl.test=127.0.0.[2..x]\"]\n");
    assert_eq!(key, "dnsbl.sites[0]");
    assert!(msg.contains("bad DNSBL filter \"127.0.0.[2..x]\" in \"bl.test=127.0.0.[2..x]\""), "{msg}");
    assert!(msg.contains("at \"127.0.0.[>2<..x]\""), "{msg}");

    let (key, msg) = config_error("[dnsbl]\nsites = [\"bl.test\", \"bl2.test*x\"]\n");
    assert_eq!((key.as_str(), msg.as_str()), ("dnsbl.sites[1]", "bad DNSBL weight factor \"x\" in \"bl2.test*x\""));

    let (key, msg) = config_error("[[dnsbl.list]]\nsite = \"dbl.test*1.5\"\nquery = [\"sender\"]\n");
    assert_eq!(
        (key.as_str(), msg.as_str()),
        ("dnsbl.list[0].site", "bad DNSBL weight factor \"1.5\" in \"dbl.test*1.5\"")
    );

    let (key, _) = config_error("[[dnsbl.list]]\nsite = \"dq.test\"\ndqs_key = \"not-a-label\"\n");
    assert_eq!(key, "dnsbl.list[0].dqs_key");

    let (key, msg) = config_error("[[dnsbl.list]]\nsite = \"dbl.test\"\nquery = []\n");
    assert_eq!((key.as_str(), msg.as_str()), ("dnsbl.list[0].query", "must name at least one target"));

    let (key, msg) = config_error("[dnsbl]\nallow_threshold = 2\n");
    assert_eq!((key.as_str(), msg.as_str()), ("dnsbl.allow_threshold", "must be negative (or 0 to turn it off)"));

    let (key, msg) = config_error("[dnsbl]\nreject_text = \"blocked by {zone}\"\n");
    assert_eq!(key, "dnsbl.reject_text");
    assert_eq!(msg, "unknown placeholder {zone} (known: list, class, what, reason, score, ip)");

    let (key, _) = config_error("[dnsbl]\nmin_ttl = \"2h\"\nmax_ttl = \"1h\"\n");
    assert_eq!(key, "dnsbl.min_ttl");

    // An unknown target is refused when parsing.
    assert!(toml::from_str::<Config>("[[dnsbl.list]]\nsite = \"dbl.test\"\nquery = [\"recipient\"]\n").is_err());

    // A valid configuration with every kind of entry.
    let config: Config = toml::from_str(
        "[dnsbl]\nsites = [\"bl.test=127.0.0.[2..11]*3\", \"wl.test=127.0.[0..255].[1..3]*-5\"]\n\
         reject_threshold = 5\ndefer_threshold = 3\nallow_threshold = -1\ntimeout = \"300ms\"\n\n\
         [[dnsbl.list]]\nsite = \"dbl.test=127.0.1.[2..99]*2\"\nquery = [\"sender\", \"helo\", \"client_name\", \
         \"reverse_client_name\"]\n\n[[dnsbl.list]]\nsite = \"dq.test\"\ndqs_key = \"secretkey123\"\nprobe = false\n",
    )
    .unwrap();
    config.validate().unwrap();
    let lists = config.dnsbl.lists().unwrap();
    assert_eq!(lists.len(), 4);
    assert_eq!(lists[3].dqs_key.as_deref(), Some("secretkey123"));
    assert!(!lists[3].probe);
}

// ---------------------------------------------------------------------------------------
// 11. The `check` command
// ---------------------------------------------------------------------------------------

/// `postward-policyd check` prints each query with its answer, the score and the action,
/// and exits 1 for a refusal, 0 otherwise. Requires `cargo build --workspace` first.
#[tokio::test]
async fn check_command_shows_queries_score_and_action() {
    let dns = fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policyd.toml");
    let text = format!(
        "[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\nattempts = 1\n\n[dnsbl]\nsites = [\"bl.test\", \
         \"nolist.test\"]\n\n[spf]\nenabled = false\n",
        dns.nameserver()
    );
    std::fs::write(&path, text).unwrap();
    let run = |ip: &'static str| {
        let path = path.clone();
        async move {
            let out = tokio::process::Command::new(bin_path("postward-policyd"))
                .args(["check", "--config", path.to_str().unwrap(), "--ip", ip])
                .output()
                .await
                .unwrap();
            (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
        }
    };

    let (code, text) = run(LISTED).await;
    assert_eq!(code, Some(1), "a refusal exits 1:\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    for want in [
        "dnsbl: nolist.test skipped: test point 127.0.0.2 is not listed (the zone is gone or not an RFC 5782 list)",
        "dnsbl: bl.test (client) 99.2.0.192.bl.test: 127.0.0.2; bl.test*1 matches (+1)",
        "dnsbl score: 1 -> reject",
        &format!("dnsbl reason: {LISTED_WHY}"),
        &format!("action: {}", reject("Client host", LISTED, "bl.test", Some(LISTED_WHY))),
    ] {
        assert!(lines.contains(&want), "missing {want:?} in:\n{text}");
    }

    let (code, text) = run(CLEAN).await;
    assert_eq!(code, Some(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    for want in ["dnsbl: bl.test (client) 10.2.0.192.bl.test: not listed", "dnsbl score: 0 -> clean", "action: DUNNO"] {
        assert!(lines.contains(&want), "missing {want:?} in:\n{text}");
    }
}

/// Loopback, private and link-local clients are not sent to a list by default (no list can
/// know them), and the skip is said in the log line: `dnsbl_skipped=private-client`.
#[tokio::test]
async fn private_clients_are_not_queried() {
    let dns = zones().start().await.unwrap();
    let svc = service(config(&dns, &["bl.test"]));
    for ip in ["10.1.2.3", "192.168.7.7", "127.0.0.1", "fd00::7", "fe80::1"] {
        let d = decide(&svc, &req(ip)).await;
        assert_eq!(d.action.to_string(), "DUNNO", "{ip}");
        assert_eq!(field(&d, "dnsbl_skipped"), Some("private-client"), "{ip}");
    }
    let d = decide(&svc, &req(CLEAN)).await;
    assert_eq!(field(&d, "dnsbl_skipped"), None, "a public client is not skipped");
    let probes = dns.queries();
    assert_eq!(answer(&svc, &req(LISTED)).await, reject("Client host", LISTED, "bl.test", Some(LISTED_WHY)));
    assert!(dns.queries() > probes, "a public client is queried");
    for name in ["3.2.1.10.bl.test", "7.7.168.192.bl.test", "1.0.0.127.bl.test"] {
        assert!(dns.queries_for(name, RecordType::A) <= 1, "{name}: only the prober's test point, never a client");
    }
    assert_eq!(dns.queries_for("3.2.1.10.bl.test", RecordType::A), 0);
}

/// `query_private_clients = true` (clients seen through a NAT or proxy, tests on loopback):
/// private addresses are queried like any other, and a listed one is rejected.
#[tokio::test]
async fn private_clients_are_queried_when_asked_to() {
    let dns = zones().a("5.0.0.10.bl.test", "127.0.0.2").a("1.1.168.192.bl.test", "127.0.0.2").start().await.unwrap();
    let mut cfg = config(&dns, &["bl.test"]);
    cfg.dnsbl.query_private_clients = true;
    let svc = service(cfg);
    let d = decide(&svc, &req("10.0.0.5")).await;
    assert_eq!(d.action.to_string(), reject("Client host", "10.0.0.5", "bl.test", None));
    assert_eq!(field(&d, "dnsbl_skipped"), None);
    assert_eq!(dns.queries_for("5.0.0.10.bl.test", RecordType::A), 1);
    let d = decide(&svc, &req("192.168.1.1")).await;
    assert_eq!(d.action.to_string(), reject("Client host", "192.168.1.1", "bl.test", None));
    assert_eq!(answer(&svc, &req("10.9.9.9")).await, "DUNNO", "an unlisted private client");
}
