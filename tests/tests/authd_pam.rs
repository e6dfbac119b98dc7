//! authd's PAM store against the host's real PAM (pam_unix through a service file of the
//! test's own), with system accounts the test creates: a right password logs in, a wrong one
//! or an unknown user does not, and a locked account, an expired account and a user outside
//! `required_group` are refused even with the right password.
//!
//! Needs root (useradd, /etc/pam.d, and pam_unix reading /etc/shadow); CI runs as root.
//! Elsewhere the test says it was skipped. Requires `cargo build --workspace` first.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use postward_tests::auth_client::{AuthClient, AuthOutcome};
use postward_tests::process::TestFiles;

const T: Duration = Duration::from_secs(10);
const PASSWORD: &str = "Pam-Rt4-Correct-Horse";

/// The system accounts, group and PAM service file of one test run; removed when dropped.
struct System {
    prefix: String,
    users: Vec<String>,
    group: String,
    pam_file: PathBuf,
}

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn chpasswd(user: &str, password: &str) {
    use std::io::Write as _;
    let mut child = Command::new("chpasswd").stdin(std::process::Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{user}:{password}\n").as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "chpasswd {user}");
}

impl System {
    fn why_not() -> Option<String> {
        if !nix::unistd::geteuid().is_root() {
            return Some("not running as root (needs useradd and /etc/pam.d)".to_owned());
        }
        if Command::new("useradd").arg("--help").output().is_err() {
            return Some("useradd not found".to_owned());
        }
        None
    }

    /// Users `<prefix>ok`, `<prefix>locked`, `<prefix>expired` (all in the group) and
    /// `<prefix>outside` (not in it), all with [`PASSWORD`].
    fn create(tag: &str) -> System {
        let prefix = format!("pwpam{}{tag}", std::process::id() % 100_000);
        let group = format!("{prefix}grp");
        let mut system = System {
            prefix: prefix.clone(),
            users: Vec::new(),
            group: group.clone(),
            pam_file: PathBuf::from(format!("/etc/pam.d/postward-test-{prefix}")),
        };
        run(&["groupadd", &group]);
        for suffix in ["ok", "locked", "expired", "outside"] {
            let user = format!("{prefix}{suffix}");
            run(&["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", &user]);
            system.users.push(user.clone());
            chpasswd(&user, PASSWORD);
            if suffix != "outside" {
                run(&["usermod", "--append", "--groups", &group, &user]);
            }
        }
        run(&["usermod", "--lock", &format!("{prefix}locked")]);
        run(&["chage", "--expiredate", "1", &format!("{prefix}expired")]);
        std::fs::write(&system.pam_file, "auth required pam_unix.so nodelay\naccount required pam_unix.so\n").unwrap();
        system
    }

    fn user(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    fn pam_service(&self) -> String {
        self.pam_file.file_name().unwrap().to_string_lossy().into_owned()
    }
}

impl Drop for System {
    fn drop(&mut self) {
        for user in &self.users {
            let _ = Command::new("userdel").arg(user).output();
        }
        let _ = Command::new("groupdel").arg(&self.group).output();
        let _ = std::fs::remove_file(&self.pam_file);
    }
}

#[tokio::test]
async fn pam_store_with_real_system_accounts() {
    if let Some(why) = System::why_not() {
        postward_tests::skipped!("{why}");
        return;
    }
    let system = System::create("a");
    let dir = tempfile::tempdir().unwrap();
    let files = TestFiles::new(dir.path(), "authd");
    let sections = format!(
        "[auth]\nfailure_delay = \"0s\"\n[throttle]\nenabled = false\n\
         [passdb]\ndriver = \"pam\"\npam_service = \"{}\"\nrequired_group = \"{}\"\n",
        system.pam_service(),
        system.group
    );
    let daemon = files.start("postward-authd", "", &sections, T).await;
    let mut c = AuthClient::connect(&files.address()).await.unwrap();
    c.handshake(7).await.unwrap();
    c.set_rip("192.0.2.7");

    let ok = system.user("ok");
    assert_eq!(c.plain(&ok, PASSWORD).await.unwrap(), AuthOutcome::Ok { user: Some(ok.clone()) });
    assert_eq!(c.login(&ok, PASSWORD).await.unwrap(), AuthOutcome::Ok { user: Some(ok.clone()) });
    let failed = |o: &AuthOutcome| matches!(o, AuthOutcome::Fail { .. });
    assert!(failed(&c.plain(&ok, "wrong-password").await.unwrap()));
    assert!(failed(&c.plain(&system.user("nosuchuser"), PASSWORD).await.unwrap()));
    for refused in ["locked", "expired", "outside"] {
        let outcome = c.plain(&system.user(refused), PASSWORD).await.unwrap();
        assert!(failed(&outcome), "{refused}: {outcome:?}");
    }

    daemon.wait_for_log(&format!("user={} ", system.user("outside")), T).await;
    let log = daemon.log().join("\n");
    let line = |user: &str, words: &str| {
        let needle = format!("user={user} ");
        log.lines().any(|l| l.contains(&needle) && l.contains(words))
    };
    assert!(line(&ok, "authentication ok"), "{log}");
    assert!(line(&ok, "reason=password-mismatch"), "{log}");
    assert!(line(&system.user("nosuchuser"), "reason=password-mismatch"), "{log}");
    // pam_unix refuses a locked account at authentication: it looks like a wrong password.
    assert!(line(&system.user("locked"), "authentication failed"), "{log}");
    assert!(line(&system.user("expired"), "reason=expired"), "{log}");
    assert!(line(&system.user("outside"), "reason=disabled (not in passdb.required_group)"), "{log}");
    assert!(!log.contains(PASSWORD), "a password in the log:\n{log}");
    // An unknown user is answered no faster than a wrong password (pam_unix alone would
    // answer it without hashing).
    let ms = |user: &str| -> u64 {
        let l = log.lines().find(|l| l.contains(&format!("user={user} ")) && l.contains("failed")).unwrap();
        l.rsplit("ms=").next().unwrap().parse().unwrap()
    };
    let (wrong, unknown) = (ms(&ok), ms(&system.user("nosuchuser")));
    assert!(unknown * 2 >= wrong, "unknown user {unknown} ms, wrong password {wrong} ms");
}

/// Finding 6: a PAM login is not taken from the cache by default, and with
/// `cache.pam_logins` on, a cache hit still runs account management: an account that
/// expires after its first login is refused at once either way.
#[tokio::test]
async fn cached_pam_logins_still_meet_account_management() {
    if let Some(why) = System::why_not() {
        postward_tests::skipped!("{why}");
        return;
    }
    let system = System::create("c");
    for (cache, user) in [("", "ok"), ("[cache]\npam_logins = true\n", "expired")] {
        let user = system.user(user);
        run(&["chage", "--expiredate", "-1", &user]);
        let dir = tempfile::tempdir().unwrap();
        let files = TestFiles::new(dir.path(), "authd");
        let sections = format!(
            "[auth]\nfailure_delay = \"0s\"\n[throttle]\nenabled = false\n{cache}\
             [passdb]\ndriver = \"pam\"\npam_service = \"{}\"\n",
            system.pam_service()
        );
        let daemon = files.start("postward-authd", "", &sections, T).await;
        let mut c = AuthClient::connect(&files.address()).await.unwrap();
        c.handshake(7).await.unwrap();
        c.set_rip("192.0.2.7");
        for _ in 0..2 {
            assert_eq!(c.plain(&user, PASSWORD).await.unwrap(), AuthOutcome::Ok { user: Some(user.clone()) });
        }
        run(&["chage", "--expiredate", "1", &user]);
        let outcome = c.plain(&user, PASSWORD).await.unwrap();
        assert!(matches!(outcome, AuthOutcome::Fail { .. }), "{cache:?}: an expired account got {outcome:?}");
        daemon.wait_for_log("reason=expired", T).await;
        let log = daemon.log().join("\n");
        assert!(log.lines().any(|l| l.contains(&format!("user={user} ")) && l.contains("reason=expired")), "{log}");
    }
}

#[tokio::test]
async fn pam_refuses_mechanisms_it_cannot_serve() {
    // A configuration check only: it needs neither root nor accounts.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("authd.toml");
    std::fs::write(&config, "[auth]\nmechanisms = [\"PLAIN\", \"CRAM-MD5\"]\n[passdb]\ndriver = \"pam\"\n").unwrap();
    let out = Command::new(postward_tests::process::bin_path("postward-authd"))
        .args(["--check-config", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("auth.mechanisms[1]") && err.contains("pam"), "{err}");
}

/// The Debian stack shipped in contrib (`@include common-auth`, `common-account`) serves a
/// real account: its password logs in, a wrong one fails, an expired account is refused
/// by the account stack.
#[tokio::test]
async fn the_debian_pam_stack_from_contrib_serves_system_accounts() {
    if let Some(why) = System::why_not() {
        postward_tests::skipped!("{why}");
        return;
    }
    if !std::path::Path::new("/etc/pam.d/common-auth").exists() {
        postward_tests::skipped!("no /etc/pam.d/common-auth: not a Debian system");
        return;
    }
    let system = System::create("d");
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../contrib/pam.d/postward-authd.debian");
    std::fs::copy(shipped, &system.pam_file).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = TestFiles::new(dir.path(), "authd");
    let sections = format!(
        "[auth]\nfailure_delay = \"0s\"\n[throttle]\nenabled = false\n\
         [passdb]\ndriver = \"pam\"\npam_service = \"{}\"\n",
        system.pam_service()
    );
    let _daemon = files.start("postward-authd", "", &sections, T).await;
    let mut c = AuthClient::connect(&files.address()).await.unwrap();
    c.handshake(9).await.unwrap();
    c.set_rip("192.0.2.9");
    let ok = system.user("ok");
    assert_eq!(c.plain(&ok, PASSWORD).await.unwrap(), AuthOutcome::Ok { user: Some(ok.clone()) });
    let failed = |o: &AuthOutcome| matches!(o, AuthOutcome::Fail { .. });
    assert!(failed(&c.plain(&ok, "wrong-password").await.unwrap()));
    assert!(failed(&c.plain(&system.user("expired"), PASSWORD).await.unwrap()));
}
