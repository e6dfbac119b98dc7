//! The server secret: random bytes kept in a file (`auth.secret_file`), so that what authd
//! derives from it is the same after every restart and reload.
//!
//! SCRAM-SHA-256 tells the client a salt and an iteration count before any proof. A real
//! `{SCRAM-SHA-256}` account has a stored salt that never changes; if an unknown name got a
//! random salt, or one from a key that a restart remakes, asking twice would tell the two
//! apart. So the salt of every name that has none stored (unknown users, and accounts whose
//! scheme cannot serve SCRAM) is an HMAC of the name under this secret: stable for the
//! name, unpredictable without the file, and the same on every host that shares the file.
//!
//! The file is made on first use (64 hex digits, mode 0600, never through a symlink), and
//! refused when another user could read or replace it.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Shortest secret accepted: 128 bits.
pub const MIN_LEN: usize = 16;

/// Where the secret lives when `auth.secret_file` is empty: `secret` in `$STATE_DIRECTORY`
/// (systemd's `StateDirectory=`), else in `/var/lib/postward-authd`.
pub fn default_path() -> PathBuf {
    std::env::var_os("STATE_DIRECTORY")
        .and_then(|d| std::env::split_paths(&d).next())
        .unwrap_or_else(|| PathBuf::from("/var/lib/postward-authd"))
        .join("secret")
}

/// Why the secret could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("auth.secret_file {path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "auth.secret_file {path}: cannot create: {source} (SCRAM-SHA-256 needs a secret that survives restarts: create the directory, or set auth.secret_file)"
    )]
    Create { path: PathBuf, source: std::io::Error },
    #[error("auth.secret_file {path}: {what}")]
    Unsafe { path: PathBuf, what: &'static str },
    #[error("auth.secret_file {path}: {len} bytes, fewer than {MIN_LEN}")]
    TooShort { path: PathBuf, len: usize },
}

/// The secret, hashed to 32 bytes (a file may hold any text of at least [`MIN_LEN`] bytes).
pub struct ServerSecret {
    key: Zeroizing<[u8; 32]>,
}

impl ServerSecret {
    /// Reads the file at `path`, making it first when it does not exist.
    ///
    /// # Errors
    /// See [`SecretError`]: unreadable, not creatable, too short, or unsafe (not a regular
    /// file, a symlink, not ours, or readable by others).
    pub fn load_or_create(path: &Path) -> Result<ServerSecret, SecretError> {
        match read(path) {
            Err(SecretError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                create(path)?;
                read(path)
            }
            other => other,
        }
    }

    /// A secret from bytes in memory (tests, and the `test` command's decoys).
    pub fn from_bytes(bytes: &[u8]) -> ServerSecret {
        ServerSecret { key: Zeroizing::new(Sha256::digest(bytes).into()) }
    }

    /// HMAC-SHA-256 of `label` and `name` under the secret: labels keep uses apart.
    pub fn derive(&self, label: &str, name: &str) -> [u8; 32] {
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key[..]) else { return [0; 32] };
        mac.update(label.as_bytes());
        mac.update(&[0]);
        mac.update(name.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(..)")
    }
}

fn read(path: &Path) -> Result<ServerSecret, SecretError> {
    let unsafe_file = |what| SecretError::Unsafe { path: path.to_owned(), what };
    let mut file =
        OpenOptions::new().read(true).custom_flags(nix::libc::O_NOFOLLOW).open(path).map_err(|source| match source
            .raw_os_error()
        {
            Some(nix::libc::ELOOP) => unsafe_file("is a symbolic link"),
            _ => SecretError::Read { path: path.to_owned(), source },
        })?;
    let meta = file.metadata().map_err(|source| SecretError::Read { path: path.to_owned(), source })?;
    if !meta.is_file() {
        return Err(unsafe_file("is not a regular file"));
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() && meta.uid() != 0 {
        return Err(unsafe_file("belongs to another user"));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(unsafe_file("is readable or writable by group or others (chmod 600)"));
    }
    let mut text = Zeroizing::new(Vec::new());
    file.read_to_end(&mut text).map_err(|source| SecretError::Read { path: path.to_owned(), source })?;
    let body = text.strip_suffix(b"\n").unwrap_or(&text);
    if body.len() < MIN_LEN {
        return Err(SecretError::TooShort { path: path.to_owned(), len: body.len() });
    }
    Ok(ServerSecret::from_bytes(body))
}

/// Writes 32 random bytes as hex, exclusively: a file that appeared meanwhile is kept.
fn create(path: &Path) -> Result<(), SecretError> {
    let err = |source| SecretError::Create { path: path.to_owned(), source };
    let mut random = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut random[..]).map_err(|e| err(std::io::Error::other(e.to_string())))?;
    let mut text = Zeroizing::new(String::with_capacity(65));
    for b in random.iter() {
        text.push_str(&format!("{b:02x}"));
    }
    text.push('\n');
    // The last directory of the path is made when missing (the packaged units have systemd
    // make it; a hand-started daemon should not fail for want of it), private to us.
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(0o700).create(parent) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(e)),
        }
    }
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(err(e)),
    };
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(err)?;
    tracing::info!("created the server secret {} (SCRAM decoy salts)", path.display());
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn made_once_then_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let a = ServerSecret::load_or_create(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim_end().len(), 64);
        let b = ServerSecret::load_or_create(&path).unwrap();
        assert_eq!(a.derive("x", "alice"), b.derive("x", "alice"));
        assert_ne!(a.derive("x", "alice"), a.derive("y", "alice"));
        assert_ne!(a.derive("x", "alice"), a.derive("x", "bob"));
        assert_ne!(a.derive("x", "alice"), ServerSecret::from_bytes(b"another secret!!").derive("x", "alice"));
    }

    #[test]
    fn unsafe_or_short_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "tooshort\n").unwrap();
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(ServerSecret::load_or_create(&short), Err(SecretError::TooShort { len: 8, .. })));
        let open = dir.path().join("open");
        std::fs::write(&open, "0123456789abcdef0123456789abcdef").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(ServerSecret::load_or_create(&open), Err(SecretError::Unsafe { .. })));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&open, &link).unwrap();
        let err = ServerSecret::load_or_create(&link).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let made = dir.path().join("state/secret");
        ServerSecret::load_or_create(&made).unwrap();
        assert_eq!(std::fs::metadata(dir.path().join("state")).unwrap().permissions().mode() & 0o777, 0o700);
        let missing = dir.path().join("no/such/dir/secret");
        let err = ServerSecret::load_or_create(&missing).unwrap_err();
        assert!(err.to_string().contains("cannot create"), "{err}");
    }
}
