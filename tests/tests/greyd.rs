//! postward-greyd end to end: the real binary on a Unix socket, its store, the DNS fixture.
//! Requires `cargo build --workspace` first.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use postward_tests::client::PolicyClient;
use postward_tests::dns::DnsFixture;
use postward_tests::process::{DaemonProcess, Sig, TestFiles, bin_path, start_with_config};
use postward_tests::proxy::TcpProxy;
use postward_tests::request::letters;

const BIN: &str = "postward-greyd";
const T: Duration = Duration::from_secs(15);
const DEFER: &str = "DEFER_IF_PERMIT 4.7.1 Greylisted: please retry in";

/// One greyd instance with its own directory, socket and configuration.
struct Greyd {
    dir: tempfile::TempDir,
    process: Option<DaemonProcess>,
}

impl Greyd {
    /// `config` is appended after `[server]` and must bring its own sections.
    async fn start(config: &str) -> Greyd {
        let dir = tempfile::tempdir().unwrap();
        let g = Greyd { dir, process: None };
        g.write_config(config);
        g.launch().await
    }

    fn write_config(&self, config: &str) {
        let sections = if config.contains("[store]") {
            format!("{config}\n")
        } else {
            format!("{config}\n\n[store]\nurl = \"sqlite://{}/greyd.sqlite\"\n", self.dir.path().display())
        };
        self.files().write("", &sections);
    }

    fn files(&self) -> TestFiles {
        TestFiles::new(self.dir.path(), "greyd")
    }

    async fn launch(mut self) -> Greyd {
        self.process = Some(start_with_config(BIN, &self.config(), &self.socket(), T).await);
        self
    }

    fn socket(&self) -> PathBuf {
        self.files().socket
    }

    fn config(&self) -> PathBuf {
        self.files().config
    }

    fn daemon(&self) -> &DaemonProcess {
        self.process.as_ref().unwrap()
    }

    async fn client(&self) -> PolicyClient {
        PolicyClient::connect_unix(&self.socket()).await.unwrap()
    }

