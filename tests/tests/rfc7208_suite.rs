//! The openspf.org RFC 7208 test suite (`tests/data/rfc7208/rfc7208-tests.yml`, see the
//! README beside it), run through the real policy protocol: one `postward-policyd` per
//! scenario, its DNS data served by the in-process DNS fixture, and each test case sent as
//! a Postfix RCPT request. Every test case is a test of its own, named after the suite's
//! name for it (`cargo test --test rfc7208_suite -- cidr4-0`).
//!
//! The daemon runs with caches off and every MAIL FROM result mapped to a `Received-SPF`
//! header (HELO results ignored: the suite tests `check_host()` of MAIL FROM, or of
//! `postmaster@HELO` for the null sender), so the header's first word is the result to
//! compare with the suite's (any of them where it lists several). A second daemon of the
//! scenario rejects fail with the bare `{explanation}`, so the suite's expected explanation
//! texts are compared too. Requires `cargo build --workspace` first.
//!
//! The zone data follows the suite's own conventions (its README and driver): `SPF` records
//! are served as TXT too where a name has no TXT of its own; `TXT: NONE` is no record; a
//! `TIMEOUT` entry makes every query for that exact name time out except for the types
//! listed before it.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::rr::RData;
use hickory_proto::rr::rdata::CNAME;
use libtest_mimic::{Arguments, Failed, Trial};
use postward_tests::client::PolicyClient;
use postward_tests::dns::{DnsFixture, DnsFixtureBuilder, RecordType};
use postward_tests::process::{DaemonProcess, TestFiles};
use yaml_rust2::{Yaml, YamlLoader};

const BIN: &str = "postward-policyd";
const T: Duration = Duration::from_secs(20);
const SUITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/rfc7208/rfc7208-tests.yml");

/// One test case of the suite.
struct Case {
    name: String,
    helo: String,
    host: String,
    mailfrom: String,
    results: Vec<String>,
    explanation: Option<String>,
}

/// A scenario's running daemons: `headers` answers every result with a header, `explain`
/// rejects fail with the explanation alone.
struct Daemons {
    _dir: tempfile::TempDir,
    _dns: DnsFixture,
    _processes: Vec<DaemonProcess>,
    headers: std::path::PathBuf,
    explain: std::path::PathBuf,
}

fn text(y: &Yaml) -> String {
    match y {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        _ => String::new(),
    }
}

fn cases(doc: &Yaml) -> Vec<Case> {
    let Some(tests) = doc["tests"].as_hash() else { return Vec::new() };
    tests
        .iter()
        .map(|(name, t)| Case {
            name: text(name),
            helo: text(&t["helo"]),
            host: text(&t["host"]),
            mailfrom: text(&t["mailfrom"]),
            results: match &t["result"] {
                Yaml::Array(list) => list.iter().map(text).collect(),
                one => vec![text(one)],
            },
            explanation: t["explanation"].as_str().map(str::to_owned),
        })
        .collect()
}

/// The strings of a TXT or SPF value: one string or a list of them.
///
/// The one deviation from the suite's data: `null-text`'s record of no strings at all is
/// served as one empty string. Zone files cannot hold a TXT of no strings (RFC 1035 §3.3.14:
/// one or more), and hickory's decoder refuses a whole response that carries one (a
/// zero-length RDATA outside an UPDATE is malformed), so such an answer is a DNS error and
/// gives temperror; the case's point, that the junk record beside the real one is ignored
/// and the real one's strings are joined, is kept.
fn strings(v: &Yaml) -> Vec<String> {
    match v {
        Yaml::Array(list) if list.is_empty() => vec![String::new()],
        Yaml::Array(list) => list.iter().map(text).collect(),
        one => vec![text(one)],
    }
}

