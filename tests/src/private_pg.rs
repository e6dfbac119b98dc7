//! A private PostgreSQL server for one test: its own data directory and port on 127.0.0.1,
//! started and stopped with the server's own `initdb` and `pg_ctl`, so a test can stop the
//! real server under load without touching the one the other tests share.
//!
//! Needs the PostgreSQL server binaries (`/usr/lib/postgresql/<version>/bin`, Debian's layout).
//! PostgreSQL refuses to run as root: as root, the server runs as the `postgres` account
//! (through `runuser`), which owns the data directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running (or stopped) private server. Dropping it stops the server.
pub struct PrivatePostgres {
    bindir: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    /// Creates and starts a server with trust authentication for user `postgres`. `None`
    /// (with the reason printed) when the server binaries or the `postgres` account are missing.
    ///
    /// # Panics
    /// When `initdb` or the first start fails.
    pub fn start() -> Option<PrivatePostgres> {
        let Some(bindir) = server_bindir() else {
            crate::skipped!("no PostgreSQL server binaries under /usr/lib/postgresql");
            return None;
        };
        let dir = tempfile::Builder::new().prefix("pw-pg").tempdir_in("/tmp").ok()?;
        if crate::process::running_as_root() {
            let Ok(Some(pg)) = nix::unistd::User::from_name("postgres") else {
                crate::skipped!("no postgres account to run a private server as");
                return None;
            };
            nix::unistd::chown(dir.path(), Some(pg.uid), Some(pg.gid)).ok()?;
        }
        let port = crate::process::free_tcp_port().ok()?;
        let pg = PrivatePostgres { bindir, dir, port };
        let data = pg.data();
        pg.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"]);
        pg.start_again();
        Some(pg)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server the way an admin does (`pg_ctl stop -m fast`): open sessions are told
    /// so and closed, new connections are refused.
    ///
    /// # Panics
    /// When `pg_ctl` fails.
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// Starts the server on the same data directory and port, and waits until it accepts.
    ///
    /// # Panics
    /// When `pg_ctl` fails.
    pub fn start_again(&self) {
        let options =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        let log = format!("{}/server.log", self.dir.path().display());
        self.run("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"]);
    }

    fn data(&self) -> String {
        format!("{}/data", self.dir.path().display())
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bindir.join(tool);
        let mut command = if crate::process::running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = command.args(args).current_dir(self.dir.path()).output().expect("run a PostgreSQL tool");
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let program = self.bindir.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if crate::process::running_as_root() {
            Command::new("runuser").args(["-u", "postgres", "--"]).arg(&program).args(args).output()
        } else {
            Command::new(&program).args(args).output()
        };
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
fn server_bindir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| Path::new(&bin.join("initdb")).exists())
        .collect();
    versions.sort();
    versions.pop()
}
