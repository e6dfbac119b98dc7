//! The in-process DNS fixture, checked through the resolver the daemons use
//! (`shared::dns::DnsConfig::build`), so a passing test here means both sides agree.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RData;
use postward_tests::dns::{self, DnsFixture, FixtureError, RecordType};

const DELAY: Duration = Duration::from_millis(200);

/// The zone most tests share.
async fn example() -> DnsFixture {
    DnsFixture::builder()
        .zone_with_negative_ttl("example.test", 60)
        .a("mx.example.test", "192.0.2.1")
        .aaaa("mx.example.test", "2001:db8::1")
        .txt("example.test", "v=spf1 mx -all")
        .txt_strings("long.example.test", &["v=spf1 ", "ip4:192.0.2.0/24 -all"])
        .mx("example.test", 10, "mx.example.test")
        .ptr_for("192.0.2.1", "mx.example.test")
        .ptr_for("2001:db8::1", "mx.example.test")
        .timeout("slow.example.test")
        .servfail("broken.example.test")
        .delay("lag.example.test", DELAY)
        .a("lag.example.test", "192.0.2.9")
        .start()
        .await
        .expect("the example zone is valid")
}

fn rdata(lookup: &Lookup) -> Vec<RData> {
    lookup.answers().iter().map(|r| r.data.clone()).collect()
}

fn txt_strings(lookup: &Lookup) -> Vec<Vec<String>> {
    lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(txt.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect()),
            _ => None,
        })
        .collect()
}

fn no_records(error: &NetError) -> &NoRecords {
    match error {
        NetError::Dns(DnsError::NoRecordsFound(no_records)) => no_records,
        other => panic!("expected no records, got {other:?}"),
    }
}

#[tokio::test]
async fn a_record_matches_case_insensitively() {
    let dns = example().await;
    let resolver = dns.resolver();
    for name in ["mx.example.test.", "MX.Example.TEST."] {
        let lookup = resolver.ipv4_lookup(name).await.unwrap();
        let addrs: Vec<IpAddr> = lookup.answers().iter().filter_map(|r| r.data.ip_addr()).collect();
        assert_eq!(addrs, ["192.0.2.1".parse::<IpAddr>().unwrap()], "{name}");
    }
}

#[tokio::test]
async fn aaaa_record() {
    let dns = example().await;
    let lookup = dns.resolver().ipv6_lookup("mx.example.test.").await.unwrap();
    let addrs: Vec<IpAddr> = lookup.answers().iter().filter_map(|r| r.data.ip_addr()).collect();
    assert_eq!(addrs, ["2001:db8::1".parse::<IpAddr>().unwrap()]);
}

#[tokio::test]
async fn txt_single_and_multi_string() {
    let dns = example().await;
    let resolver = dns.resolver();
    let single = resolver.txt_lookup("example.test.").await.unwrap();
    assert_eq!(txt_strings(&single), [["v=spf1 mx -all"]]);
    let multi = resolver.txt_lookup("long.example.test.").await.unwrap();
    assert_eq!(txt_strings(&multi), [["v=spf1 ", "ip4:192.0.2.0/24 -all"]]);
}

#[tokio::test]
async fn long_txt_is_split_into_255_byte_strings() {
    let text = "a".repeat(300);
    let dns = DnsFixture::builder().zone("example.test").txt("example.test", &text).start().await.unwrap();
    let lookup = dns.resolver().txt_lookup("example.test.").await.unwrap();
    assert_eq!(txt_strings(&lookup), [["a".repeat(255), "a".repeat(45)]]);
}