/// The scenario's zone data as fixture records.
fn zones(doc: &Yaml) -> DnsFixtureBuilder {
    // The root zone too: a name outside the scenario's data (`unknown`, for a HELO that is
    // not a domain) gets NXDOMAIN, as from the real DNS, not REFUSED.
    let mut b = DnsFixture::builder().zone(".");
    let Some(data) = doc["zonedata"].as_hash() else { return b };
    let mut origins = BTreeSet::new();
    for name in data.keys() {
        let name = text(name).trim_end_matches('.').to_ascii_lowercase();
        origins.insert(name.rsplit('.').next().unwrap_or(&name).to_owned());
    }
    for origin in &origins {
        b = b.zone(origin);
    }
    for (name, records) in data {
        let name = text(name);
        let records = records.as_vec().cloned().unwrap_or_default();
        let has_txt = records.iter().any(|r| !r["TXT"].is_badvalue());
        let mut answered = Vec::new();
        // DNS holds a record once: a repeated one (`example7.com`) is served once.
        let mut seen = BTreeSet::new();
        for record in &records {
            if !seen.insert(format!("{record:?}")) {
                continue;
            }
            if record.as_str() == Some("TIMEOUT") {
                b = b.timeout_except(&name, &answered);
                break;
            }
            let Some(hash) = record.as_hash() else { continue };
            for (rtype, value) in hash {
                let rtype = text(rtype);
                let is_none = value.as_str() == Some("NONE");
                match rtype.as_str() {
                    "TXT" | "SPF" if is_none => {}
                    "TXT" => {
                        let s = strings(value);
                        b = b.txt_strings(&name, &s.iter().map(String::as_str).collect::<Vec<_>>());
                        answered.push(RecordType::TXT);
                    }
                    // RFC 7208 dropped type 99: an SPF record is served as TXT, unless the
                    // name has TXT records of its own (the suite's "Selecting records").
                    "SPF" if !has_txt => {
                        let s = strings(value);
                        b = b.txt_strings(&name, &s.iter().map(String::as_str).collect::<Vec<_>>());
                        answered.push(RecordType::TXT);
                    }
                    "SPF" => {}
                    "A" => {
                        b = b.a(&name, &text(value));
                        answered.push(RecordType::A);
                    }
                    "AAAA" => {
                        b = b.aaaa(&name, &text(value));
                        answered.push(RecordType::AAAA);
                    }
                    "MX" => {
                        let pref = value[0].as_i64().unwrap_or(0);
                        b = b.mx(&name, u16::try_from(pref).unwrap_or(0), &text(&value[1]));
                        answered.push(RecordType::MX);
                    }
                    "PTR" => {
                        let target = hickory_proto::rr::Name::from_ascii(text(value)).unwrap();
                        b = b.record(&name, RData::PTR(hickory_proto::rr::rdata::PTR(target)));
                        answered.push(RecordType::PTR);
                    }
                    "CNAME" => {
                        let target = hickory_proto::rr::Name::from_ascii(text(value)).unwrap();
                        b = b.record(&name, RData::CNAME(CNAME(target)));
                        answered.push(RecordType::CNAME);
                    }
                    other => panic!("zone data of {name}: record type {other} is not handled"),
                }
            }
        }
    }
    b
}

const ALL: [&str; 7] = ["pass", "fail", "softfail", "neutral", "none", "permerror", "temperror"];

fn action_map(section: &str, action: impl Fn(&str) -> &'static str) -> String {
    let mut out = format!("[{section}]\n");
    for result in ALL {
        out.push_str(&format!("{result} = \"{}\"\n", action(result)));
    }
    out
}

async fn start_scenario(doc: &Yaml) -> Daemons {
    let dns = zones(doc).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let common = format!(
        "[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\nattempts = 1\ncache_size = 0\n\n\
         [spf]\nauthserv_id = \"suite.test\"\ncache_size = 0\nreject_text = \"{{explanation}}\"\n\n{}\n",
        dns.nameserver(),
        action_map("spf.helo", |_| "ignore"),
    );
    let headers = TestFiles::new(dir.path(), "headers");
    let explain = TestFiles::new(dir.path(), "explain");
    let h = headers.start(BIN, "", &format!("{common}{}", action_map("spf.mail_from", |_| "header")), T).await;
    let e_map = action_map("spf.mail_from", |r| if r == "fail" { "reject" } else { "header" });
    let e = explain.start(BIN, "", &format!("{common}{e_map}"), T).await;
    Daemons { _dir: dir, _dns: dns, _processes: vec![h, e], headers: headers.socket, explain: explain.socket }
}

