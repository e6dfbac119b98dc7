//! viaspf over our hickory adapter (`shared::dns::SpfLookup`), against the in-process DNS
//! fixture: each RFC 7208 result the adapter's error mapping decides.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::Duration;

use postward_tests::dns::DnsFixture;
use shared::dns::SpfLookup;
use viaspf::{Config, Sender, SpfResult, evaluate_sender};

async fn fixture() -> DnsFixture {
    DnsFixture::builder()
        .zone("spf.test")
        .txt("pass.spf.test", "v=spf1 ip4:192.0.2.0/24 -all")
        .txt_strings("multi.spf.test", &["v=spf1 include:inc.spf.test ", "-all"])
        .txt("inc.spf.test", "v=spf1 a:host.spf.test mx ~all")
        .a("host.spf.test", "198.51.100.7")
        .mx("inc.spf.test", 10, "mx.spf.test")
        .a("mx.spf.test", "198.51.100.25")
        .aaaa("mx.spf.test", "2001:db8::25")
        .txt("fail.spf.test", "v=spf1 -all exp=why.spf.test")
        .txt("why.spf.test", "%{i} may not send for %{d}")
        .txt("void.spf.test", "v=spf1 a:n1.spf.test a:n2.spf.test a:n3.spf.test -all")
        .txt("ptr.spf.test", "v=spf1 ptr -all")
        .ptr_for("192.0.2.99", "mail.ptr.spf.test")
        .a("mail.ptr.spf.test", "192.0.2.99")
        .timeout("slow.spf.test")
        .servfail("broken.spf.test")
        .start()
        .await
        .unwrap()
}

async fn check(dns: &DnsFixture, ip: &str, sender: &str) -> viaspf::QueryResult {
    let lookup = SpfLookup(dns.shared_resolver());
    let config = Config::builder().timeout(Duration::from_secs(5)).build();
    let sender: Sender = sender.parse().unwrap();
    let ip: IpAddr = ip.parse().unwrap();
    evaluate_sender(&lookup, &config, ip, &sender, None).await
}

#[tokio::test]
async fn results_through_our_adapter() {
    let dns = fixture().await;
    let cases: &[(&str, &str, &str, &str)] = &[
        ("ip4 pass", "192.0.2.5", "a@pass.spf.test", "pass"),
        ("ip4 fail", "203.0.113.5", "a@pass.spf.test", "fail"),
        ("multi-string TXT, include, a", "198.51.100.7", "a@multi.spf.test", "pass"),
        ("include, mx (v4)", "198.51.100.25", "a@multi.spf.test", "pass"),
        ("include, mx (v6)", "2001:db8::25", "a@multi.spf.test", "pass"),
        ("include ~all does not match, outer -all", "203.0.113.9", "a@multi.spf.test", "fail"),
        ("NODATA (name without TXT): none", "192.0.2.5", "a@host.spf.test", "none"),
        ("NXDOMAIN: none", "192.0.2.5", "a@absent.spf.test", "none"),
        ("name outside every zone (REFUSED): temperror", "192.0.2.5", "a@absent.example.test", "temperror"),
        ("void lookups over the limit: permerror", "192.0.2.5", "a@void.spf.test", "permerror"),
        ("ptr validated", "192.0.2.99", "a@ptr.spf.test", "pass"),
        ("SERVFAIL: temperror", "192.0.2.5", "a@broken.spf.test", "temperror"),
        ("timeout: temperror", "192.0.2.5", "a@slow.spf.test", "temperror"),
    ];
    for (label, ip, sender, want) in cases {
        let result = check(&dns, ip, sender).await;
        let got = match &result.spf_result {
            SpfResult::Pass => "pass",
            SpfResult::Fail(_) => "fail",
            SpfResult::Softfail => "softfail",
            SpfResult::Neutral => "neutral",
            SpfResult::None => "none",
            SpfResult::Temperror => "temperror",
            SpfResult::Permerror => "permerror",
        };
        assert_eq!(got, *want, "{label}: {result:?}");
    }
}

#[tokio::test]
async fn explanation_is_expanded() {
    let dns = fixture().await;
    let result = check(&dns, "203.0.113.5", "a@fail.spf.test").await;
    let SpfResult::Fail(exp) = result.spf_result else { panic!("expected fail: {result:?}") };
    assert_eq!(exp.to_string(), "203.0.113.5 may not send for fail.spf.test");
}