#[tokio::test]
async fn mx_preference_and_exchange() {
    let dns = example().await;
    let lookup = dns.resolver().mx_lookup("example.test.").await.unwrap();
    let mx: Vec<(u16, String)> = rdata(&lookup)
        .into_iter()
        .filter_map(|d| match d {
            RData::MX(mx) => Some((mx.preference, mx.exchange.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(mx, [(10, "mx.example.test.".to_owned())]);
}

#[tokio::test]
async fn ptr_v4_and_v6() {
    let dns = example().await;
    let resolver = dns.resolver();
    for ip in ["192.0.2.1", "2001:db8::1"] {
        let ip: IpAddr = ip.parse().unwrap();
        let lookup = resolver.reverse_lookup(ip).await.unwrap();
        let targets: Vec<String> = rdata(&lookup)
            .into_iter()
            .filter_map(|d| match d {
                RData::PTR(ptr) => Some(ptr.0.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(targets, ["mx.example.test."], "{ip}");
    }
}

#[tokio::test]
async fn nxdomain_carries_soa_and_negative_ttl() {
    let dns = example().await;
    let error = dns.resolver().ipv4_lookup("nothing.example.test.").await.unwrap_err();
    assert!(error.is_nx_domain(), "{error:?}");
    let no_records = no_records(&error);
    let soa = no_records.soa.as_ref().expect("NXDOMAIN carries the zone's SOA");
    assert_eq!(soa.name.to_string(), "example.test.");
    assert_eq!(no_records.negative_ttl, Some(60));
}

#[tokio::test]
async fn nodata_is_no_records_but_not_nxdomain() {
    let dns = example().await;
    let error = dns.resolver().txt_lookup("mx.example.test.").await.unwrap_err();
    assert!(error.is_no_records_found(), "{error:?}");
    assert!(!error.is_nx_domain(), "{error:?}");
    let no_records = no_records(&error);
    assert_eq!(no_records.response_code, ResponseCode::NoError);
    assert!(no_records.soa.is_some(), "NODATA carries the zone's SOA");
}

#[tokio::test]
async fn timeout_name_is_never_answered() {
    let dns = example().await;
    let started = Instant::now();
    let error = dns.resolver().ipv4_lookup("slow.example.test.").await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(error, NetError::Timeout), "{error:?}");
    assert!(elapsed >= dns::RESOLVER_TIMEOUT, "gave up after {elapsed:?}");
    // attempts = 1 is one retry in hickory, so about 2 × RESOLVER_TIMEOUT; bounded well below
    // what a hung test would take.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    // Unanswered queries are counted too (UDP retransmits make the exact number hickory's call).
    assert!(dns.queries_for("slow.example.test", RecordType::A) >= 1);
}

#[tokio::test]
async fn servfail_is_an_error_but_not_a_negative_answer() {
    let dns = example().await;
    let error = dns.resolver().ipv4_lookup("broken.example.test.").await.unwrap_err();
    assert!(!error.is_nx_domain(), "{error:?}");
    assert!(!error.is_no_records_found(), "{error:?}");
    assert!(matches!(error, NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail))), "{error:?}");
    assert!(dns.queries_for_name("broken.example.test") >= 1);
}

#[tokio::test]
async fn delayed_name_is_answered_late() {
    let dns = example().await;
    let started = Instant::now();
    let lookup = dns.resolver().ipv4_lookup("lag.example.test.").await.unwrap();
    let elapsed = started.elapsed();
    let addrs: Vec<IpAddr> = lookup.answers().iter().filter_map(|r| r.data.ip_addr()).collect();
    assert_eq!(addrs, ["192.0.2.9".parse::<IpAddr>().unwrap()]);
    assert!(elapsed >= DELAY, "answered after {elapsed:?}");
}

#[tokio::test]
async fn counts_every_query_by_name_and_type() {
    let dns = example().await;
    let resolver = dns.resolver();
    assert_eq!(dns.queries(), 0);
    resolver.ipv4_lookup("mx.example.test.").await.unwrap();
    resolver.ipv4_lookup("MX.example.test.").await.unwrap();
    resolver.txt_lookup("example.test.").await.unwrap();
    resolver.ipv4_lookup("nothing.example.test.").await.unwrap_err();
    assert_eq!(dns.queries_for("mx.example.test", RecordType::A), 2);
    assert_eq!(dns.queries_for("Mx.Example.Test.", RecordType::A), 2);
    assert_eq!(dns.queries_for("mx.example.test", RecordType::AAAA), 0);
    assert_eq!(dns.queries_for("example.test.", RecordType::TXT), 1);
    assert_eq!(dns.queries_for_name("nothing.example.test"), 1);
    assert_eq!(dns.queries(), 4);
    dns.reset_counts();
    assert_eq!(dns.queries(), 0);
    assert_eq!(dns.queries_for("mx.example.test", RecordType::A), 0);
}

#[tokio::test]
async fn truncated_udp_answer_is_retried_over_tcp() {
    // 12 × 250 bytes is far above the resolver's EDNS payload size, so UDP must truncate.
    let chunk = "x".repeat(250);
    let strings = vec![chunk.as_str(); 12];
    let dns =
        DnsFixture::builder().zone("example.test").txt_strings("big.example.test", &strings).start().await.unwrap();
    let lookup = dns.resolver().txt_lookup("big.example.test.").await.unwrap();
    assert_eq!(txt_strings(&lookup), [vec![chunk.clone(); 12]]);
    assert!(dns.tcp_queries() >= 1, "no TCP query after a truncated answer");
}

const ZONE_FILE: &str = "\
$ORIGIN fixtures.test.
$TTL 120
@       IN SOA ns hostmaster 1 3600 600 86400 30
@       IN NS  ns
ns      IN A   192.0.2.53
@       IN TXT \"v=spf1 ip4:198.51.100.0/24\" \" -all\"
";

#[tokio::test]
async fn zone_file_and_serve_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fixtures.test.zone");
    std::fs::write(&path, ZONE_FILE).unwrap();

    let dns = DnsFixture::builder()
        .zone_file("fixtures.test", &path)
        .a("extra.fixtures.test", "192.0.2.77")
        .start()
        .await
        .unwrap();
    let resolver = dns.resolver();
    let txt = resolver.txt_lookup("fixtures.test.").await.unwrap();
    assert_eq!(txt_strings(&txt), [["v=spf1 ip4:198.51.100.0/24", " -all"]]);
    assert_eq!(txt.answers()[0].ttl, 120);
    let extra = resolver.ipv4_lookup("extra.fixtures.test.").await.unwrap();
    assert_eq!(extra.answers()[0].data.ip_addr(), Some("192.0.2.77".parse().unwrap()));
    let error = resolver.ipv4_lookup("none.fixtures.test.").await.unwrap_err();
    assert_eq!(no_records(&error).negative_ttl, Some(30));

    let served = dns::serve_files(std::slice::from_ref(&path), &[], "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let ns = served.resolver().ipv4_lookup("ns.fixtures.test.").await.unwrap();
    assert_eq!(ns.answers()[0].data.ip_addr(), Some("192.0.2.53".parse().unwrap()));
}

#[tokio::test]
async fn builder_reports_bad_input_at_start() {
    let outside = DnsFixture::builder().zone("example.test").a("mx.other.test", "192.0.2.1").start().await.err();
    assert!(matches!(&outside, Some(FixtureError::OutsideZones { name }) if name == "mx.other.test."), "{outside:?}");
    let bad_addr = DnsFixture::builder().zone("example.test").a("mx.example.test", "192.0.2.300").start().await.err();
    assert!(matches!(&bad_addr, Some(FixtureError::BadAddress(a)) if a == "192.0.2.300"), "{bad_addr:?}");
}

#[tokio::test]
async fn shutdown_stops_answering() {
    let dns = example().await;
    let resolver = dns.resolver();
    resolver.ipv4_lookup("mx.example.test.").await.unwrap();
    dns.shutdown().await.unwrap();
    let error = resolver.ipv4_lookup("mx.example.test.").await.unwrap_err();
    assert!(!error.is_no_records_found(), "{error:?}");
}
