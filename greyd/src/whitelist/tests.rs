//! Unit tables for `Whitelists`, built from in-memory text (the integration tests in
//! `greyd/tests/whitelist.rs` go through real files).

use std::net::IpAddr;

use super::*;

/// Builds lists from text as if each were one file named after its kind.
fn lists(clients: &str, recipients: &str, senders: &str) -> Whitelists {
    let mut c = ClientListBuilder::default();
    add_lines("clients", clients.as_bytes(), parse::client_entry, |e, o| c.add(e, o)).unwrap();
    let mut r = AddressListBuilder::default();
    add_lines("recipients", recipients.as_bytes(), parse::address_entry, |e, o| r.add(e, o)).unwrap();
    let mut s = AddressListBuilder::default();
    add_lines("senders", senders.as_bytes(), parse::address_entry, |e, o| s.add(e, o)).unwrap();
    Whitelists { clients: c.build().unwrap(), recipients: r.build().unwrap(), senders: s.build().unwrap() }
}

const CLIENTS: &str = "\
# line 1 is a comment
192.0.2.7
198.51.100.0/24
203.0.113
10.20.
2001:db8:1::/48
2001:db8:2::9
example.org
.example.net
=mx.example.com
/^mail\\d+\\.example\\.info$/
unknown
";

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn client_table() {
    let w = lists(CLIENTS, "", "");
    // (label, client_address, client_name, expected line)
    const CASES: &[(&str, &str, &str, Option<usize>)] = &[
        ("IPv4 address", "192.0.2.7", "unknown", Some(2)),
        ("IPv4 neighbour", "192.0.2.8", "unknown", None),
        ("IPv4 CIDR", "198.51.100.200", "unknown", Some(3)),
        ("textual prefix a.b.c", "203.0.113.99", "unknown", Some(4)),
        ("textual prefix a.b.", "10.20.255.1", "unknown", Some(5)),
        ("outside a.b.", "10.21.0.1", "unknown", None),
        ("IPv6 CIDR", "2001:db8:1:ffff::1", "unknown", Some(6)),
        ("IPv6 address", "2001:db8:2::9", "unknown", Some(7)),
        ("IPv6 neighbour", "2001:db8:2::a", "unknown", None),
        ("mapped IPv4", "::ffff:192.0.2.7", "unknown", Some(2)),
        ("domain itself", "192.0.2.1", "example.org", Some(8)),
        ("below domain", "192.0.2.1", "mx1.out.example.org", Some(8)),
        ("not a label boundary", "192.0.2.1", "badexample.org", None),
        ("strict suffix: itself", "192.0.2.1", "example.net", None),
        ("strict suffix: below", "192.0.2.1", "a.example.net", Some(9)),
        ("exact name", "192.0.2.1", "mx.example.com", Some(10)),
        ("exact name: below it", "192.0.2.1", "a.mx.example.com", None),
        ("regex", "192.0.2.1", "mail12.example.info", Some(11)),
        ("regex anchored", "192.0.2.1", "xmail12.example.info", None),
        ("case-insensitive name", "192.0.2.1", "MX1.Example.ORG", Some(8)),
        ("case-insensitive regex", "192.0.2.1", "MAIL3.EXAMPLE.INFO", Some(11)),
        ("trailing dot", "192.0.2.1", "example.org.", Some(8)),
        ("unknown never matches a name entry", "192.0.2.1", "unknown", None),
        ("UNKNOWN neither", "192.0.2.1", "UNKNOWN", None),
        ("empty name", "192.0.2.1", "", None),
        ("address wins over name", "192.0.2.7", "example.org", Some(2)),
    ];
    for (label, ip, name, want) in CASES {
        assert_eq!(w.client(addr(ip), name).map(|o| o.line), *want, "{label}");
    }
}

#[test]
fn client_origin_is_the_entry_as_written() {
    let w = lists("  Example.ORG   # our partner\n", "", "");
    let origin = w.client(addr("192.0.2.1"), "mx.example.org").unwrap();
    assert_eq!(origin, &Origin { source: "clients".into(), line: 1, text: "Example.ORG".into() });
    assert_eq!(origin.to_string(), "clients:1: Example.ORG");
}

const RECIPIENTS: &str = "\
postmaster@
abuse@example.org
example.com
.example.net
@example.info
/^noc-[a-z]+@/
";

