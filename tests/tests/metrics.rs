//! The optional Prometheus endpoint (`server.metrics_listen`) of the real binaries: after
//! real requests, `GET /metrics` shows them by action and reason (greyd, policyd), by
//! mechanism and result (authd), with latency histograms, DNS errors and cache hits; other
//! paths get 404, and with the key unset nothing listens. Requires `cargo build --workspace`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use postward_tests::auth_client::{AuthClient, AuthOutcome};
use postward_tests::client::{PolicyClient, rcpt_request};
use postward_tests::dns::DnsFixture;
use postward_tests::process::{DaemonProcess, TestFiles, free_tcp_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(10);

/// One HTTP GET; the status line and the body.
async fn get(port: u16, path: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes()).await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(T, s.read_to_string(&mut reply)).await.unwrap().unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The value of the sample line starting with `series` (name and labels).
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

async fn start(dir: &Path, daemon: &str, extra: &str) -> (DaemonProcess, String) {
    let files = TestFiles::new(dir, daemon);
    let d = files.start(&format!("postward-{daemon}"), "", extra, T).await;
    (d, files.address())
}

#[tokio::test]
async fn greyd_counts_requests_by_action_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port().unwrap();
    let extra = format!(
        "metrics_listen = \"127.0.0.1:{port}\"\n[store]\nurl = \"sqlite://{}/g.sqlite\"\n[sender_pools]\nspf = false\n",
        dir.path().display()
    );
    let (daemon, addr) = start(dir.path(), "greyd", &extra).await;
    daemon.wait_for_log(&format!("metrics on http://127.0.0.1:{port}/metrics"), T).await;
    let mut c = PolicyClient::connect(&addr).await.unwrap();
    for n in 0..3 {
        let rcpt = format!("r{n}@example.net");
        let reply =
            c.request(&rcpt_request("192.0.2.1", "mx.example.org", "a@example.org", &rcpt, "i1")).await.unwrap();
        assert!(reply.contains("DEFER_IF_PERMIT"), "{reply}");
    }
    let (status, body) = get(port, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    let deferred = sample(&body, "postward_policy_requests_total{action=\"DEFER_IF_PERMIT\"");
    assert_eq!(deferred, Some(3.0), "{body}");
    assert_eq!(sample(&body, "postward_policy_request_duration_seconds_count"), Some(3.0), "{body}");
    assert!(body.contains("postward_policy_request_duration_seconds_bucket{le=\"0.005\"}"), "{body}");
    let (status, _) = get(port, "/other").await;
    assert!(status.contains("404"), "{status}");
}

#[tokio::test]
async fn policyd_counts_dns_errors() {
    let dns = DnsFixture::builder().zone("broken.test").servfail("broken.test").start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port().unwrap();
    let extra = format!(
        "metrics_listen = \"127.0.0.1:{port}\"\n[dns]\nnameservers = [\"{}\"]\nattempts = 1\n",
        dns.nameserver()
    );
    let (_daemon, addr) = start(dir.path(), "policyd", &extra).await;
    let mut c = PolicyClient::connect(&addr).await.unwrap();
    let reply =
        c.request(&rcpt_request("192.0.2.1", "mx.broken.test", "a@broken.test", "r@example.net", "i2")).await.unwrap();
    assert!(reply.contains("DEFER_IF_PERMIT"), "temperror is deferred: {reply}");
    let (_, body) = get(port, "/metrics").await;
    assert!(sample(&body, "postward_dns_errors_total{kind=\"failed\"}").is_some_and(|v| v >= 1.0), "{body}");
    assert_eq!(sample(&body, "postward_policy_requests_total{action=\"DEFER_IF_PERMIT\""), Some(1.0), "{body}");
}

#[tokio::test]
async fn authd_counts_attempts_by_result_and_cache_hits() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    std::fs::write(&passwd, "alice@example.com:{PLAIN}right::::::\n").unwrap();
    let port = free_tcp_port().unwrap();
    let extra = format!(
        "metrics_listen = \"127.0.0.1:{port}\"\n[auth]\nfailure_delay = \"0s\"\n[passdb]\npath = \"{}\"\n",
        passwd.display()
    );
    let (_daemon, addr) = start(dir.path(), "authd", &extra).await;
    let mut c = AuthClient::connect(&addr).await.unwrap();
    c.handshake(1).await.unwrap();
    for _ in 0..2 {
        assert!(matches!(c.plain("alice@example.com", "right").await.unwrap(), AuthOutcome::Ok { .. }));
    }
    assert!(matches!(c.login("alice@example.com", "wrong").await.unwrap(), AuthOutcome::Fail { .. }));
    let (_, body) = get(port, "/metrics").await;
    assert_eq!(sample(&body, "postward_auth_attempts_total{mechanism=\"PLAIN\",result=\"ok\"}"), Some(2.0), "{body}");
    let failed = sample(&body, "postward_auth_attempts_total{mechanism=\"LOGIN\",result=\"password-mismatch\"}");
    assert_eq!(failed, Some(1.0), "{body}");
    assert_eq!(sample(&body, "postward_auth_cache_hits_total"), Some(1.0), "{body}");
    assert!(!body.contains("right") && !body.contains("alice"), "no user names or passwords in metrics: {body}");
}

#[tokio::test]
async fn no_endpoint_unless_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, _) = start(dir.path(), "policyd", "").await;
    assert!(!daemon.log().iter().any(|l| l.contains("metrics on")), "{:?}", daemon.log());
}
