//! The real `postward-authd` binary: it serves Postfix's lines, logs one line per attempt
//! with no password or SASL payload at any level, answers `test` and `pw`, and reloads its
//! configuration on SIGHUP. Requires `cargo build --workspace` first.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use postward_tests::auth_client::{AuthClient, AuthOutcome, base64_encode, plain_response};
use postward_tests::process::{DaemonProcess, Sig, TestFiles, bin_path, start_with_config};

const BIN: &str = "postward-authd";
const T: Duration = Duration::from_secs(10);
/// Distinctive, so any trace of it in the log is found.
const PASSWORD: &str = "Zq8-Secret-Horse-Battery";

struct Setup {
    dir: tempfile::TempDir,
    files: TestFiles,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let files = TestFiles::new(dir.path(), "authd");
        Setup { dir, files }
    }
    /// Writes the configuration offering `mechanisms` (a TOML list's items).
    fn config(&self, mechanisms: &str) {
        let passwd = self.dir.path().join("passwd");
        std::fs::write(&passwd, format!("alice@example.com:{{PLAIN}}{PASSWORD}::::::\n")).unwrap();
        let sections = format!(
            "[log]\nlevel = \"trace\"\n[auth]\nfailure_delay = \"0s\"\nmechanisms = [{mechanisms}]\n\
             [passdb]\npath = \"{}\"\n",
            passwd.display()
        );
        self.files.write("", &sections);
    }
    async fn start(&self) -> DaemonProcess {
        self.config("\"PLAIN\", \"LOGIN\"");
        start_with_config(BIN, &self.files.config, &self.files.socket, T).await
    }
    async fn client(&self) -> AuthClient {
        let mut c = AuthClient::connect(&self.files.address()).await.unwrap();
        c.handshake(4242).await.unwrap();
        c
    }
}

#[tokio::test]
async fn serves_postfix_and_never_logs_a_password() {
    let s = Setup::new();
    let daemon = s.start().await;
    let mut c = s.client().await;
    c.set_rip("192.0.2.44");
    let ok = AuthOutcome::Ok { user: Some("alice@example.com".into()) };
    assert_eq!(c.plain("alice@example.com", PASSWORD).await.unwrap(), ok);
    assert_eq!(c.login("alice@example.com", PASSWORD).await.unwrap(), ok);
    let wrong = format!("{PASSWORD}x");
    assert!(matches!(c.plain("alice@example.com", &wrong).await.unwrap(), AuthOutcome::Fail { .. }));
    assert!(matches!(c.login("alice@example.com", &wrong).await.unwrap(), AuthOutcome::Fail { .. }));
    // A name that is refused is never logged (it may be a password typed in the wrong field).
    let bad_name = format!("{PASSWORD} {PASSWORD}");
    assert!(matches!(c.plain(&bad_name, PASSWORD).await.unwrap(), AuthOutcome::Fail { .. }));
    daemon.wait_for_log("authentication failed: user=(invalid)", T).await;
    let log = daemon.log().join("\n");
    let secrets = [
        PASSWORD.to_owned(),
        wrong.clone(),
        base64_encode(PASSWORD.as_bytes()),
        base64_encode(wrong.as_bytes()),
        plain_response("alice@example.com", PASSWORD),
        plain_response("alice@example.com", &wrong),
    ];
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "log contains {secret:?}:\n{log}");
    }
    // One line per attempt, with what fail2ban needs.
    let attempts: Vec<&str> = log.lines().filter(|l| l.contains("authentication ")).collect();
    assert_eq!(attempts.len(), 5, "{log}");
    assert!(attempts[0].contains("authentication ok: user=alice@example.com method=PLAIN rip=192.0.2.44 service=smtp"));
    assert!(attempts[1].contains("method=LOGIN"));
    assert!(attempts[2].contains("authentication failed: user=alice@example.com method=PLAIN rip=192.0.2.44"));
    assert!(attempts[2].contains("reason=password-mismatch"));
}