#[test]
fn recipient_table() {
    let w = lists("", RECIPIENTS, "");
    const CASES: &[(&str, &str, Option<usize>)] = &[
        ("name@ in any domain", "postmaster@example.org", Some(1)),
        ("name@ with extension", "postmaster+lists@example.org", Some(1)),
        ("name@ with two extensions", "postmaster+a+b@example.org", Some(1)),
        ("name@ other name", "postmasters@example.org", None),
        ("name@ is not a prefix", "post@example.org", None),
        ("full address", "abuse@example.org", Some(2)),
        ("full address with extension", "abuse+x@example.org", Some(2)),
        ("full address other domain", "abuse@example.net", None),
        ("full address, subdomain is not the domain", "abuse@sub.example.org", None),
        ("domain", "anyone@example.com", Some(3)),
        ("domain: subdomain too (postgrey)", "anyone@mail.example.com", Some(3)),
        ("domain: not a label boundary", "anyone@badexample.com", None),
        ("strict suffix: itself", "anyone@example.net", None),
        ("strict suffix: below", "anyone@x.example.net", Some(4)),
        ("@domain: itself", "anyone@example.info", Some(5)),
        ("@domain: not below", "anyone@x.example.info", None),
        ("regex", "noc-berlin@example.de", Some(6)),
        ("regex no match", "noc-42@example.de", None),
        ("case-insensitive", "PostMaster@Example.ORG", Some(1)),
        ("case-insensitive domain", "x@EXAMPLE.COM", Some(3)),
        ("no @", "postmaster", None),
        ("null sender", "", None),
    ];
    for (label, rcpt, want) in CASES {
        assert_eq!(w.recipient(rcpt).map(|o| o.line), *want, "{label}");
    }
}

#[test]
fn sender_table() {
    let w = lists("", "", "alerts@bank.example\nnewsletter.example\n/^bounce-\\d+@lists\\.example$/\n");
    const CASES: &[(&str, &str, Option<usize>)] = &[
        ("address", "alerts@bank.example", Some(1)),
        ("address with extension", "alerts+2024@bank.example", Some(1)),
        ("domain and below", "news@mail.newsletter.example", Some(2)),
        ("regex", "bounce-123@lists.example", Some(3)),
        ("null sender", "", None),
        ("other", "someone@example.org", None),
    ];
    for (label, sender, want) in CASES {
        assert_eq!(w.sender(sender).map(|o| o.line), *want, "{label}");
    }
    assert_eq!(w.recipient("alerts@bank.example"), None, "sender entries are not recipient entries");
}

#[test]
fn duplicates_keep_the_first_entry() {
    let w = lists("example.org\nEXAMPLE.org\n", "", "");
    assert_eq!(w.client(addr("192.0.2.1"), "example.org").map(|o| o.line), Some(1));
    assert_eq!(w.len(), (2, 0, 0));
}

#[test]
fn check_reports_every_match_in_request_order() {
    let w = lists("192.0.2.0/24\n192.0.2.7\nexample.org\n.example.org\n/example/\n", RECIPIENTS, "postmaster@\n");
    let lines = |q: &str| w.check(q).iter().map(|m| (kind(m), m.origin().line)).collect::<Vec<_>>();
    assert_eq!(lines("192.0.2.7"), [("client", 2), ("client", 1)]);
    assert_eq!(lines("[192.0.2.7]"), [("client", 2), ("client", 1)]);
    assert_eq!(lines("mx.example.org"), [("client", 3), ("client", 4), ("client", 5)]);
    assert_eq!(lines("mx.example.org[192.0.2.9]"), [("client", 1), ("client", 3), ("client", 4), ("client", 5)]);
    assert_eq!(lines("unknown[192.0.2.9]"), [("client", 1)]);
    assert_eq!(lines("<postmaster@example.com>"), [("recipient", 1), ("recipient", 3), ("sender", 1)]);
    assert_eq!(lines("user@[192.0.2.7]"), []);
    assert_eq!(lines("nothing.test"), []);
    // The first client match is what the request path uses.
    let first = w.check("mx.example.org[192.0.2.9]").into_iter().next().map(|m| m.origin().clone());
    assert_eq!(first.as_ref(), w.client(addr("192.0.2.9"), "mx.example.org"));
}

fn kind(m: &Match) -> &'static str {
    match m {
        Match::Client(_) => "client",
        Match::Recipient(_) => "recipient",
        Match::Sender(_) => "sender",
    }
}

#[test]
fn match_display() {
    let origin = Origin { source: BUILTIN.into(), line: 42, text: "outlook.com".into() };
    assert_eq!(Match::Client(origin).to_string(), "client whitelist: built-in default list line 42: outlook.com");
}

#[test]
fn empty_matches_nothing() {
    let w = Whitelists::empty();
    assert!(w.is_empty());
    assert_eq!(w.client(addr("192.0.2.1"), "mx.example.org"), None);
    assert_eq!(w.recipient("postmaster@example.org"), None);
    assert_eq!(w.sender("a@b.example"), None);
    assert!(w.check("192.0.2.1").is_empty());
}

#[test]
fn builtin_list_parses_and_has_no_duplicates() {
    let mut seen = std::collections::HashMap::new();
    let lines = parse::lines(BUILTIN_CLIENTS.as_bytes()).unwrap();
    for line in &lines {
        let entry = parse::client_entry(&line.text).unwrap_or_else(|e| panic!("line {}: {e}", line.number));
        if let Some(first) = seen.insert(format!("{entry:?}"), line.number) {
            panic!("line {} repeats line {first}: {}", line.number, line.text);
        }
    }
    assert!(lines.len() >= 200, "{} entries", lines.len());
}
