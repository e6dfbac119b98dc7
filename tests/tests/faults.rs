//! Fault injection (issue 8): the dependencies misbehave while the real daemons are under
//! load, and each daemon gives its documented answer within bounded time, warns once per
//! outage, recovers by itself, and keeps what it acknowledged.
//!
//! - DNS (policyd): the resolver stops answering, answers late, or answers SERVFAIL.
//! - PostgreSQL and MariaDB (greyd): the daemon's connection to the server is cut and connects
//!   are refused, then the server is back. The cut happens in a TCP proxy between greyd and
//!   the real server, so the server shared by the other tests keeps running. For PostgreSQL a
//!   private server is also stopped with `pg_ctl stop -m fast` and started again.
//! - SQLite (greyd): the database directory is not writable, then becomes writable.
//!
//! The SIGKILL-under-load case is `greyd.rs::sigkill_under_load_loses_no_answered_first_seen_entry`.
//! Requires `cargo build --workspace` first; the database cases need
//! `POSTWARD_TEST_POSTGRES_URL` / `POSTWARD_TEST_MYSQL_URL` (CI sets both) and say when skipped.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use postward_tests::client::{PolicyClient, rcpt_request};
use postward_tests::dns::{DnsFixture, Fault};
use postward_tests::private_pg::PrivatePostgres;
use postward_tests::process::{DaemonProcess, TestFiles, bin_path, running_as_root, start_with_config};
use postward_tests::proxy::TcpProxy;
use postward_tests::request::letters;

const T: Duration = Duration::from_secs(20);
const FAIL: &str = "550 5.7.23 SPF fail: fail.e2e.test does not allow 192.0.2.10 to send mail (mailfrom).";
const TEMPERROR: &str = "DEFER_IF_PERMIT 4.7.24 SPF temperror: cannot check";
const DEFER: &str = "DEFER_IF_PERMIT 4.7.1 Greylisted";

fn count(daemon: &DaemonProcess, needle: &str) -> usize {
    daemon.log().iter().filter(|l| l.contains(needle)).count()
}

// ---------------------------------------------------------------------------------------
// DNS
// ---------------------------------------------------------------------------------------

/// Asks about `n` senders whose domains are not cached, so each one needs DNS.
async fn ask_fresh(c: &mut PolicyClient, tag: &str, n: usize) -> Vec<(String, Duration)> {
    let mut out = Vec::new();
    for i in 0..n {
        let sender = format!("a@{tag}{i}.fresh.e2e.test");
        let started = Instant::now();
        let answer = c
            .request(&rcpt_request("192.0.2.10", "mail.e2e.test", &sender, "b@x.example", &format!("{tag}.{i}")))
            .await
            .unwrap();
        out.push((answer, started.elapsed()));
    }
    out
}

async fn ask_known(c: &mut PolicyClient, instance: &str) -> (String, Duration) {
    let started = Instant::now();
    let a = c
        .request(&rcpt_request("192.0.2.10", "mail.e2e.test", "a@fail.e2e.test", "b@x.example", instance))
        .await
        .unwrap();
    (a, started.elapsed())
}