static INSTANCE: AtomicU64 = AtomicU64::new(1);

async fn ask(socket: &std::path::Path, case: &Case) -> Result<String, Failed> {
    let mut client = PolicyClient::connect_unix(socket).await.map_err(|e| format!("connect: {e}"))?;
    let instance = format!("suite.{}", INSTANCE.fetch_add(1, Ordering::Relaxed));
    let request = [
        ("request", "smtpd_access_policy"),
        ("protocol_state", "RCPT"),
        ("protocol_name", "ESMTP"),
        ("client_address", case.host.as_str()),
        ("client_name", "unknown"),
        ("helo_name", case.helo.as_str()),
        ("sender", case.mailfrom.as_str()),
        ("recipient", "postmaster@suite.test"),
        ("instance", instance.as_str()),
    ];
    Ok(client.request(&request).await.map_err(|e| format!("request: {e}"))?)
}

/// The result word of `PREPEND Received-SPF: <result> (...`.
fn header_result(answer: &str) -> Option<&str> {
    answer.strip_prefix("PREPEND Received-SPF: ")?.split_whitespace().next()
}

async fn run_case(daemons: &Daemons, case: &Case) -> Result<(), Failed> {
    let answer = ask(&daemons.headers, case).await?;
    let Some(result) = header_result(&answer) else {
        return Err(format!("no Received-SPF header in the answer: {answer:?}").into());
    };
    if !case.results.iter().any(|r| r == result) {
        return Err(
            format!("result {result}, the suite expects {} (answer: {answer})", case.results.join(" or ")).into()
        );
    }
    if let Some(want) = case.explanation.as_deref().filter(|_| result == "fail") {
        let answer = ask(&daemons.explain, case).await?;
        let got = answer.strip_prefix("550 5.7.23").unwrap_or(&answer).trim();
        // The suite's DEFAULT is "no explanation of the domain's own"; policyd then says
        // nothing ({explanation} is empty for a fail).
        let want = if want == "DEFAULT" { "" } else { want };
        if !same_text(got, want) {
            return Err(format!("explanation {got:?}, the suite expects {want:?}").into());
        }
    }
    Ok(())
}

/// Explanations compared as an SMTP reply carries them: a reply is one line whose runs of
/// white space policyd folds into one space (so `Congratulations!  That` arrives with one),
/// and without regard to ASCII case: RFC 7208 §7.3 does not fix the case of the `%{i}`
/// nibbles of an IPv6 address (§7.4's example is lower case, the suite's `v-macro-ip6`
/// upper case).
fn same_text(got: &str, want: &str) -> bool {
    let fold = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase();
    fold(got) == fold(want)
}

fn main() {
    let args = Arguments::from_args();
    let text = std::fs::read_to_string(SUITE).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    let runtime = Arc::new(tokio::runtime::Runtime::new().unwrap());
    let mut trials = Vec::new();
    let mut held = Vec::new();
    for doc in &docs {
        let cases = cases(doc);
        // Scenarios with no selected test are not started at all.
        if cases.iter().all(|c| args.filter.as_deref().is_some_and(|f| !c.name.contains(f))) {
            continue;
        }
        let daemons = Arc::new(runtime.block_on(start_scenario(doc)));
        held.push(Arc::clone(&daemons));
        for case in cases {
            let (rt, daemons) = (Arc::clone(&runtime), Arc::clone(&daemons));
            let name = case.name.clone();
            trials.push(Trial::test(name, move || rt.block_on(run_case(&daemons, &case))));
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    drop(held);
    conclusion.exit();
}
