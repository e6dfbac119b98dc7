//! Password stores: where accounts and their stored credentials come from.
//!
//! Every store answers the same question, "who is this user, and what does the account
//! allow?", so the service does the verifying, the throttling and the caching the same way
//! for all of them.

pub mod pam;
pub mod passwd_file;
pub mod shadow;
pub mod sql;
mod watch;

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::scheme::Stored;

/// One account as a store describes it.
#[derive(Debug, Clone)]
pub struct Account {
    /// The canonical name, sent back in `OK user=`.
    pub user: String,
    /// `None` when the account has no usable password (empty field, locked shadow entry).
    pub password: Option<Stored>,
    pub status: Status,
    /// When not empty, the client address must be in one of these networks.
    pub allow_nets: Vec<IpNet>,
}

impl Account {
    /// Whether `rip` may log in to this account. An unknown client address passes only when
    /// the account has no restriction.
    pub fn allows(&self, rip: Option<IpAddr>) -> bool {
        self.allow_nets.is_empty() || rip.is_some_and(|ip| self.allow_nets.iter().any(|n| n.contains(&ip)))
    }
}

/// Whether an account may log in at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    /// Locked or marked `nologin`; the text is for the log.
    Disabled(&'static str),
    /// Past its expiry date.
    Expired,
}

/// Why a store could not answer. Temporary from the client's point of view.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot read: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Parse { path: String, line: usize, message: String },
    #[error("database: {0}")]
    Database(String),
    #[error("database did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("{0}")]
    Config(String),
}

/// The configured store.
pub enum PassDb {
    File(passwd_file::PasswdFile),
    Sql(sql::SqlDb),
    Shadow(shadow::Shadow),
    /// Verifies passwords itself: [`PassDb::lookup`] serves master-user targets only.
    Pam(pam::Pam),
}

/// The first credential of each cost class among `accounts`.
fn one_per_class<'a>(accounts: impl Iterator<Item = &'a Arc<Account>>) -> Vec<Stored> {
    let mut seen = std::collections::HashSet::new();
    accounts.filter_map(|a| a.password.as_ref()).filter(|s| seen.insert(s.cost_class())).cloned().collect()
}

/// What a lookup may use besides the name: the SQL placeholders.
#[derive(Debug, Clone, Copy)]
pub struct LookupContext<'a> {
    pub service: &'a str,
    pub rip: Option<IpAddr>,
}

impl PassDb {
    /// Looks `user` (normalised) up. `Ok(None)` for an unknown user.
    ///
    /// # Errors
    /// The store cannot answer now.
    pub async fn lookup(&self, user: &str, ctx: LookupContext<'_>) -> Result<Option<Arc<Account>>, StoreError> {
        match self {
            PassDb::File(f) => Ok(f.lookup(user)),
            PassDb::Sql(s) => s.lookup(user, ctx).await,
            PassDb::Shadow(s) => Ok(s.lookup(user)),
            PassDb::Pam(p) => Ok(p.lookup(user)),
        }
    }

    /// Changes whenever the store's data is re-read; cached verifications of another
    /// generation are ignored.
    pub fn generation(&self) -> u64 {
        match self {
            PassDb::File(f) => f.generation(),
            PassDb::Sql(_) => 0,
            PassDb::Shadow(s) => s.generation(),
            // Password changes reach cached logins after cache.ttl (or at once on SIGHUP).
            PassDb::Pam(_) => 0,
        }
    }

    /// Whether an answer may depend on the client address (an SQL query using `:rip`).
    pub fn varies_with_client(&self) -> bool {
        matches!(self, PassDb::Sql(s) if s.uses_rip())
    }

    /// Whether the store can hold credentials other than one-way hashes (plaintext,
    /// CRAM-MD5 or SCRAM state), which CRAM-MD5 and SCRAM-SHA-256 need.
    pub fn can_hold_credentials(&self) -> bool {
        !matches!(self, PassDb::Shadow(_) | PassDb::Pam(_))
    }

    /// One stored credential of each cost class the store holds now: what the decoy and
    /// the failure pad are calibrated on ([`crate::pace`]). An SQL store's entries are only
    /// met at run time; PAM's are the system's own hashes when /etc/shadow is readable.
    pub fn cost_samples(&self) -> Vec<Stored> {
        match self {
            PassDb::File(f) => f.table().cost_samples(),
            PassDb::Sql(_) => Vec::new(),
            PassDb::Shadow(s) => s.cost_samples(),
            PassDb::Pam(_) => pam::system_hashes(std::path::Path::new("/etc/shadow")),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            PassDb::File(f) => format!("passwd-file {}", f.path().display()),
            PassDb::Sql(s) => format!("sql {}", s.describe()),
            PassDb::Shadow(s) => format!("shadow {}", s.path().display()),
            PassDb::Pam(p) => format!("pam service {}", p.service()),
        }
    }
}