#[tokio::test]
async fn dns_outages_defer_spf_fail_open_lists_warn_once_and_recover() {
    let dns = DnsFixture::spf_e2e()
        .zone("bl.e2e.test")
        .a("2.0.0.127.bl.e2e.test", "127.0.0.2")
        .a("99.100.51.198.bl.e2e.test", "127.0.0.2")
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = TestFiles::new(dir.path(), "policyd");
    let socket = files.socket.clone();
    // No answer cache, so every request asks the server; the SPF time limit bounds a request.
    let sections = format!(
        "[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\nattempts = 1\ncache_size = 0\n\
         [spf]\nheader = \"none\"\ntime_limit = \"3s\"\ncache_size = 0\n\
         [dnsbl]\nsites = [\"bl.e2e.test\"]\ncache_size = 0\n",
        dns.nameserver()
    );
    let daemon = files.start("postward-policyd", "", &sections, T).await;
    let mut c = PolicyClient::connect_unix(&socket).await.unwrap();
    assert_eq!(ask_known(&mut c, "ok.0").await.0, FAIL);

    let outages =
        [("timeout", Fault::Timeout), ("servfail", Fault::ServFail), ("late", Fault::Delay(Duration::from_secs(2)))];
    for (round, (tag, fault)) in outages.iter().enumerate() {
        dns.set_outage(Some(*fault));
        let answers = ask_fresh(&mut c, tag, 12).await;
        for (answer, took) in &answers {
            assert!(answer.starts_with(TEMPERROR), "{tag}: SPF must defer, not decide, without DNS: {answer}");
            assert!(*took < Duration::from_secs(4), "{tag}: answer took {took:?}, beyond the SPF time limit");
        }
        // One warning for the resolver and one for the list, however many requests failed.
        daemon.wait_for_log("DNS not answering", T).await;
        assert_eq!(count(&daemon, "DNS not answering"), round + 1, "{tag}: one resolver warning per outage");
        assert_eq!(count(&daemon, "DNS list lookup failed"), round + 1, "{tag}: one list warning per outage");

        dns.set_outage(None);
        let deadline = Instant::now() + T;
        loop {
            let (answer, _) = ask_known(&mut c, &format!("back.{round}.{}", deadline.elapsed().as_nanos())).await;
            if answer == FAIL {
                break;
            }
            assert!(Instant::now() < deadline, "{tag}: not recovered: {answer}");
        }
        let recovered = daemon.wait_for_log("DNS answering again", T).await;
        assert!(recovered.contains("lookup(s) failed during the outage"), "{recovered}");
        assert_eq!(count(&daemon, "DNS answering again"), round + 1);
    }

    // A resolver that is slow but within its timeout is not an outage: answers are right.
    dns.set_outage(Some(Fault::Delay(Duration::from_millis(300))));
    let (answer, took) = ask_known(&mut c, "slow.1").await;
    assert_eq!(answer, FAIL);
    assert!(took >= Duration::from_millis(300), "the delay applied: {took:?}");
    dns.set_outage(None);
    assert_eq!(count(&daemon, "DNS not answering"), outages.len(), "no warning for a slow answer");
    // A listed client is still refused after all that: the list's health recovered too.
    let listed = c
        .request(&rcpt_request("198.51.100.99", "mail.e2e.test", "a@fail.e2e.test", "b@x.example", "listed.1"))
        .await
        .unwrap();
    assert!(
        listed.starts_with("REJECT 5.7.1 Service unavailable; Client host [198.51.100.99] blocked using bl.e2e.test"),
        "listed client after recovery: {listed}"
    );
}

// ---------------------------------------------------------------------------------------
// Databases under load
// ---------------------------------------------------------------------------------------

/// A database of its own on a shared server, dropped afterwards.
struct TestDb {
    /// URL with `{hostport}` where the proxy's address goes.
    template: String,
    server: SocketAddr,
    cleanup: Box<dyn Fn() + Send>,
}

impl TestDb {
    fn postgres() -> Option<TestDb> {
        let Ok(base) = std::env::var("POSTWARD_TEST_POSTGRES_URL") else {
            postward_tests::skipped!("POSTWARD_TEST_POSTGRES_URL is not set");
            return None;
        };
        let schema = format!("pw_fault_{}_{}", std::process::id(), nanos());
        psql(&base, &format!("CREATE SCHEMA {schema}"));
        let (server, template) = split_hostport(&base);
        let template = format!("{template}?options=-c%20search_path%3D{schema}");
        let drop_sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
        Some(TestDb { template, server, cleanup: Box::new(move || psql(&base, &drop_sql)) })
    }

    fn mysql() -> Option<TestDb> {
        let Ok(base) = std::env::var("POSTWARD_TEST_MYSQL_URL") else {
            postward_tests::skipped!("POSTWARD_TEST_MYSQL_URL is not set");
            return None;
        };
        let name = format!("pw_fault_{}_{}", std::process::id(), nanos());
        let (server, template) = split_hostport(&base);
        mariadb(server, &format!("CREATE DATABASE {name}"));
        let slash = template.rfind('/').unwrap();
        let template = format!("{}/{name}", &template[..slash]);
        let drop_sql = format!("DROP DATABASE IF EXISTS {name}");
        Some(TestDb { template, server, cleanup: Box::new(move || mariadb(server, &drop_sql)) })
    }

