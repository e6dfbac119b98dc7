//! Where a daemon listens: `unix:/path`, `inet:host:port`, or `systemd` (sockets passed by
//! systemd socket activation), and how those sockets are bound.
//!
//! Unix sockets are bound before privileges are dropped, with the configured mode, owner and
//! group, so a chrooted Postfix smtpd (group `postfix`) can reach
//! `/var/spool/postfix/private/…`; [`place`] does it without following any path another
//! user could swap. A socket file left behind by a process that died is replaced; one that
//! still accepts connections belongs to a live process and is refused, as is a path that is
//! not a socket.

mod place;

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A listening address as written in configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ListenAddr {
    Unix(PathBuf),
    Inet {
        host: String,
        port: u16,
    },
    /// Every socket passed by systemd (`LISTEN_FDS`).
    Systemd,
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "systemd" {
            return Ok(ListenAddr::Systemd);
        }
        if let Some(path) = s.strip_prefix("unix:") {
            if !path.starts_with('/') && !path.starts_with('.') {
                return Err(format!("unix socket path in {s:?} must be absolute or start with ./"));
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        if let Some(hostport) = s.strip_prefix("inet:") {
            let (host, port) =
                hostport.rsplit_once(':').ok_or_else(|| format!("{s:?} needs a port: inet:HOST:PORT"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(format!("{s:?} needs a host: inet:HOST:PORT (e.g. inet:127.0.0.1:10023)"));
            }
            let port = port.parse().map_err(|_| format!("invalid port in {s:?}"))?;
            return Ok(ListenAddr::Inet { host: host.to_owned(), port });
        }
        Err(format!("invalid listen address {s:?} (expected unix:/path, inet:host:port or systemd)"))
    }
}

impl TryFrom<String> for ListenAddr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<ListenAddr> for String {
    fn from(a: ListenAddr) -> String {
        a.to_string()
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            ListenAddr::Inet { host, port } if host.contains(':') => write!(f, "inet:[{host}]:{port}"),
            ListenAddr::Inet { host, port } => write!(f, "inet:{host}:{port}"),
            ListenAddr::Systemd => f.write_str("systemd"),
        }
    }
}

/// Mode, owner and group for Unix sockets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketPermissions {
    pub mode: u32,
    pub owner: Option<String>,
    pub group: Option<String>,
}

/// Why a socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("cannot bind {addr}: the socket is in use by a running process")]
    InUse { addr: String },
    #[error("cannot bind {addr}: {path} exists and is not a socket")]
    NotASocket { addr: String, path: PathBuf },
    #[error("cannot set permissions of {path}: {source}")]
    Permissions { path: PathBuf, source: std::io::Error },
    #[error("unknown {kind} {name:?} for socket {path}")]
    UnknownOwner { kind: &'static str, name: String, path: PathBuf },
    #[error("listen = systemd, but no sockets were passed (LISTEN_FDS is not set for this process)")]
    NoSystemdSockets,
    #[error("socket {index} passed by systemd is neither a Unix nor a TCP stream socket")]
    SystemdSocketType { index: usize },
}

/// A bound listening socket, not yet registered with a Tokio runtime.
#[derive(Debug)]
pub enum BoundListener {
    Unix { listener: UnixListener, path: Option<UnixPathGuard> },
    Tcp(std::net::TcpListener),
}

impl BoundListener {
    /// A label for log lines, e.g. `unix:/run/x.sock` or `inet:127.0.0.1:10023`.
    pub fn label(&self) -> String {
        match self {
            BoundListener::Unix { path: Some(guard), .. } => format!("unix:{}", guard.path.display()),
            BoundListener::Unix { listener, path: None } => {
                match listener.local_addr().ok().and_then(|a| a.as_pathname().map(Path::to_path_buf)) {
                    Some(p) => format!("unix:{}", p.display()),
                    None => "unix:(unnamed)".into(),
                }
            }
            BoundListener::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("inet:{a}"),
                Err(_) => "inet:(unknown)".into(),
            },
        }
    }
}