#[tokio::test]
async fn test_and_pw_commands() {
    let s = Setup::new();
    let _daemon = s.start().await;
    let addr = s.files.address();
    let run = |args: &[&str]| std::process::Command::new(bin_path(BIN)).args(args).output().unwrap();
    let out = run(&["test", "-a", &addr, "alice@example.com", PASSWORD]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK 1 user=alice@example.com");
    let out = run(&["test", "-a", &addr, "-m", "LOGIN", "alice@example.com", "nope"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("FAIL 1"));
    let out = run(&["test", "-a", "unix:/nonexistent/sock", "alice", "x"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // pw prints a hash the daemon accepts.
    let out = run(&["pw", "-s", "SHA256-CRYPT", "-p", "hashed pw"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(hash.starts_with("{SHA256-CRYPT}$5$"), "{hash}");
    let stored = authd::scheme::Stored::parse(&hash, authd::scheme::Scheme::Crypt).unwrap();
    assert!(stored.verify(b"hashed pw") && !stored.verify(b"hashed pw2"));
    assert_eq!(run(&["pw", "-s", "NOPE", "-p", "x"]).status.code(), Some(2));
}

/// `pw` refuses an empty password (a `pw </dev/null` in a script must not print a hash of ""
/// that logs anyone in); `pw -t` checks a password against a stored one (0 match, 1 not);
/// `-s YESCRYPT` writes `{CRYPT}$y$…`, which authd verifies.
#[test]
fn pw_refuses_empty_passwords_and_checks_stored_ones() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let run = |args: &[&str], stdin: &[u8]| {
        let mut child = Command::new(bin_path(BIN))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    };
    for (args, stdin) in [(&["pw"][..], &b""[..]), (&["pw"][..], &b"\n"[..]), (&["pw", "-p", ""][..], &b""[..])] {
        let out = run(args, stdin);
        assert_eq!(out.status.code(), Some(2), "{args:?} {stdin:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: printed {:?}", String::from_utf8_lossy(&out.stdout));
        assert!(String::from_utf8_lossy(&out.stderr).contains("empty"), "{out:?}");
    }
    let out = run(&["pw", "-s", "YESCRYPT"], b"Kite-77\n");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let yescrypt = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(yescrypt.starts_with("{CRYPT}$y$j9T$"), "{yescrypt}");
    let stored = authd::scheme::Stored::parse(&yescrypt, authd::scheme::Scheme::Crypt).unwrap();
    assert!(stored.verify(b"Kite-77") && !stored.verify(b"Kite-78"));
    for scheme in ["SHA512-CRYPT", "BLF-CRYPT", "ARGON2ID", "SCRAM-SHA-256", "YESCRYPT"] {
        let hash = String::from_utf8(run(&["pw", "-s", scheme, "-p", "Kite-77"], b"").stdout).unwrap();
        let hash = hash.trim();
        assert_eq!(run(&["pw", "-t", hash, "-p", "Kite-77"], b"").status.code(), Some(0), "{scheme}: {hash}");
        assert_eq!(run(&["pw", "-t", hash], b"Kite-77\n").status.code(), Some(0), "{scheme} from a pipe");
        assert_eq!(run(&["pw", "-t", hash, "-p", "Kite-78"], b"").status.code(), Some(1), "{scheme}");
    }
    assert_eq!(run(&["pw", "-t", "no-scheme", "-p", "x"], b"").status.code(), Some(2));
}

#[tokio::test]
async fn sighup_reload_changes_the_offered_mechanisms_for_new_connections() {
    let s = Setup::new();
    let daemon = s.start().await;
    let before = s.client().await;
    drop(before);
    s.config("\"PLAIN\", \"LOGIN\", \"CRAM-MD5\"");
    daemon.signal(Sig::SIGHUP);
    daemon.wait_for_log("configuration reloaded", T).await;
    let mut c = AuthClient::connect(&s.files.address()).await.unwrap();
    let hs = c.handshake(1).await.unwrap();
    assert_eq!(hs.mechs, ["PLAIN", "LOGIN", "CRAM-MD5"]);
    // A broken configuration is refused and the running one stays.
    std::fs::write(&s.files.config, "[auth]\nmechanisms = [\"NTLM\"]\n").unwrap();
    daemon.signal(Sig::SIGHUP);
    daemon.wait_for_log("reload failed", T).await;
    let mut c = AuthClient::connect(&s.files.address()).await.unwrap();
    assert_eq!(c.handshake(1).await.unwrap().mechs.len(), 3);
}

#[tokio::test]
async fn check_config_names_the_bad_key() {
    let s = Setup::new();
    let cfg = s.dir.path().join("bad.toml");
    std::fs::write(&cfg, "[auth]\nmechanisms = [\"PLAIN\", \"CRAM-MD5\"]\n[passdb]\ndriver = \"shadow\"\n").unwrap();
    let out = std::process::Command::new(bin_path(BIN))
        .args(["--check-config", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("auth.mechanisms[1]") && err.contains("shadow"), "{err}");
}

/// `--check-config` checks what start-up checks (so `ExecStartPre=… --check-config` catches
/// it): a missing or malformed passwd-file, an unknown SQL placeholder, a user, group or PAM
/// stack that does not exist. A good configuration passes, and nothing is bound or created.
#[test]
fn check_config_finds_what_start_up_would() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("passwd");
    std::fs::write(&good, "alice@example.com:{PLAIN}secret-one::::::\n").unwrap();
    let bad = dir.path().join("bad-passwd");
    std::fs::write(&bad, "alice@example.com:{NOSUCH}x::::::\n").unwrap();
    let check = |name: &str, text: &str| {
        let cfg = dir.path().join(format!("{name}.toml"));
        std::fs::write(&cfg, text).unwrap();
        let out = std::process::Command::new(bin_path(BIN))
            .args(["--check-config", "--config", cfg.to_str().unwrap()])
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let file = |path: &std::path::Path| format!("[passdb]\npath = \"{}\"\n", path.display());
    let (code, err) = check("good", &file(&good));
    assert_eq!(code, Some(0), "{err}");
    for (name, text, want) in [
        ("missing", file(&dir.path().join("nope")), "nope"),
        ("malformed", file(&bad), "NOSUCH"),
        (
            "placeholder",
            "[passdb]\ndriver = \"sql\"\nurl = \"sqlite::memory:\"\nquery = \"SELECT password FROM u WHERE name = :usr\"\n"
                .to_owned(),
            "unknown placeholder :usr",
        ),
        ("user", format!("[server]\nuser = \"no-such-user-pw\"\n{}", file(&good)), "server.user"),
        ("group", format!("[server]\nsocket_group = \"no-such-group-pw\"\n{}", file(&good)), "server.socket_group"),
        ("pam", "[passdb]\ndriver = \"pam\"\npam_service = \"no-such-stack-pw\"\n".to_owned(), "no-such-stack-pw"),
    ] {
        let (code, err) = check(name, &text);
        assert_eq!(code, Some(78), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
    }
    assert!(!dir.path().join("authd.sock").exists());
}
