//! The shared policy server under concurrency and bad input, in-process on a Unix socket.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use postward_tests::client::{ClientError, PolicyClient, rcpt_request};
use shared::daemon::serve_policy_conn;
use shared::listen::{SocketPermissions, bind_unix};
use shared::policy::{Action, Decision, Header, PolicyRequest, PolicyService, ServeOptions};
use shared::server::{ServerOptions, run};
use shared::signals::{Shutdown, ShutdownTrigger};
use tokio::sync::watch;

/// Answers each request with a header that echoes its recipient, so every reply can be
/// matched to the request that caused it.
struct Echo;

impl PolicyService for Echo {
    async fn decide(&self, request: &PolicyRequest) -> Decision {
        let header = Header::new("X-Echo", &request.recipient).expect("valid header name");
        Decision::new(Action::Prepend(header), "echo")
    }
}

struct Server {
    socket: String,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<std::io::Result<usize>>,
    _dir: tempfile::TempDir,
}

fn start(options: ServeOptions, max_connections: usize) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.sock");
    let listener = bind_unix(&path, &SocketPermissions { mode: 0o600, ..Default::default() }).unwrap();
    let (_tx, rx) = watch::channel(Arc::new(Echo));
    std::mem::forget(_tx);
    let (trigger, shutdown) = Shutdown::channel();
    let handler = move |conn, peer, shutdown| serve_policy_conn(rx.clone(), conn, peer, options, shutdown);
    let server_options = ServerOptions { max_connections, shutdown_grace: Duration::from_secs(5) };
    let task = tokio::spawn(run(vec![listener], server_options, shutdown, handler));
    Server { socket: format!("unix:{}", path.display()), trigger, task, _dir: dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_connections_times_fifty_requests_each_get_exactly_one_correct_reply() {
    let server = start(ServeOptions::default(), 1000);
    let mut tasks = Vec::new();
    for c in 0..200 {
        let socket = server.socket.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = PolicyClient::connect(&socket).await.unwrap();
            for r in 0..50 {
                let rcpt = format!("c{c}-r{r}@example.net");
                let inst = format!("{c}.{r}");
                let reply = client
                    .request(&rcpt_request("192.0.2.1", "mx.example.org", "a@example.org", &rcpt, &inst))
                    .await
                    .unwrap();
                assert_eq!(reply, format!("PREPEND X-Echo: {rcpt}"));
            }
            // Exactly one reply per request: nothing more arrives unasked.
            let extra = tokio::time::timeout(Duration::from_millis(50), client.read_reply()).await;
            assert!(extra.is_err(), "unsolicited bytes after the last reply: {extra:?}");
            50
        }));
    }
    let mut answered = 0;
    for t in tasks {
        answered += t.await.unwrap();
    }
    assert_eq!(answered, 200 * 50);
    server.trigger.trigger();
    assert_eq!(server.task.await.unwrap().unwrap(), 0, "clean drain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_one_connection_closes_only_that_one() {
    let server = start(ServeOptions::default(), 1000);
    // Well-behaved clients, connected before and after the bad one.
    let mut good: Vec<PolicyClient> = Vec::new();
    for _ in 0..10 {
        good.push(PolicyClient::connect(&server.socket).await.unwrap());
    }
    let garbage: [&[u8]; 5] = [
        b"hello world\n\n",
        b"request=smtpd_access_policy\nsender=a\0b\n\n",
        b"\n",
        b"=value\n\n",
        b"request=other\n\n",
    ];
    for bytes in garbage {
        let mut bad = PolicyClient::connect(&server.socket).await.unwrap();
        bad.send_raw(bytes).await.unwrap();
        // No reply at all: the connection is closed.
        assert!(
            matches!(bad.read_reply().await, Err(ClientError::Closed)),
            "garbage {bytes:?} must be answered by closing"
        );
        for (i, client) in good.iter_mut().enumerate() {
            let rcpt = format!("good{i}@example.net");
            let reply = client.request(&rcpt_request("192.0.2.9", "h", "s@example.org", &rcpt, "1")).await.unwrap();
            assert_eq!(reply, format!("PREPEND X-Echo: {rcpt}"));
        }
    }
    let mut late = PolicyClient::connect(&server.socket).await.unwrap();
    assert_eq!(late.request(&rcpt_request("192.0.2.9", "h", "", "x@y", "1")).await.unwrap(), "PREPEND X-Echo: x@y");
    server.trigger.trigger();
    server.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_request_times_out_and_idle_connection_is_kept() {
    let options = ServeOptions {
        request_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(3600),
        ..ServeOptions::default()
    };
    let server = start(options, 1000);
    let mut stalled = PolicyClient::connect(&server.socket).await.unwrap();
    stalled.send_raw(b"request=smtpd_access_policy\nsender=").await.unwrap();
    let mut idle = PolicyClient::connect(&server.socket).await.unwrap();
    let started = std::time::Instant::now();
    assert!(matches!(stalled.read_reply().await, Err(ClientError::Closed)));
    assert!(started.elapsed() < Duration::from_secs(3), "the stalled request must be cut off near request_timeout");
    // The idle connection, silent for longer than request_timeout, still works.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(idle.request(&rcpt_request("192.0.2.1", "h", "", "r@x", "1")).await.unwrap(), "PREPEND X-Echo: r@x");
    server.trigger.trigger();
    server.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_queues_new_clients_until_a_slot_frees() {
    let server = start(ServeOptions::default(), 2);
    let mut a = PolicyClient::connect(&server.socket).await.unwrap();
    let mut b = PolicyClient::connect(&server.socket).await.unwrap();
    assert_eq!(a.request(&rcpt_request("192.0.2.1", "h", "", "a@x", "1")).await.unwrap(), "PREPEND X-Echo: a@x");
    assert_eq!(b.request(&rcpt_request("192.0.2.1", "h", "", "b@x", "1")).await.unwrap(), "PREPEND X-Echo: b@x");
    // A third client connects (kernel backlog) but is not served while two are open.
    let mut c = PolicyClient::connect(&server.socket).await.unwrap();
    let waiting =
        tokio::time::timeout(Duration::from_millis(300), c.request(&rcpt_request("192.0.2.1", "h", "", "c@x", "1")))
            .await;
    assert!(waiting.is_err(), "third connection must wait while the limit is reached");
    drop(a);
    let served =
        tokio::time::timeout(Duration::from_secs(5), c.read_reply()).await.expect("served once a slot frees").unwrap();
    assert_eq!(served, "PREPEND X-Echo: c@x");
    assert_eq!(b.request(&rcpt_request("192.0.2.1", "h", "", "b2@x", "1")).await.unwrap(), "PREPEND X-Echo: b2@x");
    server.trigger.trigger();
    server.task.await.unwrap().unwrap();
}
