//! The shipped fail2ban filter (`contrib/fail2ban/filter.d/postward-authd.conf`) against log
//! lines the real `postward-authd` wrote: it finds the client address of every guess (wrong
//! password, unknown user, refused name) and never that of a successful login or of a
//! temporary failure (a store outage must not ban the users it locked out).
//!
//! Runs `fail2ban-regex` from the Debian package fail2ban (CI installs it); elsewhere the
//! test says it was skipped. Requires `cargo build --workspace` first.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use postward_tests::auth_client::{AuthClient, AuthOutcome};
use postward_tests::process::{DaemonProcess, TestFiles};

const T: Duration = Duration::from_secs(10);

/// Starts authd on `dir/<name>.sock` with the `[passdb]` lines given.
async fn authd(dir: &Path, name: &str, passdb: &str) -> (DaemonProcess, AuthClient) {
    let files = TestFiles::new(dir, name);
    let sections = format!("[auth]\nfailure_delay = \"0s\"\n[throttle]\nenabled = false\n[passdb]\n{passdb}");
    let daemon = files.start("postward-authd", "", &sections, T).await;
    let mut client = AuthClient::connect(&files.address()).await.unwrap();
    client.handshake(1).await.unwrap();
    (daemon, client)
}

#[tokio::test]
async fn filter_matches_guesses_and_nothing_else() {
    if std::process::Command::new("fail2ban-regex").arg("--version").output().is_err() {
        postward_tests::skipped!("fail2ban-regex not installed (apt-get install fail2ban)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    std::fs::write(&passwd, "alice@example.com:{PLAIN}right-one::::::\n").unwrap();
    let (file_daemon, mut c) = authd(dir.path(), "file", &format!("path = \"{}\"\n", passwd.display())).await;
    let ok = |o: AuthOutcome| matches!(o, AuthOutcome::Ok { .. });
    c.set_rip("192.0.2.10");
    assert!(ok(c.plain("alice@example.com", "right-one").await.unwrap()));
    c.set_rip("192.0.2.11");
    assert!(!ok(c.plain("alice@example.com", "wrong-one").await.unwrap()));
    c.set_rip("2001:db8::12");
    assert!(!ok(c.login("mallory@example.com", "guess").await.unwrap()));
    c.set_rip("192.0.2.13");
    assert!(!ok(c.plain("bad name", "guess").await.unwrap()));
    file_daemon.wait_for_log("rip=192.0.2.13", T).await;
    // A LOGIN exchange left after its first challenge: abandoned, a guess too.
    c.send("AUTH\t99\tLOGIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.15\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(c);
    file_daemon.wait_for_log("rip=192.0.2.15", T).await;

    // A database that cannot be reached: temporary failures.
    let sql = format!("driver = \"sql\"\nurl = \"sqlite://{}/missing/dir/users.db\"\n", dir.path().display());
    let (sql_daemon, mut c) = authd(dir.path(), "sql", &sql).await;
    c.set_rip("192.0.2.14");
    assert!(!ok(c.plain("alice@example.com", "right-one").await.unwrap()));
    sql_daemon.wait_for_log("reason=temporary-failure", T).await;

    // As syslog writes them (server.log.destination = "syslog").
    let mut log = String::new();
    for line in file_daemon.log().iter().chain(sql_daemon.log().iter()) {
        log.push_str(&format!("Nov 21 07:21:37 mx postward-authd[4242]: {line}\n"));
    }
    let log_path = dir.path().join("maillog");
    std::fs::write(&log_path, &log).unwrap();
    // The filter includes common.conf from its own directory, as under /etc/fail2ban.
    let filters = dir.path().join("filter.d");
    std::fs::create_dir(&filters).unwrap();
    std::fs::copy("/etc/fail2ban/filter.d/common.conf", filters.join("common.conf")).unwrap();
    let filter = filters.join("postward-authd.conf");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/fail2ban/filter.d/postward-authd.conf");
    std::fs::copy(shipped, &filter).unwrap();
    let out =
        std::process::Command::new("fail2ban-regex").args(["-o", "ip"]).arg(&log_path).arg(&filter).output().unwrap();
    assert!(out.status.success(), "fail2ban-regex: {}", String::from_utf8_lossy(&out.stderr));
    let found: BTreeSet<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    let want: BTreeSet<String> =
        ["192.0.2.11", "2001:db8::12", "192.0.2.13", "192.0.2.15"].into_iter().map(str::to_owned).collect();
    assert_eq!(found, want, "log:\n{log}");
}
