//! End-to-end checks of the tool in-process: the floor server on a Unix socket driven by the
//! policy runner, spawn mode against a shell one-liner, and the auth runner against a tiny
//! scripted auth server.

use std::sync::Arc;
use std::time::Duration;

use shared::listen::{ListenAddr, SocketPermissions, bind_all};
use shared::signals::Shutdown;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::drivers::{AuthDriver, PolicyDriver, Target};
use crate::report::{Meta, Report};
use crate::runner::{self, Plan, Stop};
use crate::trivial;
use crate::workloads::{AuthSpec, AuthWorkload, GreylistSpec, PolicySpec, PolicyWorkload};

fn plan(requests: u64) -> Plan {
    Plan { stop: Stop::Requests(requests), warmup: Duration::ZERO, timeout: Duration::from_secs(10) }
}

fn policy_drivers(target: Target, spec: &PolicySpec, connections: usize) -> Vec<PolicyDriver> {
    let target = Arc::new(target);
    (0..connections).map(|i| PolicyDriver::new(target.clone(), PolicyWorkload::new(spec, 1, i, connections))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floor_answers_dunno_to_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("floor.sock");
    let listeners =
        bind_all(&[ListenAddr::Unix(path.clone())], &SocketPermissions { mode: 0o600, ..Default::default() }).unwrap();
    let (trigger, shutdown) = Shutdown::channel();
    let server = tokio::spawn(trivial::serve(listeners, shutdown));
    let target = Target::Socket(format!("unix:{}", path.display()));

    for spec in [PolicySpec::Trivial, PolicySpec::Greylist(GreylistSpec::default())] {
        let outcome = runner::run(policy_drivers(target.clone(), &spec, 4), plan(200)).await.unwrap();
        let meta = Meta {
            command: "policy",
            workload: spec.name().into(),
            target: "floor".into(),
            connections: 4,
            seed: 1,
            warmup: Duration::ZERO,
        };
        let report = Report::new(meta, outcome);
        assert_eq!(report.answered, 800, "{}", report.text());
        assert_eq!(report.errors, 0, "{}", report.text());
        assert_eq!(report.answers.get("DUNNO"), Some(&800));
        assert_eq!(report.answers.len(), 1);
        assert!(report.requests_per_s > 0.0 && report.latency_ms.max >= report.latency_ms.p50);
    }

    trigger.trigger();
    assert_eq!(server.await.unwrap().unwrap(), 0, "connections left open after the run");
    assert!(!path.exists(), "socket file removed at shutdown");
}

#[tokio::test]
async fn first_connection_failure_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Socket(format!("unix:{}", dir.path().join("nobody.sock").display()));
    let err = runner::run(policy_drivers(target, &PolicySpec::Trivial, 2), plan(1)).await.unwrap_err();
    assert_eq!(err.kind, "connect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_mode_speaks_on_stdin_stdout() {
    // A policy server in sh: answer every empty line, ignore attribute lines.
    let script = r#"while IFS= read -r l; do [ -z "$l" ] && printf 'action=dunno\n\n'; done"#;
    let target = Target::Spawn(vec!["sh".into(), "-c".into(), script.into()]);
    let outcome = runner::run(policy_drivers(target, &PolicySpec::Trivial, 2), plan(20)).await.unwrap();
    assert_eq!(outcome.tally.error_count(), 0, "{:?}", outcome.tally.first_errors);
    assert_eq!(outcome.tally.answers.get("DUNNO"), Some(&40));
    // Memory of both children was read before they were killed.
    assert!(outcome.tally.children_memory.is_some_and(|m| m.vm_rss_kb > 0));
}

/// Answers the Dovecot handshake, then `OK` when the PLAIN password is `pass<N>` for user
/// `user<N>`, else `FAIL`.
async fn fake_authd(listener: tokio::net::UnixListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r).lines();
            let hs = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t1\nCUID\t1\nCOOKIE\t00\nDONE\n";
            w.write_all(hs.as_bytes()).await.unwrap();
            while let Ok(Some(line)) = lines.next_line().await {
                let f: Vec<&str> = line.split('\t').collect();
                if f[0] != "AUTH" {
                    continue;
                }
                let resp = f.iter().find_map(|p| p.strip_prefix("resp=")).unwrap();
                let ok = (0..50).any(|n| {
                    postward_tests::auth_client::plain_response(&format!("user{n}"), &format!("pass{n}")) == resp
                });
                let reply = if ok { format!("OK\t{}\tuser=x\n", f[1]) } else { format!("FAIL\t{}\tuser=x\n", f[1]) };
                w.write_all(reply.as_bytes()).await.unwrap();
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_runner_counts_right_and_wrong_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.sock");
    let server = tokio::spawn(fake_authd(tokio::net::UnixListener::bind(&path).unwrap()));
    let spec = AuthSpec { users: 50, wrong_fraction: 0.2, ..AuthSpec::default() };
    let target: Arc<str> = format!("unix:{}", path.display()).into();
    let drivers =
        (0..3).map(|i| AuthDriver::new(target.clone(), AuthWorkload::new(&spec, 1, i), spec.mech, i)).collect();
    let outcome = runner::run(drivers, plan(100)).await.unwrap();
    let t = &outcome.tally;
    assert_eq!(t.error_count(), 0, "{:?}", t.first_errors);
    assert_eq!(t.answered(), 300);
    assert_eq!(t.answers.get("OK"), t.mix.get("right"));
    assert_eq!(t.answers.get("FAIL"), t.mix.get("wrong"));
    assert!(t.answers.get("FAIL").is_some_and(|&n| n > 20 && n < 100), "{:?}", t.answers);
    server.abort();
}
