//! Switching to an unprivileged user after the sockets are bound.
//!
//! Order matters: supplementary groups, then the primary group, then the user; afterwards
//! `setuid(0)` must fail, or the drop did not take. This runs before the Tokio runtime
//! exists, so no worker thread ever runs as root.

use nix::unistd::{Gid, Group, Uid, User};

use crate::config::ServerConfig;

/// Why privileges could not be dropped.
#[derive(Debug, thiserror::Error)]
pub enum PrivError {
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("unknown group {0:?}")]
    UnknownGroup(String),
    #[error(
        "refusing to run as root: set server.user to the daemon's own account (the packages make postward-greyd, postward-policyd and postward-authd), or server.allow_root = true if you really must"
    )]
    RefuseRoot,
    #[error("cannot switch to user {user:?}: not running as root")]
    NotRoot { user: String },
    #[error("cannot switch to user {user:?}: {source}")]
    Switch { user: String, source: nix::Error },
    #[error("privileges were not dropped: setuid(0) still succeeds")]
    StillRoot,
}

/// Looks up a user by name.
///
/// # Errors
/// No such user.
pub fn lookup_user(name: &str) -> Result<User, PrivError> {
    User::from_name(name).ok().flatten().ok_or_else(|| PrivError::UnknownUser(name.to_owned()))
}

/// Looks up a group by name.
///
/// # Errors
/// No such group.
pub fn lookup_group(name: &str) -> Result<Group, PrivError> {
    Group::from_name(name).ok().flatten().ok_or_else(|| PrivError::UnknownGroup(name.to_owned()))
}

/// What happened, for the start-up log line.
#[derive(Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Switched from root to this user.
    To { user: String, uid: u32, gid: u32 },
    /// Already running as the configured user, or as a non-root user with none configured.
    Unchanged,
    /// Running as root because `allow_root` says so.
    StayedRoot,
}

/// Drops privileges as `[server]` says.
///
/// # Errors
/// See [`PrivError`]; the daemon must not continue on error.
pub fn drop_privileges(config: &ServerConfig) -> Result<Dropped, PrivError> {
    let euid = Uid::effective();
    let Some(name) = &config.user else {
        if euid.is_root() && !config.allow_root {
            return Err(PrivError::RefuseRoot);
        }
        return Ok(if euid.is_root() { Dropped::StayedRoot } else { Dropped::Unchanged });
    };
    let user = lookup_user(name)?;
    if !euid.is_root() {
        return if user.uid == euid { Ok(Dropped::Unchanged) } else { Err(PrivError::NotRoot { user: name.clone() }) };
    }
    let gid = match &config.group {
        Some(g) => lookup_group(g)?.gid,
        None => user.gid,
    };
    let switch = |source| PrivError::Switch { user: name.clone(), source };
    match &config.supplementary_groups {
        Some(names) => {
            let gids = names.iter().map(|g| lookup_group(g).map(|g| g.gid)).collect::<Result<Vec<Gid>, _>>()?;
            nix::unistd::setgroups(&gids).map_err(switch)?;
        }
        None => {
            let cname = std::ffi::CString::new(name.as_str()).map_err(|_| PrivError::UnknownUser(name.clone()))?;
            nix::unistd::initgroups(&cname, gid).map_err(switch)?;
        }
    }
    nix::unistd::setgid(gid).map_err(switch)?;
    nix::unistd::setuid(user.uid).map_err(switch)?;
    if !user.uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(PrivError::StillRoot);
    }
    Ok(Dropped::To { user: name.clone(), uid: user.uid.as_raw(), gid: gid.as_raw() })
}