/// Removes a Unix socket file when dropped, but only if the file is still the socket this
/// process created (same device and inode), never a successor's.
#[derive(Debug)]
pub struct UnixPathGuard {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for UnixPathGuard {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && meta.dev() == self.dev
            && meta.ino() == self.ino
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds every configured address. Call before dropping privileges.
///
/// # Errors
/// The first address that cannot be bound, with the reason.
pub fn bind_all(addrs: &[ListenAddr], perms: &SocketPermissions) -> Result<Vec<BoundListener>, ListenError> {
    let mut out = Vec::new();
    for addr in addrs {
        match addr {
            ListenAddr::Unix(path) => out.push(bind_unix(path, perms)?),
            ListenAddr::Inet { host, port } => out.push(bind_inet(host, *port)?),
            ListenAddr::Systemd => out.extend(systemd_listeners()?),
        }
    }
    Ok(out)
}

fn bind_inet(host: &str, port: u16) -> Result<BoundListener, ListenError> {
    let label = ListenAddr::Inet { host: host.to_owned(), port }.to_string();
    let addrs: Vec<SocketAddr> =
        (host, port).to_socket_addrs().map_err(|source| ListenError::Bind { addr: label.clone(), source })?.collect();
    let listener =
        std::net::TcpListener::bind(&addrs[..]).map_err(|source| ListenError::Bind { addr: label, source })?;
    Ok(BoundListener::Tcp(listener))
}

/// Binds a Unix socket, replacing a stale socket file (see [`place`]).
///
/// # Errors
/// See [`ListenError`].
pub fn bind_unix(path: &Path, perms: &SocketPermissions) -> Result<BoundListener, ListenError> {
    let uid = match &perms.owner {
        Some(name) => Some(
            crate::privdrop::lookup_user(name)
                .map_err(|_| ListenError::UnknownOwner { kind: "user", name: name.clone(), path: path.to_owned() })?
                .uid,
        ),
        None => None,
    };
    let gid = match &perms.group {
        Some(name) => Some(
            crate::privdrop::lookup_group(name)
                .map_err(|_| ListenError::UnknownOwner { kind: "group", name: name.clone(), path: path.to_owned() })?
                .gid,
        ),
        None => None,
    };
    let placed = place::bind_placed(path, perms.mode, uid, gid)?;
    let guard = UnixPathGuard { path: path.to_owned(), dev: placed.dev, ino: placed.ino };
    Ok(BoundListener::Unix { listener: placed.listener, path: Some(guard) })
}

fn systemd_listeners() -> Result<Vec<BoundListener>, ListenError> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Err(ListenError::NoSystemdSockets);
    }
    let mut out = Vec::new();
    for index in 0..fds.len() {
        if let Ok(Some(l)) = fds.take_unix_listener(index) {
            out.push(BoundListener::Unix { listener: l, path: None });
        } else if let Ok(Some(l)) = fds.take_tcp_listener(index) {
            out.push(BoundListener::Tcp(l));
        } else {
            return Err(ListenError::SystemdSocketType { index });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn parse_and_display() {
        let cases = [
            ("unix:/var/spool/postfix/private/postward-greyd", "unix:/var/spool/postfix/private/postward-greyd"),
            ("unix:./run/greyd.sock", "unix:./run/greyd.sock"),
            ("inet:127.0.0.1:10023", "inet:127.0.0.1:10023"),
            ("inet:[::1]:10023", "inet:[::1]:10023"),
            ("inet:localhost:10023", "inet:localhost:10023"),
            ("systemd", "systemd"),
        ];
        for (text, shown) in cases {
            let addr: ListenAddr = text.parse().unwrap();
            assert_eq!(addr.to_string(), shown);
        }
        for bad in ["tcp:1.2.3.4:5", "inet:127.0.0.1", "inet::25", "inet:h:99999", "unix:relative", "/path"] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn stale_socket_replaced_live_socket_refused_file_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let perms = SocketPermissions { mode: 0o660, ..Default::default() };
        // A socket file whose listener is gone is stale.
        drop(UnixListener::bind(&path).unwrap());
        let bound = bind_unix(&path, &perms).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o660);
        // While it is bound, a second bind is refused.
        let err = bind_unix(&path, &perms).unwrap_err();
        assert!(matches!(err, ListenError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("in use by a running process"));
        // Dropping the listener removes its file.
        drop(bound);
        assert!(!path.exists());
        // A regular file is never removed.
        std::fs::write(&path, b"data").unwrap();
        let err = bind_unix(&path, &perms).unwrap_err();
        assert!(matches!(err, ListenError::NotASocket { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
    }

    /// Finding: after `bind`, the socket's mode and owner were set by path, following a
    /// symlink that the directory's owner swapped in. A thread swapping the path for a
    /// symlink to another file in a loop, while the socket is bound 100 times, must leave
    /// that file as it was.
    #[test]
    fn a_symlink_swapped_in_while_binding_changes_no_other_file() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"root only").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (stop, path, victim) = (stop.clone(), path.clone(), victim.clone());
            std::thread::spawn(move || {
                let mut swaps = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::fs::remove_file(&path);
                    if std::os::unix::fs::symlink(&victim, &path).is_ok() {
                        swaps += 1;
                    }
                }
                swaps
            })
        };
        let perms = SocketPermissions { mode: 0o666, ..Default::default() };
        // 100 starts, each retried until it binds (a start that finds the symlink is refused,
        // as it must be): every bind is a chance for the swap to land in the window.
        let (mut bound, mut tries) = (0, 0);
        while bound < 100 && tries < 200_000 {
            tries += 1;
            if let Ok(listener) = bind_unix(&path, &perms) {
                bound += 1;
                drop(listener);
            }
        }
        stop.store(true, Ordering::Relaxed);
        let swaps = swapper.join().unwrap();
        let meta = std::fs::metadata(&victim).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o600,
            "victim's mode changed ({bound} binds in {tries} tries, {swaps} swaps)"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"root only");
        eprintln!("{bound} binds in {tries} tries while {swaps} symlinks were swapped in: victim unchanged");
        assert!(bound == 100 && swaps > 100, "{bound} binds in {tries} tries, {swaps} swaps");
    }
}
