//! `postward-greyd stats` and `dump`, the read-only reports, run as root: before the daemon's
//! first start they refuse and create nothing, and later they leave no file the daemon (user
//! nobody here) cannot write, so greylisting keeps working after an admin looked.
//! Requires `cargo build --workspace` first.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use postward_tests::client::{PolicyClient, rcpt_request};
use postward_tests::process::{Sig, TestFiles, bin_path, running_as_root};

const BIN: &str = "postward-greyd";
const T: Duration = Duration::from_secs(15);
const NOBODY: u32 = 65534;

fn report(cmd: &str, config: &std::path::Path) -> std::process::Output {
    Command::new(bin_path(BIN)).args([cmd, "-c", config.to_str().unwrap()]).output().unwrap()
}

#[tokio::test]
async fn reports_as_root_never_create_or_take_the_database() {
    if !running_as_root() {
        postward_tests::skipped!("needs root: the hazard is a root-owned database file");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    nix::unistd::chown(&state, Some(nix::unistd::Uid::from_raw(NOBODY)), None).unwrap();
    let db = state.join("greyd.sqlite");
    let files = TestFiles::new(dir.path(), "greyd");
    let sections = format!(
        "[greylist]\ndelay = \"1s\"\nauto_whitelist_clients = 1\n[store]\nurl = \"sqlite://{}\"\n",
        db.display()
    );
    files.write("user = \"nobody\"\n", &sections);
    std::fs::set_permissions(&files.config, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();

    // Before the first start: refused, nothing made.
    for cmd in ["stats", "dump"] {
        let out = report(cmd, &files.config);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("no greylist database"), "{cmd}: {out:?}");
        assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0, "{cmd} created a file");
    }

    // The daemon makes the database as nobody; a report run as root while it is stopped
    // leaves every file nobody's.
    let daemon = files.start(BIN, "user = \"nobody\"\n", &sections, T).await;
    let mut c = PolicyClient::connect_unix(&files.socket).await.unwrap();
    let req = rcpt_request("198.51.100.7", "mx.example.org", "a@example.org", "b@example.net", "g.1");
    assert!(c.request(&req).await.unwrap().starts_with("DEFER_IF_PERMIT"));
    let check = |query: &str| {
        Command::new(bin_path(BIN)).args(["check", "-c", files.config.to_str().unwrap(), query]).output().unwrap()
    };
    assert_eq!(check("198.51.100.7").status.code(), Some(1), "not auto-whitelisted before a pass");
    // Its retry passes: with auto_whitelist_clients = 1 the client is auto-whitelisted, and
    // `check` says so (it used to say "no whitelist entry matches").
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let req = rcpt_request("198.51.100.7", "mx.example.org", "a@example.org", "b@example.net", "g.1b");
    assert_eq!(c.request(&req).await.unwrap(), "DUNNO");
    // The pass and its count are written behind, at the writer's next turn (0.5 s when idle).
    let until = std::time::Instant::now() + Duration::from_secs(3);
    let out = loop {
        let out = check("unknown[198.51.100.7]");
        if out.status.code() == Some(0) || std::time::Instant::now() > until {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("auto-whitelisted client (1 passes"), "{out:?}");
    drop(c);
    daemon.signal(Sig::SIGTERM);
    drop(daemon);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for cmd in ["stats", "dump"] {
        let out = report(cmd, &files.config);
        assert_eq!(out.status.code(), Some(0), "{cmd}: {out:?}");
    }
    for entry in std::fs::read_dir(&state).unwrap() {
        let entry = entry.unwrap();
        assert_eq!(entry.metadata().unwrap().uid(), NOBODY, "{} is not nobody's", entry.path().display());
    }
    // And the daemon still writes: a new triplet is greylisted, not answered DUNNO.
    let daemon = files.start(BIN, "user = \"nobody\"\n", &sections, T).await;
    let mut c = PolicyClient::connect_unix(&files.socket).await.unwrap();
    let req = rcpt_request("198.51.100.8", "mx.example.org", "c@example.org", "d@example.net", "g.2");
    let answer = c.request(&req).await.unwrap();
    assert!(answer.starts_with("DEFER_IF_PERMIT"), "{answer}");
    drop(daemon);
}

fn command(config: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(bin_path(BIN)).args(args).args(["-c", config.to_str().unwrap()]).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Asks until the answer starts with `prefix`, for at most 12 s (the daemon looks for admin
/// changes every 5 s); returns the last answer.
async fn answer_becomes(c: &mut PolicyClient, req: &[(&str, &str)], prefix: &str) -> String {
    let until = std::time::Instant::now() + Duration::from_secs(12);
    loop {
        let answer = c.request(req).await.unwrap();
        if answer.starts_with(prefix) || std::time::Instant::now() > until {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `delete` and `whitelist` change what a running greyd answers, although it answers the
/// triplets it has seen from memory: a cached waiting triplet passes once its client is
/// whitelisted, a cached whitelisted client is greylisted again once deleted. Keys are the
/// daemon's own (privacy mode here: the sender and recipient are stored hashed, and a sender
/// typed as the log shows it still finds its row).
#[tokio::test]
async fn delete_and_whitelist_reach_the_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("privacy.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let files = TestFiles::new(dir.path(), "greyd");
    let sections = format!(
        "[greylist]\ndelay = \"1h\"\nauto_whitelist_clients = 3\nprivacy_key_file = \"{}\"\n\
         [store]\nurl = \"sqlite://{}/greyd.sqlite\"\n",
        key.display(),
        dir.path().display()
    );
    let _daemon = files.start(BIN, "", &sections, T).await;
    let config = files.config.as_path();
    let mut c = PolicyClient::connect_unix(&files.socket).await.unwrap();
    let t1 = rcpt_request("198.51.100.7", "mx.example.org", "a@example.org", "b@example.net", "g.1");
    assert!(c.request(&t1).await.unwrap().starts_with("DEFER_IF_PERMIT"));
    assert!(c.request(&t1).await.unwrap().starts_with("DEFER_IF_PERMIT"), "cached, waiting");

    let (code, out) = command(config, &["whitelist", "unknown[198.51.100.7]"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("198.51.100.7: auto-whitelisted (3 passes"), "{out}");
    assert_eq!(answer_becomes(&mut c, &t1, "DUNNO").await, "DUNNO", "the cached waiting triplet passes");

    let (code, out) = command(config, &["delete", "--client", "198.51.100.7"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("deleted 1 greylist entry, 1 client auto-whitelist entry"), "{out}");
    let again = answer_becomes(&mut c, &t1, "DEFER_IF_PERMIT").await;
    assert!(again.starts_with("DEFER_IF_PERMIT"), "greylisted afresh: {again}");

    // One triplet, typed as the mail log shows it; stored hashed and with the extension folded.
    let t2 = rcpt_request("198.51.100.9", "mx.example.org", "Alice+news@Example.org", "bob@example.net", "g.2");
    assert!(c.request(&t2).await.unwrap().starts_with("DEFER_IF_PERMIT"));
    let rows = |net: &str| {
        let (code, out) = command(config, &["dump"]);
        assert_eq!(code, 0, "{out}");
        out.lines().filter(|l| l.contains(&format!("\"client_net\":\"{net}\""))).count()
    };
    assert_eq!(rows("198.51.100.0/24"), 2);
    let (code, out) = command(config, &["delete", "198.51.100.9", "<alice+news@example.org>", "bob@example.net"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(stored hashed)") && out.contains("deleted 1 greylist entry"), "{out}");
    assert_eq!(rows("198.51.100.0/24"), 1, "only the other triplet is left");

    // Nothing to delete, and a typo, say so and exit 1.
    let (code, out) = command(config, &["delete", "198.51.100.9", "alice@example.org", "bob@example.net"]);
    assert_eq!((code, out.contains("nothing stored, nothing deleted")), (1, true), "{out}");
    let (code, out) = command(config, &["delete", "--client", "mx.example.org"]);
    assert_eq!((code, out.contains("\"mx.example.org\" is not an IP address")), (1, true), "{out}");
    let (code, out) = command(config, &["delete", "--sender", "x@example.org", "--client", "192.0.2.1"]);
    assert_eq!((code, out.contains("give one of --client, --sender and --domain")), (1, true), "{out}");
}
