//! Resource limits (issue 8): thousands of idle connections cost little and slow nobody down,
//! and the connection limit holds new clients back without starving the ones already in.
//! Runs the real postward-policyd (the accept loop and per-connection reader are shared by
//! all three daemons). Requires `cargo build --workspace` first.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use postward_tests::client::{PolicyClient, rcpt_request};
use postward_tests::process::{DaemonProcess, TestFiles};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const T: Duration = Duration::from_secs(20);

/// policyd with no checks configured: it answers DUNNO at once, so what is measured is the
/// server, not DNS.
async fn policyd(dir: &Path, max_connections: usize) -> DaemonProcess {
    let server = format!("max_connections = {max_connections}");
    TestFiles::new(dir, "policyd").start("postward-policyd", &server, "[spf]\nenabled = false\n", T).await
}

fn request(instance: &str) -> Vec<(String, String)> {
    rcpt_request("192.0.2.7", "h.example", "a@example.org", "b@example.net", instance)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

async fn ask(c: &mut PolicyClient, instance: &str) -> String {
    let attrs = request(instance);
    let borrowed: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    c.request(&borrowed).await.unwrap()
}

/// One raw request on a raw stream (the idle connections are plain sockets).
async fn ask_raw(s: &mut UnixStream) -> String {
    let mut text = String::new();
    for (k, v) in request("idle") {
        text.push_str(&format!("{k}={v}\n"));
    }
    text.push('\n');
    s.write_all(text.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while !got.ends_with(b"\n\n") {
        let n = tokio::time::timeout(T, s.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

#[tokio::test]
async fn two_thousand_idle_connections_and_a_hundred_busy_ones() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = policyd(dir.path(), 2200).await;
    let socket = dir.path().join("policyd.sock");
    // Warm up, then note the memory of a daemon with no connection.
    let mut warm = PolicyClient::connect_unix(&socket).await.unwrap();
    assert_eq!(ask(&mut warm, "w").await, "DUNNO");
    drop(warm);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = daemon.rss_kb().unwrap();

    let mut idle = Vec::with_capacity(2000);
    for _ in 0..2000 {
        idle.push(UnixStream::connect(&socket).await.unwrap());
    }
    // Each idle connection sent a first byte-less hello: nothing. Let them all be accepted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = daemon.rss_kb().unwrap();
    let per_conn = (rss_idle.saturating_sub(rss_before)) * 1024 / 2000;

    let started = Instant::now();
    let mut busy = Vec::new();
    for n in 0..100 {
        let socket = socket.clone();
        busy.push(tokio::spawn(async move {
            let mut c = PolicyClient::connect_unix(&socket).await.unwrap();
            let mut times = Vec::new();
            for i in 0..50 {
                let t = Instant::now();
                assert_eq!(ask(&mut c, &format!("{n}.{i}")).await, "DUNNO");
                times.push(t.elapsed());
            }
            times
        }));
    }
    let mut times = Vec::new();
    for b in busy {
        times.extend(b.await.unwrap());
    }
    let wall = started.elapsed();
    times.sort();
    let p50 = times[times.len() / 2];
    let p99 = times[times.len() * 99 / 100];
    // The oldest idle connections are served like any other.
    for s in idle.iter_mut().take(20) {
        assert_eq!(ask_raw(s).await, "action=DUNNO\n\n");
    }
    println!(
        "2000 idle: {} kB RSS before, {} kB with them ({per_conn} bytes each); 100 busy x 50 requests in {wall:?}, \
         p50 {p50:?}, p99 {p99:?}",
        rss_before, rss_idle
    );
    assert_eq!(times.len(), 5000);
    // A 4 KiB read buffer, the task and its timers, the allocator's share: measured at
    // about 15 KiB in a debug build.
    assert!(per_conn < 24 * 1024, "an idle connection costs {per_conn} bytes");
    assert!(p99 < Duration::from_secs(1), "busy clients slowed down by idle ones: p99 {p99:?}");
    let warnings: Vec<String> =
        daemon.log().into_iter().filter(|l| l.contains("warning:") && !l.contains("running as root")).collect();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[tokio::test]
async fn connection_limit_holds_new_clients_back_and_is_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = policyd(dir.path(), 50).await;
    let socket = dir.path().join("policyd.sock");
    let mut open = Vec::new();
    for _ in 0..50 {
        open.push(UnixStream::connect(&socket).await.unwrap());
    }
    // The 51st and 52nd connect (the kernel's backlog) but are not served yet.
    let mut waiting = UnixStream::connect(&socket).await.unwrap();
    let mut waiting2 = UnixStream::connect(&socket).await.unwrap();
    daemon.wait_for_log("connection limit of 50 reached", T).await;
    let mut text = String::new();
    for (k, v) in request("waiting") {
        text.push_str(&format!("{k}={v}\n"));
    }
    text.push('\n');
    waiting.write_all(text.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut buf)).await.is_err(),
        "a client beyond the limit was served"
    );
    // Every connection already in, the oldest first, is still served.
    for s in open.iter_mut() {
        assert_eq!(ask_raw(s).await, "action=DUNNO\n\n");
    }
    // One leaves: the first waiting client gets its answer.
    drop(open.remove(0));
    let n = tokio::time::timeout(T, waiting.read(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf[..n], b"action=DUNNO\n\n");
    drop(open.remove(0));
    assert_eq!(ask_raw(&mut waiting2).await, "action=DUNNO\n\n");
    assert_eq!(
        daemon.log().iter().filter(|l| l.contains("connection limit of 50 reached")).count(),
        1,
        "the limit warning is not repeated for every client"
    );
}

/// authd's connections carry more (the handshake, a request table, a reply queue): the same
/// 2,000 idle connections, each past its handshake, and 100 clients authenticating.
#[tokio::test]
async fn authd_two_thousand_idle_connections_and_a_hundred_busy_ones() {
    use postward_tests::auth_client::{AuthClient, AuthOutcome};
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    std::fs::write(&passwd, "alice@example.com:{PLAIN}secret::::::\n").unwrap();
    let files = TestFiles::new(dir.path(), "authd");
    let sections = format!(
        "[auth]\nfailure_delay = \"0s\"\n[throttle]\nenabled = false\n[passdb]\npath = \"{}\"\n",
        passwd.display()
    );
    let daemon = files.start("postward-authd", "max_connections = 2200", &sections, T).await;
    let addr = files.address();
    let ok = AuthOutcome::Ok { user: Some("alice@example.com".into()) };
    let mut warm = AuthClient::connect(&addr).await.unwrap();
    warm.handshake(1).await.unwrap();
    assert_eq!(warm.plain("alice@example.com", "secret").await.unwrap(), ok);
    drop(warm);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = daemon.rss_kb().unwrap();

    let mut idle = Vec::with_capacity(2000);
    for i in 0..2000u32 {
        let mut c = AuthClient::connect(&addr).await.unwrap();
        c.handshake(i + 2).await.unwrap();
        idle.push(c);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = daemon.rss_kb().unwrap();
    let per_conn = rss_idle.saturating_sub(rss_before) * 1024 / 2000;

    let mut busy = Vec::new();
    for n in 0..100u32 {
        let addr = addr.clone();
        let ok = ok.clone();
        busy.push(tokio::spawn(async move {
            let mut c = AuthClient::connect(&addr).await.unwrap();
            c.handshake(10_000 + n).await.unwrap();
            let mut times = Vec::new();
            for _ in 0..20 {
                let t = Instant::now();
                assert_eq!(c.plain("alice@example.com", "secret").await.unwrap(), ok);
                times.push(t.elapsed());
            }
            times
        }));
    }
    let mut times = Vec::new();
    for b in busy {
        times.extend(b.await.unwrap());
    }
    times.sort();
    let p99 = times[times.len() * 99 / 100];
    for c in idle.iter_mut().take(20) {
        assert_eq!(c.plain("alice@example.com", "secret").await.unwrap(), ok, "an old idle connection is served");
    }
    println!(
        "authd, 2000 idle: {rss_before} kB RSS before, {rss_idle} kB with them ({per_conn} bytes each); \
         100 busy x 20 authentications, p50 {:?}, p99 {p99:?}",
        times[times.len() / 2]
    );
    assert!(per_conn < 32 * 1024, "an idle authd connection costs {per_conn} bytes");
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");
}