    fn url(&self, port: u16) -> String {
        self.template.replace("{hostport}", &format!("127.0.0.1:{port}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        (self.cleanup)();
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// The server address of a URL, and the URL with `{hostport}` in its place.
fn split_hostport(url: &str) -> (SocketAddr, String) {
    let start = url.find('@').map_or(url.find("//").unwrap() + 2, |i| i + 1);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&url[start..end]).unwrap().next().unwrap();
    let mut template = url.to_owned();
    template.replace_range(start..end, "{hostport}");
    (addr, template)
}

fn psql(url: &str, sql: &str) {
    let out = std::process::Command::new("psql").args([url, "-q", "-c", sql]).output().expect("psql");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
}

fn mariadb(server: SocketAddr, sql: &str) {
    let out = std::process::Command::new("mariadb")
        .args(["-h", &server.ip().to_string(), "-P", &server.port().to_string(), "-u", "root", "-e", sql])
        .output()
        .expect("mariadb client");
    assert!(out.status.success(), "mariadb {sql}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Which part of the run an answer belongs to.
const BEFORE: u8 = 0;
const DURING: u8 = 1;
const AFTER: u8 = 2;

struct Answer {
    phase: u8,
    sender: String,
    answer: String,
    took: Duration,
}

/// How a test takes the database away and brings it back.
enum Cut {
    /// Cut the proxy between greyd and a shared server: sessions reset, connects refused.
    Proxy(TcpProxy),
    /// Stop and start a private server (`pg_ctl stop -m fast`, then `start`).
    Server(Arc<PrivatePostgres>),
}

impl Cut {
    async fn down(&self) {
        match self {
            Cut::Proxy(proxy) => proxy.stop(),
            Cut::Server(pg) => {
                let pg = pg.clone();
                tokio::task::spawn_blocking(move || pg.stop()).await.unwrap();
            }
        }
    }

    async fn up(&self) {
        match self {
            Cut::Proxy(proxy) => proxy.restart().await.unwrap(),
            Cut::Server(pg) => {
                let pg = pg.clone();
                tokio::task::spawn_blocking(move || pg.start_again()).await.unwrap();
            }
        }
    }
}

/// greyd on the database at `url`; four clients send first-time triplets without pause while
/// the database is taken away for four seconds and brought back.
async fn outage_under_load(url: String, cut: Cut) {
    let dir = tempfile::tempdir().unwrap();
    let files = TestFiles::new(dir.path(), "greyd");
    let socket = files.socket.clone();
    // One client address sends them all: without the per-network bound, which defers first
    // attempts beyond 5,000 on purpose without storing them.
    let sections = format!(
        "[greylist]\ndelay = \"1m\"\nmax_pending_per_network = 0\n[sender_pools]\nspf = false\n[store]\nurl = \"{url}\"\ntimeout = \"1s\"\n"
    );
    let daemon = files.start("postward-greyd", "", &sections, T).await;

    let phase = Arc::new(AtomicU8::new(BEFORE));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for n in 0..4 {
        let (socket, phase, stop) = (socket.clone(), phase.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut c = PolicyClient::connect_unix(&socket).await.unwrap();
            let mut answers = Vec::new();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let sender = format!("{}z{}@load.example", letters(n), letters(i));
                i += 1;
                let started = Instant::now();
                let answer = c
                    .request(&rcpt_request("192.0.2.7", "h.example", &sender, "b@example.net", &format!("{n}.{i}")))
                    .await
                    .unwrap_or_else(|e| panic!("client {n} lost its connection: {e}"));
                // The phase when the answer came: a request in flight at the cut belongs to the
                // outage.
                let p = phase.load(Ordering::Relaxed);
                answers.push(Answer { phase: p, sender, answer, took: started.elapsed() });
            }
            answers
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    phase.store(DURING, Ordering::Relaxed);
    cut.down().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    cut.up().await;
    phase.store(AFTER, Ordering::Relaxed);
    // Load goes on until greyd writes again, and a little beyond.
    let deadline = Instant::now() + T;
    while count(&daemon, "store recovered") == 0 {
        assert!(Instant::now() < deadline, "the store did not recover: {:?}", daemon.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut answers = Vec::new();
    for c in clients {
        answers.extend(c.await.unwrap());
    }

    let by_phase = |p: u8| answers.iter().filter(move |a| a.phase == p);
    assert!(by_phase(BEFORE).count() > 20, "load before the outage");
    let odd: Vec<&str> = by_phase(BEFORE).filter(|a| !a.answer.starts_with(DEFER)).map(|a| a.answer.as_str()).collect();
    assert!(
        odd.is_empty(),
        "greylisting before the outage, not {:?}; log {:?}",
        &odd[..odd.len().min(3)],
        daemon.log()
    );
    // During the outage: the documented fail-open answer, never an error or a hang.
    assert!(by_phase(DURING).any(|a| a.answer == "DUNNO"), "fail-open during the outage");
    for a in &answers {
        assert!(a.answer.starts_with(DEFER) || a.answer == "DUNNO", "unexpected answer {:?}", a.answer);
        assert!(a.took < Duration::from_secs(3), "an answer took {:?} (store timeout 1 s)", a.took);
    }
    assert!(
        by_phase(AFTER).rev().take(10).all(|a| a.answer.starts_with(DEFER)),
        "greylisting resumes after the outage"
    );
    assert_eq!(count(&daemon, "store unavailable"), 1, "one warning per outage: {:?}", daemon.log());
    assert_eq!(count(&daemon, "store recovered"), 1);

    // Every triplet greylisted (acknowledged with a deferral) is in the database.
    // tokio's Command: the proxy runs on this test's runtime and must keep forwarding.
    let out = tokio::process::Command::new(bin_path("postward-greyd"))
        .args(["dump", "--config", files.config.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "dump: {}", String::from_utf8_lossy(&out.stderr));
    let stored: HashSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["sender"].as_str().unwrap().to_owned())
        .collect();
    let acknowledged: Vec<&Answer> = answers.iter().filter(|a| a.answer.starts_with(DEFER)).collect();
    let lost: Vec<&str> =
        acknowledged.iter().filter(|a| !stored.contains(&a.sender)).map(|a| a.sender.as_str()).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged entries lost: {:?}; dump starts {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(5)],
        String::from_utf8_lossy(&out.stdout).lines().take(2).collect::<Vec<_>>()
    );
    println!(
        "answers: {} before, {} during ({} fail-open), {} after; {} acknowledged entries all stored",
        by_phase(BEFORE).count(),
        by_phase(DURING).count(),
        by_phase(DURING).filter(|a| a.answer == "DUNNO").count(),
        by_phase(AFTER).count(),
        acknowledged.len()
    );
}

/// Through a proxy to the shared server, so the database name is the test's own.
async fn proxied_outage_under_load(db: TestDb) {
    let proxy = TcpProxy::start(db.server).await.unwrap();
    let url = db.url(proxy.port());
    outage_under_load(url, Cut::Proxy(proxy)).await;
}

#[tokio::test]
async fn postgresql_connection_cut_under_load() {
    let Some(db) = TestDb::postgres() else { return };
    proxied_outage_under_load(db).await;
}

#[tokio::test]
async fn mariadb_connection_cut_under_load() {
    let Some(db) = TestDb::mysql() else { return };
    proxied_outage_under_load(db).await;
}

/// The real thing: a private PostgreSQL server stopped by `pg_ctl` and started again.
#[tokio::test]
async fn postgresql_server_stopped_and_restarted_under_load() {
    let Some(pg) = PrivatePostgres::start() else { return };
    let pg = Arc::new(pg);
    outage_under_load(pg.url(), Cut::Server(pg)).await;
}

// ---------------------------------------------------------------------------------------
// SQLite directory not writable
// ---------------------------------------------------------------------------------------

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// As root, permission bits do not stop writes: the daemon then runs as `nobody` (its own
/// privilege drop), which owns the directory the test makes read-only.
fn as_nobody(dir: &Path) -> &'static str {
    if !running_as_root() {
        return "";
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("user nobody");
    nix::unistd::chown(dir, Some(nobody.uid), Some(nobody.gid)).unwrap();
    "user = \"nobody\"\n"
}

#[tokio::test]
async fn sqlite_directory_not_writable_fails_open_then_recovers_without_restart() {
    let top = tempfile::tempdir().unwrap();
    chmod(top.path(), 0o755);
    let data: PathBuf = top.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let socket_dir = top.path().join("run");
    std::fs::create_dir(&socket_dir).unwrap();
    let user_line = as_nobody(&data);
    if !user_line.is_empty() {
        as_nobody(&socket_dir);
    }
    chmod(&data, 0o555);
    let socket = socket_dir.join("greyd.sock");
    let config = top.path().join("greyd.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"unix:{}\"]\n{user_line}\n[greylist]\ndelay = \"1m\"\n[sender_pools]\nspf = false\n\
             [store]\nurl = \"sqlite://{}/greyd.sqlite\"\ntimeout = \"1s\"\n",
            socket.display(),
            data.display()
        ),
    )
    .unwrap();
    chmod(&config, 0o644);
    let daemon = start_with_config("postward-greyd", &config, &socket, T).await;
    let mut c = PolicyClient::connect_unix(&socket).await.unwrap();
    for i in 0..5 {
        let started = Instant::now();
        let answer = c
            .request(&rcpt_request("192.0.2.7", "h.example", &format!("ro{i}@example.org"), "b@example.net", "1"))
            .await
            .unwrap();
        assert_eq!(answer, "DUNNO", "fail-open while the store cannot be opened");
        assert!(started.elapsed() < Duration::from_secs(3), "bounded: {:?}", started.elapsed());
    }
    assert_eq!(count(&daemon, "store unavailable"), 1, "one warning: {:?}", daemon.log());
    assert!(!data.join("greyd.sqlite").exists());

    chmod(&data, 0o755);
    let deadline = Instant::now() + T;
    loop {
        let answer =
            c.request(&rcpt_request("192.0.2.7", "h.example", "back@example.org", "b@example.net", "2")).await.unwrap();
        if answer.starts_with(DEFER) {
            break;
        }
        assert!(Instant::now() < deadline, "greylisting did not resume once the directory was writable");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    daemon.wait_for_log("store recovered", T).await;
    assert!(data.join("greyd.sqlite").exists(), "the database was created without a restart");
    assert_eq!(count(&daemon, "store unavailable"), 1);
}