    /// Runs `postward-greyd dump` and returns its JSON lines.
    fn dump(&self) -> Vec<serde_json::Value> {
        let out = std::process::Command::new(bin_path(BIN))
            .args(["dump", "--config", self.config().to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "dump failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

/// One RCPT request with the attributes greyd reads.
async fn ask(c: &mut PolicyClient, ip: &str, sender: &str, rcpt: &str, instance: &str) -> String {
    ask_with(c, ip, sender, rcpt, instance, &[]).await
}

async fn ask_with(
    c: &mut PolicyClient,
    ip: &str,
    sender: &str,
    rcpt: &str,
    instance: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut attrs = vec![
        ("request", "smtpd_access_policy"),
        ("protocol_state", "RCPT"),
        ("client_address", ip),
        ("client_name", "mx.sender.example"),
        ("helo_name", "mx.sender.example"),
        ("sender", sender),
        ("recipient", rcpt),
        ("instance", instance),
    ];
    for (k, v) in extra {
        attrs.retain(|(n, _)| n != k);
        attrs.push((k, v));
    }
    c.request(&attrs).await.unwrap()
}

#[tokio::test]
async fn greylist_cycle_with_one_header_per_message() {
    let g = Greyd::start("[greylist]\ndelay = \"2s\"\nheader = true\n[sender_pools]\nspf = false\n").await;
    let mut c = g.client().await;
    // First attempt of a message with two recipients: both deferred.
    assert!(ask(&mut c, "192.0.2.7", "alice@example.org", "bob@example.net", "m1").await.starts_with(DEFER));
    assert!(ask(&mut c, "192.0.2.7", "alice@example.org", "carol@example.net", "m1").await.starts_with(DEFER));
    // An early retry is deferred again without resetting first-seen.
    let early = ask(&mut c, "192.0.2.7", "alice@example.org", "bob@example.net", "m2").await;
    assert!(early.starts_with(DEFER), "{early}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // The retry after the delay passes, with one header for the whole message; another
    // address of the same /24 and a +extension sender fold into the same triplet.
    let first = ask(&mut c, "192.0.2.8", "alice+news@example.org", "bob@example.net", "m3").await;
    assert!(first.starts_with("PREPEND X-Greylist: delayed "), "{first}");
    assert!(first.contains(" seconds by postward-greyd-"), "{first}");
    assert_eq!(ask(&mut c, "192.0.2.8", "alice@example.org", "carol@example.net", "m3").await, "DUNNO");
    // Later messages pass without a header.
    assert_eq!(ask(&mut c, "192.0.2.7", "alice@example.org", "bob@example.net", "m4").await, "DUNNO");
    // A different /24 is a different triplet.
    assert!(ask(&mut c, "198.51.100.7", "alice@example.org", "bob@example.net", "m5").await.starts_with(DEFER));
    let log = g.daemon().wait_for_log("reason=early-retry", T).await;
    assert!(log.contains("defer_if_permit: RCPT from mx.sender.example[192.0.2.7]"), "{log}");
    let line = g.daemon().wait_for_log("reason=retry-passed net=192.0.2.0/24 delayed=", T).await;
    // Whole seconds: 2.1 s of real time are 2 or 3 s between second boundaries.
    assert!(line.contains("delayed=2s") || line.contains("delayed=3s"), "{line}");
    let rows = g.dump();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let bob = rows.iter().find(|r| r["recipient"] == "bob@example.net" && r["client_net"] == "192.0.2.0/24").unwrap();
    assert!(bob["passed_at"].is_i64() && bob["attempts"] == 1, "{bob}");
}

/// Auto-whitelists read from the store, with an empty cache (after a reload): a new triplet of
/// a whitelisted client or sender domain passes and is not stored, while an unknown client's is
/// deferred and stored. On SQLite the writer decides in the lookup's turn whether to insert.
#[tokio::test]
async fn auto_whitelists_from_the_store_keep_new_triplets_out() {
    let g = Greyd::start(
        "[greylist]\ndelay = \"1s\"\nauto_whitelist_clients = 1\nauto_whitelist_domains = true\n\
         [sender_pools]\nspf = false\n",
    )
    .await;
    let mut c = g.client().await;
    // (client, sender): one client for the client list, two senders of one domain from two
    // addresses of one network for the domain list (letters: digits in senders fold away).
    let firsts =
        [("192.0.2.7", "a@example.org"), ("198.51.100.7", "alice@example.com"), ("198.51.100.8", "bob@example.com")];
    for (ip, sender) in firsts {
        assert!(ask(&mut c, ip, sender, "r@example.net", "m1").await.starts_with(DEFER), "{ip} {sender}");
    }
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for (ip, sender) in firsts {
        assert_eq!(ask(&mut c, ip, sender, "r@example.net", "m2").await, "DUNNO", "{ip} {sender}");
    }
    // A reload starts with an empty cache, so what follows is decided from the store.
    g.daemon().signal(Sig::SIGHUP);
    g.daemon().wait_for_log("configuration reloaded", T).await;
    let mut c = g.client().await;
    assert_eq!(ask(&mut c, "192.0.2.7", "b@other.example", "q@example.net", "m3").await, "DUNNO");
    g.daemon().wait_for_log("reason=awl-client", T).await;
    assert_eq!(ask(&mut c, "198.51.100.9", "carol@example.com", "q@example.net", "m4").await, "DUNNO");
    g.daemon().wait_for_log("reason=awl-domain", T).await;
    assert!(ask(&mut c, "203.0.113.5", "b@other.example", "q@example.net", "m5").await.starts_with(DEFER));
    let rows = g.dump();
    let senders: Vec<&str> = rows.iter().filter_map(|r| r["sender"].as_str()).collect();
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(!senders.contains(&"carol@example.com"), "{rows:?}");
    let stored_new: Vec<_> = rows.iter().filter(|r| r["sender"] == "b@other.example").collect();
    assert_eq!(stored_new.len(), 1, "{rows:?}");
    assert_eq!(stored_new[0]["client_net"], "203.0.113.0/24", "{rows:?}");
}

/// Finding 9: in privacy mode nothing of a sender or recipient address is stored in clear,
/// the domain auto-whitelist's sender domain included.
#[tokio::test]
async fn privacy_mode_stores_no_address_part_in_clear() {
    let key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key.path(), b"0123456789abcdef0123456789abcdef").unwrap();
    let mut g = Greyd::start(&format!(
        "[greylist]\ndelay = \"1s\"\nauto_whitelist_domains = true\nauto_whitelist_clients = 0\nprivacy_key_file = \"{}\"\n\
         [sender_pools]\nspf = false\n",
        key.path().display()
    ))
    .await;
    let mut c = g.client().await;
    for (ip, sender) in [("192.0.2.7", "alice@secretdomain.example"), ("192.0.2.8", "bob@secretdomain.example")] {
        assert!(ask(&mut c, ip, sender, "carol@hidden-rcpt.example", "m1").await.starts_with(DEFER));
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for (ip, sender) in [("192.0.2.7", "alice@secretdomain.example"), ("192.0.2.8", "bob@secretdomain.example")] {
        assert_eq!(ask(&mut c, ip, sender, "carol@hidden-rcpt.example", "m2").await, "DUNNO");
    }
    // A new sender of the domain passes on the domain auto-whitelist: the domain was stored
    // (passes are written behind, at the SQLite writer's next turn: within 0.5 s when idle).
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(ask(&mut c, "192.0.2.9", "dave@secretdomain.example", "x@hidden-rcpt.example", "m3").await, "DUNNO");
    g.daemon().wait_for_log("reason=awl-domain", T).await;
    drop(c);
    // A clean stop writes back what the cache holds.
    g.daemon().signal(Sig::SIGTERM);
    assert!(g.process.as_mut().unwrap().wait(T).await.is_some_and(|s| s.success()));
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(g.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("greyd.sqlite") {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(bytes.len() > 1000, "no database found");
    let text = String::from_utf8_lossy(&bytes);
    for part in ["secretdomain", "alice", "bob", "carol", "hidden-rcpt"] {
        assert!(!text.contains(part), "{part:?} stored in clear");
    }
}

/// Finding 9: an empty or short privacy key is refused with a clear error.
#[tokio::test]
async fn a_short_privacy_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for key in [&b""[..], b"short key\n"] {
        let key_path = dir.path().join("key");
        std::fs::write(&key_path, key).unwrap();
        let files = TestFiles::new(dir.path(), "greyd");
        files.write("", &format!("[greylist]\nprivacy_key_file = \"{}\"\n", key_path.display()));
        let mut child = std::process::Command::new(bin_path(BIN))
            .args(["--config", files.config.to_str().unwrap()])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(status.is_some_and(|s| !s.success()), "started with a {}-byte key: {err}", key.len());
        assert!(err.contains("privacy_key_file") && err.contains("fewer than 16"), "{err}");
    }
}

#[tokio::test]
async fn skip_rules_and_whitelists_touch_no_database() {
    let g = Greyd::start("").await;
    let recipients = g.dir.path().join("whitelist_recipients");
    std::fs::write(&recipients, "# postgrey format\npostmaster@\nexample.com\n").unwrap();
    g.write_config(&format!(
        "[greylist]\ntrusted_networks = [\"203.0.113.0/24\", \"2001:db8:1::/48\"]\n[whitelist]\nrecipients = [\"{}\"]\n",
        recipients.display()
    ));
    g.daemon().signal(Sig::SIGHUP);
    g.daemon().wait_for_log("configuration reloaded", T).await;
    let mut c = g.client().await;
    // (label, client address, attributes to change, expected log reason)
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        ("authenticated", "192.0.2.1", &[("sasl_username", "alice")], "reason=authenticated"),
        ("MAIL stage", "192.0.2.2", &[("protocol_state", "MAIL")], "reason=not-rcpt"),
        ("trusted v4 network", "203.0.113.9", &[], "reason=trusted-network"),
        ("trusted v6 network", "2001:db8:1::25", &[], "reason=trusted-network"),
        (
            "postgrey recipient file: name@",
            "192.0.2.3",
            &[("recipient", "postmaster@example.net")],
            "reason=whitelist-recipient",
        ),
        (
            "postgrey recipient file: domain",
            "192.0.2.4",
            &[("recipient", "x@example.com")],
            "reason=whitelist-recipient",
        ),
        (
            "built-in client list",
            "192.0.2.5",
            &[("client_name", "mail-db5eur01on2100.outbound.protection.outlook.com")],
            "reason=whitelist-client",
        ),
    ];
    for (label, ip, extra, reason) in cases {
        assert_eq!(ask_with(&mut c, ip, "a@example.org", "b@example.net", "i", extra).await, "DUNNO", "{label}");
        g.daemon().wait_for_log(reason, T).await;
    }
    assert!(g.dump().is_empty(), "no triplet may be stored for skipped requests");
    // Loopback is not special.
    assert!(ask(&mut c, "127.0.0.1", "a@example.org", "b@example.net", "i").await.starts_with(DEFER));
}

/// A provider-like record (ranges of the shape the big senders publish) is a pool.
#[tokio::test]
async fn sender_pool_retry_from_another_address_passes_via_spf() {
    let dns = DnsFixture::builder()
        .zone("pool.test")
        .txt("pool.test", "v=spf1 include:spf.pool.test ip4:141.193.32.0/23 -all")
        .txt("spf.pool.test", "v=spf1 ip4:185.12.80.0/22 ip4:91.198.64.0/20 ip6:2a0b:4d07::/32 ~all")
        .start()
        .await
        .unwrap();
    let g = Greyd::start(&format!(
        "[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\n[greylist]\ndelay = \"2s\"\nauto_whitelist_clients = 0\n",
        dns.nameserver()
    ))
    .await;
    let mut c = g.client().await;
    assert!(ask(&mut c, "185.12.81.7", "news@pool.test", "bob@example.net", "1").await.starts_with(DEFER));
    // SPF alone never skips the first deferral: a pool member retrying at once is deferred.
    assert!(ask(&mut c, "91.198.65.8", "news@pool.test", "bob@example.net", "2").await.starts_with(DEFER));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Another recipient is another triplet, never attempted: deferred.
    assert!(ask(&mut c, "141.193.33.9", "news@pool.test", "carol@example.net", "3").await.starts_with(DEFER));
    // After the delay, an SPF-authorized address of a network not seen before passes.
    assert_eq!(ask(&mut c, "141.193.33.9", "news@pool.test", "bob@example.net", "4").await, "DUNNO");
    let line = g.daemon().wait_for_log("reason=sender-pool", T).await;
    assert!(line.contains("RCPT from mx.sender.example[141.193.33.9]"), "{line}");
    // An address outside the SPF record is still greylisted.
    assert!(ask(&mut c, "100.64.0.5", "news@pool.test", "bob@example.net", "5").await.starts_with(DEFER));
    assert!(dns.queries_for_name("pool.test.") >= 1);
    assert!(!g.daemon().log().iter().any(|l| l.contains("refused-wide")), "{:?}", g.daemon().log());
}

/// Finding 8: a record that passes (nearly) every address is no pool. `+all`, `ip4:0.0.0.0/1`
/// (caught by a probe address) and an include of a /3 that avoids every probe (caught by
/// its size) are refused and logged once per domain; `?all` never passes to begin with.
#[tokio::test]
async fn a_record_that_passes_everything_is_no_sender_pool() {
    let dns = DnsFixture::builder()
        .zone("wide.test")
        .txt("all.wide.test", "v=spf1 +all")
        .txt("neutral.wide.test", "v=spf1 ?all")
        .txt("half.wide.test", "v=spf1 ip4:0.0.0.0/1 -all")
        .txt("big.wide.test", "v=spf1 include:_nets.big.wide.test -all")
        .txt("_nets.big.wide.test", "v=spf1 ip4:32.0.0.0/3 -all")
        .start()
        .await
        .unwrap();
    let g = Greyd::start(&format!(
        "[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\n[greylist]\ndelay = \"2s\"\nauto_whitelist_clients = 0\n",
        dns.nameserver()
    ))
    .await;
    let mut c = g.client().await;
    let cases = [
        ("all.wide.test", "8.8.4.4", "9.9.9.9"),
        ("neutral.wide.test", "8.8.4.4", "9.9.9.9"),
        ("half.wide.test", "1.2.3.4", "5.6.7.8"),
        ("big.wide.test", "33.1.1.1", "44.2.2.2"),
    ];
    for (i, (domain, first, _)) in cases.iter().enumerate() {
        let sender = format!("spam@{domain}");
        assert!(ask(&mut c, first, &sender, "bob@example.net", &format!("a{i}")).await.starts_with(DEFER));
    }
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for round in 0..2 {
        for (i, (domain, _, retry)) in cases.iter().enumerate() {
            let sender = format!("spam@{domain}");
            let answer = ask(&mut c, retry, &sender, "bob@example.net", &format!("b{round}{i}")).await;
            assert!(answer.starts_with(DEFER), "{domain} from {retry}: {answer}");
        }
    }
    g.daemon().wait_for_log("pool=refused-wide domain=big.wide.test", T).await;
    let log = g.daemon().log();
    for domain in ["all.wide.test", "half.wide.test", "big.wide.test"] {
        let lines = log.iter().filter(|l| l.contains(&format!("pool=refused-wide domain={domain}:"))).count();
        assert_eq!(lines, 1, "{domain}: {log:?}");
    }
    assert!(!log.iter().any(|l| l.contains("domain=neutral.wide.test")), "{log:?}");
    assert!(!log.iter().any(|l| l.contains("reason=sender-pool")), "{log:?}");
}

/// A unique PostgreSQL schema for one test, created with psql and dropped at the end.
struct PgSchema {
    base: String,
    name: String,
}

impl PgSchema {
    fn create() -> Option<PgSchema> {
        let Ok(base) = std::env::var("POSTWARD_TEST_POSTGRES_URL") else {
            postward_tests::skipped!("POSTWARD_TEST_POSTGRES_URL is not set");
            return None;
        };
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let name = format!("pw_e2e_{}_{nanos}", std::process::id());
        psql(&base, &format!("CREATE SCHEMA {name}"));
        Some(PgSchema { base, name })
    }

    /// The URL with `host:port` replaced (to go through a proxy) and the schema selected.
    fn url(&self, hostport: Option<&str>) -> String {
        let mut url = self.base.clone();
        if let Some(hp) = hostport {
            let start = url.find('@').map_or(url.find("//").unwrap() + 2, |i| i + 1);
            let end = url[start..].find('/').map_or(url.len(), |i| start + i);
            url.replace_range(start..end, hp);
        }
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}options=-c%20search_path%3D{}", self.name)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        psql(&self.base, &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

fn psql(url: &str, sql: &str) {
    let out =
        std::process::Command::new("psql").args([url, "-q", "-c", sql]).output().expect("psql (postgresql-client)");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn two_mx_hosts_share_one_postgresql_greylist() {
    let Some(schema) = PgSchema::create() else { return };
    let config =
        format!("[greylist]\ndelay = \"2s\"\n[sender_pools]\nspf = false\n[store]\nurl = \"{}\"\n", schema.url(None));
    let mx1 = Greyd::start(&config).await;
    let mx2 = Greyd::start(&config).await;
    let (mut a, mut b) = (mx1.client().await, mx2.client().await);
    assert!(ask(&mut a, "192.0.2.7", "alice@example.org", "bob@example.net", "1").await.starts_with(DEFER));
    // The early retry reaches the other MX: still deferred there.
    let early = ask(&mut b, "192.0.2.7", "alice@example.org", "bob@example.net", "2").await;
    assert!(early.starts_with(DEFER), "{early}; mx2 log: {:?}", mx2.daemon().log());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(ask(&mut b, "192.0.2.7", "alice@example.org", "bob@example.net", "3").await, "DUNNO");
    mx2.daemon().wait_for_log("reason=retry-passed", T).await;
    assert_eq!(ask(&mut a, "192.0.2.7", "alice@example.org", "bob@example.net", "4").await, "DUNNO");
}

#[tokio::test]
async fn store_outage_answers_fail_open_once_warned_then_recovers() {
    let Some(schema) = PgSchema::create() else { return };
    let pg: std::net::SocketAddr = {
        let url = &schema.base;
        let start = url.find('@').unwrap() + 1;
        let end = url[start..].find('/').unwrap() + start;
        std::net::ToSocketAddrs::to_socket_addrs(&url[start..end]).unwrap().next().unwrap()
    };
    let proxy = TcpProxy::start(pg).await.unwrap();
    let url = schema.url(Some(&format!("127.0.0.1:{}", proxy.port())));
    let g = Greyd::start(&format!(
        "[greylist]\ndelay = \"2s\"\n[sender_pools]\nspf = false\n[store]\nurl = \"{url}\"\ntimeout = \"1s\"\n"
    ))
    .await;
    let mut c = g.client().await;
    assert!(ask(&mut c, "192.0.2.7", "a@example.org", "b@example.net", "1").await.starts_with(DEFER));

    proxy.stop();
    for i in 0..5 {
        let started = Instant::now();
        let answer = ask(&mut c, "192.0.2.7", &format!("new{i}@example.org"), "b@example.net", "2").await;
        assert_eq!(answer, "DUNNO", "fail-open while the database is down");
        assert!(started.elapsed() < Duration::from_secs(4), "bounded by the store timeout: {:?}", started.elapsed());
    }
    g.daemon().wait_for_log("reason=store-error", T).await;
    let warnings = g.daemon().log().iter().filter(|l| l.contains("store unavailable")).count();
    assert_eq!(warnings, 1, "one warning per outage, not per request: {:?}", g.daemon().log());

    proxy.restart().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = ask(&mut c, "192.0.2.7", "after@example.org", "b@example.net", "3").await;
        if answer.starts_with(DEFER) {
            break;
        }
        assert!(Instant::now() < deadline, "greylisting did not resume after the database came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    g.daemon().wait_for_log("store recovered", T).await;
}

#[tokio::test]
async fn sigkill_under_load_loses_no_answered_first_seen_entry() {
    // One client network sends them all: without its bound, which defers first attempts
    // beyond 5,000 on purpose without storing them.
    let mut g = Greyd::start("[greylist]\nmax_pending_per_network = 0\n[sender_pools]\nspf = false\n").await;
    let socket = g.socket();
    let mut tasks = Vec::new();
    for conn in 0..8 {
        let socket = socket.clone();
        tasks.push(tokio::spawn(async move {
            let mut answered = Vec::new();
            let Ok(mut c) = PolicyClient::connect_unix(&socket).await else {
                return answered;
            };
            for i in 0.. {
                // Letters only: greyd folds digit runs (VERP counters) into one key.
                let sender = format!("{}x{}@example.org", letters(conn), letters(i));
                let attrs =
                    postward_tests::client::rcpt_request("192.0.2.7", "h.example", &sender, "b@example.net", "1");
                match c.request(&attrs).await {
                    Ok(a) if a.starts_with(DEFER) => answered.push(sender),
                    _ => break,
                }
            }
            answered
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    g.daemon().signal(Sig::SIGKILL);
    let mut answered = Vec::new();
    for t in tasks {
        answered.extend(t.await.unwrap());
    }
    assert!(answered.len() > 50, "load was running: {} answers", answered.len());
    g.process.take().unwrap().wait(T).await;
    // Restart on the same database: it opens cleanly and holds every answered entry.
    std::fs::remove_file(g.socket()).ok();
    let g = g.launch().await;
    let stored: std::collections::HashSet<String> =
        g.dump().into_iter().map(|r| r["sender"].as_str().unwrap().to_owned()).collect();
    let missing: Vec<&String> = answered.iter().filter(|s| !stored.contains(*s)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered entries lost, e.g. {:?}",
        missing.len(),
        answered.len(),
        &missing[..missing.len().min(3)]
    );
    let mut c = g.client().await;
    let first = answered.first().unwrap();
    let again = ask(&mut c, "192.0.2.7", first, "b@example.net", "9").await;
    assert!(again.starts_with(DEFER) && again.contains("Greylisted"), "the entry is remembered: {again}");
    assert!(g.daemon().wait_for_log("reason=early-retry", T).await.contains(first.as_str()));
}

/// Pending rows of one client network in a dump.
fn pending_of(rows: &[serde_json::Value], net: &str) -> usize {
    rows.iter().filter(|r| r["client_net"] == net && r["passed_at"].is_null()).count()
}

/// `max_pending_per_network`: a network flooding first attempts has at most that many stored;
/// the rest are deferred all the same (`reason=pending-limit`, one warning), its stored
/// triplets still pass when retried, another network is greylisted as usual meanwhile, and a
/// fresh start (a reload here: the same path) reads the count back instead of reopening it.
#[tokio::test]
async fn a_flooding_network_is_bounded_and_others_are_greylisted_meanwhile() {
    let g = Greyd::start(
        "[greylist]\ndelay = \"1s\"\nmax_pending_per_network = 20\nauto_whitelist_clients = 0\n\
         auto_whitelist_domains = false\n[sender_pools]\nspf = false\n",
    )
    .await;
    let mut c = g.client().await;
    for i in 0..50 {
        let sender = format!("{}@flood.example", letters(i));
        let answer = ask(&mut c, "198.51.100.7", &sender, "r@example.net", &format!("f{i}")).await;
        assert!(answer.starts_with(DEFER), "{i}: {answer}");
    }
    let ok = ask(&mut c, "192.0.2.7", "alice@example.org", "r@example.net", "o1").await;
    assert!(ok.starts_with(DEFER), "{ok}");
    let rows = g.dump();
    assert_eq!(pending_of(&rows, "198.51.100.0/24"), 20, "{rows:?}");
    assert_eq!(pending_of(&rows, "192.0.2.0/24"), 1, "another network's first attempt is stored");
    g.daemon().wait_for_log("reason=pending-limit", T).await;
    let warnings = g.daemon().log().iter().filter(|l| l.contains("(greylist.max_pending_per_network)")).count();
    assert_eq!(warnings, 1, "one warning per network per hour");

    // A stored triplet of the flooding network passes when retried, and frees a place.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(ask(&mut c, "198.51.100.7", "a@flood.example", "r@example.net", "f0b").await, "DUNNO");
    assert_eq!(ask(&mut c, "192.0.2.7", "alice@example.org", "r@example.net", "o2").await, "DUNNO");
    assert!(ask(&mut c, "198.51.100.8", "newa@flood.example", "r@example.net", "f51").await.starts_with(DEFER));
    assert!(ask(&mut c, "198.51.100.8", "newb@flood.example", "r@example.net", "f52").await.starts_with(DEFER));
    assert_eq!(pending_of(&g.dump(), "198.51.100.0/24"), 20, "one place freed, one taken");

    // After a reload (an empty memory) the count comes from the store: still full.
    g.daemon().signal(Sig::SIGHUP);
    g.daemon().wait_for_log("configuration reloaded", T).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut c = g.client().await;
    for i in 60..70 {
        let sender = format!("{}@flood.example", letters(i));
        assert!(ask(&mut c, "198.51.100.9", &sender, "r@example.net", &format!("f{i}")).await.starts_with(DEFER));
    }
    let rows = g.dump();
    assert_eq!(pending_of(&rows, "198.51.100.0/24"), 20, "{rows:?}");
    assert_eq!(rows.iter().filter(|r| r["client_net"] == "198.51.100.0/24").count(), 21, "the passed one stays");
}

/// `max_pending`: beyond it the oldest pending triplets are forgotten, never a passed triplet
/// or an auto-whitelist entry.
#[tokio::test]
async fn the_store_wide_bound_forgets_the_oldest_pending_triplets_only() {
    let g = Greyd::start(
        "[greylist]\ndelay = \"1s\"\nmax_pending = 30\nmax_pending_per_network = 0\n\
         auto_whitelist_clients = 1\n[sender_pools]\nspf = false\n",
    )
    .await;
    let mut c = g.client().await;
    assert!(ask(&mut c, "192.0.2.7", "alice@example.org", "r@example.net", "p1").await.starts_with(DEFER));
    for i in 0..10 {
        let sender = format!("{}@old.example", letters(i));
        assert!(ask(&mut c, "198.51.100.7", &sender, "r@example.net", &format!("o{i}")).await.starts_with(DEFER));
    }
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(ask(&mut c, "192.0.2.7", "alice@example.org", "r@example.net", "p2").await, "DUNNO");
    for i in 0..40 {
        let ip = format!("203.0.{}.9", 113 + i % 4);
        let sender = format!("{}@new.example", letters(i));
        assert!(ask(&mut c, &ip, &sender, "r@example.net", &format!("n{i}")).await.starts_with(DEFER));
    }
    assert_eq!(g.dump().len(), 51);
    // The bound is applied at start and at every expiry run: a reload starts one.
    g.daemon().signal(Sig::SIGHUP);
    g.daemon().wait_for_log("forgot the oldest 20", T).await;
    let rows = g.dump();
    let pending = rows.iter().filter(|r| r["passed_at"].is_null()).count();
    assert_eq!(pending, 30, "{rows:?}");
    assert_eq!(pending_of(&rows, "198.51.100.0/24"), 0, "the ten oldest went first");
    let passed: Vec<_> = rows.iter().filter(|r| !r["passed_at"].is_null()).collect();
    assert_eq!(passed.len(), 1, "the passed triplet stays: {rows:?}");
    assert_eq!(passed[0]["sender"], "alice@example.org");
    let out = std::process::Command::new(bin_path(BIN))
        .args(["stats", "--json", "--config", g.config().to_str().unwrap()])
        .output()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["awl_clients"], 1, "the auto-whitelist entry stays: {stats}");
}

/// Passes are written behind on SQLite (the answer does not wait for the write): a clean
/// stop right after the answers still writes every one of them.
#[tokio::test]
async fn a_clean_stop_writes_the_passes_it_answered() {
    let mut g = Greyd::start("[greylist]\ndelay = \"1s\"\n[sender_pools]\nspf = false\n").await;
    let mut c = g.client().await;
    let senders: Vec<String> = (0..200).map(|i| format!("{}@example.org", letters(i))).collect();
    for (i, s) in senders.iter().enumerate() {
        assert!(ask(&mut c, "192.0.2.7", s, "r@example.net", &format!("a{i}")).await.starts_with(DEFER));
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for (i, s) in senders.iter().enumerate() {
        assert_eq!(ask(&mut c, "192.0.2.7", s, "r@example.net", &format!("b{i}")).await, "DUNNO");
    }
    drop(c);
    g.daemon().signal(Sig::SIGTERM);
    assert!(g.process.as_mut().unwrap().wait(T).await.is_some_and(|s| s.success()));
    let rows = g.dump();
    assert_eq!(rows.len(), 200);
    let unpassed: Vec<_> = rows.iter().filter(|r| r["passed_at"].is_null()).map(|r| r["sender"].clone()).collect();
    assert!(unpassed.is_empty(), "{} answered passes not written: {unpassed:?}", unpassed.len());
}
