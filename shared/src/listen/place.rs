//! Putting a Unix socket file in place without following a path another user can change.
//!
//! The daemons bind as root, before dropping privileges, in a directory that may belong to
//! someone else (the packaged `/var/spool/postfix/private` belongs to postfix). Setting the
//! socket's mode and owner by path after `bind` would follow a symlink that the directory's
//! owner swapped in meanwhile, and make root chmod and chown any file it names. So:
//!
//! 1. The target directory is opened once; every later step works relative to that handle.
//! 2. A fresh directory of our own (mode 0700) is made inside it and opened without
//!    following links; it must belong to us. Nobody else can reach what is inside.
//! 3. The socket is bound there (through `/proc/self/fd/<dir>/name`, as `bind` takes a path)
//!    and given its mode and owner there.
//! 4. An existing entry at the target is checked without following it: a socket whose
//!    process is gone may be replaced; a live socket, a file, a symlink or anything else is
//!    refused.
//! 5. `renameat` moves the finished socket into place (a rename replaces the entry, never
//!    what it points to), and the private directory is removed.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fchmodat, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchownat, unlinkat};

use super::ListenError;

/// A socket bound at its final path, and its file's identity (for the guard that removes it).
pub(super) struct Placed {
    pub listener: UnixListener,
    pub dev: u64,
    pub ino: u64,
}

/// Binds a Unix socket at `path` with `mode` and, when given, `uid`/`gid`.
///
/// # Errors
/// [`ListenError::InUse`] for a live socket, [`ListenError::NotASocket`] for anything else
/// already at the path, [`ListenError::Bind`] or [`ListenError::Permissions`] for failures.
pub(super) fn bind_placed(path: &Path, mode: u32, uid: Option<Uid>, gid: Option<Gid>) -> Result<Placed, ListenError> {
    let label = format!("unix:{}", path.display());
    let bind_err = |e: Errno| ListenError::Bind { addr: label.clone(), source: e.into() };
    let name = path.file_name().ok_or_else(|| ListenError::Bind {
        addr: label.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file"),
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir =
        openat(nix::fcntl::AT_FDCWD, parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(bind_err)?;
    // Refused before anything is made; checked again just before the rename.
    check_target(&dir, name, path, &label)?;
    let private = private_name(name);
    mkdirat(&dir, private.as_os_str(), Mode::S_IRWXU).map_err(bind_err)?;
    let outcome = inside(&dir, &private, name, path, &label, mode, uid, gid);
    let _ = unlinkat(&dir, private.as_os_str(), UnlinkatFlags::RemoveDir);
    outcome
}

/// Steps 2 to 5 in the private directory `private` (made by the caller, removed after).
#[allow(clippy::too_many_arguments)]
fn inside(
    dir: &OwnedFd,
    private: &Path,
    name: &OsStr,
    path: &Path,
    label: &str,
    mode: u32,
    uid: Option<Uid>,
    gid: Option<Gid>,
) -> Result<Placed, ListenError> {
    let bind_err = |e: Errno| ListenError::Bind { addr: label.to_owned(), source: e.into() };
    let perm_err = |e: Errno| ListenError::Permissions { path: path.to_owned(), source: e.into() };
    let own = openat(
        dir,
        private,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(bind_err)?;
    let meta = fstat(&own).map_err(bind_err)?;
    if meta.st_uid != nix::unistd::geteuid().as_raw() || meta.st_mode & 0o077 != 0 {
        return Err(ListenError::Bind {
            addr: label.to_owned(),
            source: std::io::Error::other("the private directory made for binding was replaced by someone else"),
        });
    }
    let through = fd_path(&own, name);
    let listener =
        UnixListener::bind(&through).map_err(|source| ListenError::Bind { addr: label.to_owned(), source })?;
    let placed = (|| {
        // Inside our own 0700 directory nothing can be swapped: following is safe here.
        fchmodat(&own, name, Mode::from_bits_truncate(mode), FchmodatFlags::FollowSymlink).map_err(perm_err)?;
        if uid.is_some() || gid.is_some() {
            fchownat(&own, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(perm_err)?;
        }
        let socket = fstatat(&own, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(perm_err)?;
        let stale = check_target(dir, name, path, label)?;
        renameat(&own, name, dir, name).map_err(bind_err)?;
        if stale {
            tracing::info!("replacing stale socket {} left by a process that is gone", path.display());
        }
        Ok(Placed { listener, dev: socket.st_dev, ino: socket.st_ino })
    })();
    if placed.is_err() {
        let _ = unlinkat(&own, name, UnlinkatFlags::NoRemoveDir);
    }
    placed
}

/// What is at the target now, looked at without following it: nothing or a stale socket
/// (`Ok(true)`) may be replaced; a live socket and anything that is not a socket are refused.
fn check_target(dir: &OwnedFd, name: &OsStr, path: &Path, label: &str) -> Result<bool, ListenError> {
    let meta = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(m) => m,
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(ListenError::Bind { addr: label.to_owned(), source: e.into() }),
    };
    if SFlag::from_bits_truncate(meta.st_mode) & SFlag::S_IFMT != SFlag::S_IFSOCK {
        return Err(ListenError::NotASocket { addr: label.to_owned(), path: path.to_owned() });
    }
    match UnixStream::connect(fd_path(dir, name)) {
        Ok(_) => Err(ListenError::InUse { addr: label.to_owned() }),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(true),
        Err(source) => Err(ListenError::Bind { addr: label.to_owned(), source }),
    }
}

/// `name` in the directory `dir`, as a path that reaches it through the open handle.
fn fd_path(dir: &impl AsFd, name: &OsStr) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd())).join(name)
}

/// A hidden name for the private directory, unlikely to exist: `.<name>.<pid>.<random>`.
fn private_name(name: &OsStr) -> PathBuf {
    let mut random = [0u8; 6];
    if getrandom::fill(&mut random).is_err() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        random.copy_from_slice(&nanos.subsec_nanos().to_le_bytes().repeat(2)[..6]);
    }
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let mut short = name.to_string_lossy().into_owned();
    short.truncate(40);
    PathBuf::from(format!(".{short}.{}.{hex}", std::process::id()))
}
