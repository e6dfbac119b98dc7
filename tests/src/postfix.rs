//! A private, throwaway Postfix on loopback for end-to-end tests.
//!
//! The real `postfix` package's binaries run from a configuration directory of their own in a
//! temporary directory (`postfix -c DIR start`): their own queue, data directory and mail log,
//! smtpd on `127.0.0.1:<free port>`, no chroot (so absolute socket paths work), no DNS lookups
//! of clients, and nothing delivered anywhere. The system's Postfix, if any, is left alone.
//!
//! Postfix must be started as root; [`Postfix::unavailable`] says why a test cannot run here,
//! so tests can print that they were skipped instead of passing silently.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where Debian's package puts the programs Postfix needs besides the `postfix` command.
const DAEMON_DIR: &str = "/usr/lib/postfix/sbin";
const POSTFIX: &str = "/usr/sbin/postfix";

/// The services a private instance runs: the subset of Debian's master.cf that smtpd needs,
/// with chroot off everywhere.
const MASTER_SERVICES: &str = "\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";

/// Why Postfix cannot run here, if it cannot: not root, or the package is not installed.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not running as root (postfix start needs root)".to_owned());
    }
    if !Path::new(POSTFIX).exists() || !Path::new(DAEMON_DIR).join("smtpd").exists() {
        return Some(format!("{POSTFIX} or {DAEMON_DIR}/smtpd missing (apt-get install postfix)"));
    }
    None
}

/// Settings of one private instance.
#[derive(Debug, Clone, Default)]
pub struct PostfixOptions {
    /// Extra `main.cf` lines (restriction lists, SASL settings, ...).
    pub main_cf: String,
    /// Extra `-o name=value` options of the smtpd service (no spaces in values: define a
    /// `main.cf` parameter and refer to it as `$name`).
    pub smtpd_options: Vec<String>,
}

/// A running private Postfix; stopped when dropped.
pub struct Postfix {
    dir: tempfile::TempDir,
    port: u16,
    stopped: bool,
}

impl Postfix {
    /// Writes the configuration and starts Postfix.
    ///
    /// # Errors
    /// The configuration cannot be written or `postfix start` fails (its output is returned).
    pub async fn start(options: &PostfixOptions) -> Result<Postfix, String> {
        // The port is free when chosen but bound only later, by master: another test may
        // take it in between. master logs that, and the start is retried on another port.
        let mut last = String::new();
        for _ in 0..3 {
            match Postfix::start_once(options).await {
                Ok(p) => return Ok(p),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn start_once(options: &PostfixOptions) -> Result<Postfix, String> {
        let dir = tempfile::Builder::new().prefix("postward-postfix-").tempdir().map_err(|e| e.to_string())?;
        // smtpd runs as `postfix` and must reach sockets placed in here.
        set_mode(dir.path(), 0o755)?;
        let port = crate::process::free_tcp_port().map_err(|e| e.to_string())?;
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).map_err(|e| e.to_string())?;
        // The distribution's files (postfix-files, dynamicmaps.cf, ...) with links resolved.
        for entry in std::fs::read_dir("/etc/postfix").map_err(|e| e.to_string())?.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_file() && name != "main.cf" && name != "master.cf" {
                std::fs::copy(&path, etc.join(&name)).map_err(|e| format!("{}: {e}", path.display()))?;
            } else if path.is_dir() {
                copy_dir(&path, &etc.join(&name))?;
            }
        }
        // The queue's subdirectories are made by `postfix start`, the queue itself is not.
        std::fs::create_dir(dir.path().join("spool")).map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data).map_err(|e| e.to_string())?;
        run(Command::new("chown").arg("postfix").arg(&data))?;
        let base = dir.path().display();
        let main_cf = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {base}/spool\n\
             data_directory = {base}/data\n\
             maillog_file_prefixes = /var, /dev/stdout, {base}\n\
             maillog_file = {base}/maillog\n\
             myhostname = mx.postward.test\n\
             mydomain = postward.test\n\
             mydestination =\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             mynetworks = 127.0.0.1/32\n\
             alias_maps =\n\
             alias_database =\n\
             smtpd_peername_lookup = no\n\
             smtp_dns_support_level = disabled\n\
             disable_dns_lookups = yes\n\
             default_transport = discard:postward test instance delivers nothing\n\
             relay_transport = discard:postward test instance delivers nothing\n\
             smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination\n\
             smtpd_banner = $myhostname ESMTP postward-test\n\
             smtpd_error_sleep_time = 0\n\
             smtpd_soft_error_limit = 100\n\
             smtpd_hard_error_limit = 100\n\
             {}\n",
            options.main_cf
        );
        std::fs::write(etc.join("main.cf"), main_cf).map_err(|e| e.to_string())?;
        let mut smtpd = format!("127.0.0.1:{port} inet n - n - - smtpd\n");
        for option in &options.smtpd_options {
            smtpd.push_str(&format!("  -o {option}\n"));
        }
        std::fs::write(etc.join("master.cf"), format!("{smtpd}{MASTER_SERVICES}")).map_err(|e| e.to_string())?;
        run(Command::new(POSTFIX).arg("-c").arg(&etc).arg("start")).map_err(|e| {
            let log = std::fs::read_to_string(dir.path().join("maillog")).unwrap_or_default();
            format!("{e}\nmail log:\n{log}")
        })?;
        let postfix = Postfix { dir, port, stopped: false };
        postfix.wait_listening(Duration::from_secs(20)).await?;
        Ok(postfix)
    }

    /// The smtpd address, `127.0.0.1:<port>`.
    pub fn smtp_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A directory smtpd can reach, for sockets of daemons under test.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The instance's mail log so far.
    pub fn maillog(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// Stops Postfix and waits until its master process has gone.
    pub async fn stop(mut self) {
        self.stopped = true;
        // master leaves its pid file behind: watch the process itself.
        let pid = std::fs::read_to_string(self.dir.path().join("spool/pid/master.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            .map(nix::unistd::Pid::from_raw);
        let _ = Command::new(POSTFIX).arg("-c").arg(self.config_dir()).arg("stop").output();
        for _ in 0..200 {
            if pid.is_none_or(|p| nix::sys::signal::kill(p, None).is_err()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_listening(&self, timeout: Duration) -> Result<(), String> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            // master logs a port it could not bind (taken since it was chosen) and exits;
            // a connect would then reach whoever holds the port.
            if self.maillog().contains("Address already in use") {
                return Err(format!("{} was taken before Postfix bound it", self.smtp_addr()));
            }
            // A bare connect, no session: an smtpd that served one stays around for reuse,
            // with its SASL connection, which would hide an auth daemon stopped later.
            if tokio::net::TcpStream::connect(self.smtp_addr()).await.is_ok() {
                return if self.maillog().contains("Address already in use") {
                    Err(format!("{} was taken before Postfix bound it", self.smtp_addr()))
                } else {
                    Ok(())
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("postfix did not listen on {} within {timeout:?}; log:\n{}", self.smtp_addr(), self.maillog()))
    }

    fn config_dir(&self) -> PathBuf {
        self.dir.path().join("etc")
    }
}

/// A test that panicked still stops its Postfix (without waiting: see [`Postfix::stop`]).
impl Drop for Postfix {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = Command::new(POSTFIX).arg("-c").arg(self.config_dir()).arg("stop").output();
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(from).map_err(|e| e.to_string())?.flatten() {
        let path = entry.path();
        if path.is_file() {
            std::fs::copy(&path, to.join(entry.file_name())).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
