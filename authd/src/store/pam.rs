//! System accounts through PAM: the host's own authentication stack (pam_unix, pam_sss,
//! pam_ldap, ...) decides, as saslauthd's `-a pam` and Dovecot's PAM passdb do.
//!
//! PAM verifies a password rather than handing out a hash, so this store answers "is this
//! the user's password?" instead of "what is the stored credential?", and only the
//! plaintext mechanisms (PLAIN, LOGIN) can be offered. Each attempt is one PAM transaction:
//! `pam_authenticate`, then `pam_acct_mgmt` (expired, locked, `pam_access` rules), with
//! `PAM_RHOST` set to the client address so the modules' own logs name it.
//!
//! PAM calls block, may take seconds (network directories) and may sleep on failure
//! (pam_unix's delay unless `nodelay`): they run on a pool of their own, bounded by
//! `passdb.pam_workers`, so they never starve the hashing pool or the async workers.
//!
//! pam_unix checks other users' passwords only as root or with read access to /etc/shadow
//! (`server.supplementary_groups = ["shadow"]`); its setgid helper `unix_chkpwd` verifies
//! only the calling user's own password.

use std::ffi::{OsStr, OsString};
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::Duration;

use nonstick::items::ItemsMut;
use nonstick::{AuthnFlags, ConversationAdapter, ErrorCode, PamShared, Transaction, TransactionBuilder};
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::{Account, Status};
use crate::hasher::{Busy, Hasher};

/// Who may log in, and how PAM is reached.
#[derive(Debug, Clone)]
pub struct PamSettings {
    /// The file under /etc/pam.d that holds the stack.
    pub service: String,
    pub workers: usize,
    pub min_uid: u32,
    pub required_group: Option<String>,
}

/// What PAM (and the account checks after it) said.
#[derive(Debug, Clone)]
pub enum PamVerdict {
    /// The password is right and the account may log in.
    Accepted(Arc<Account>),
    /// PAM accepted the password but the account may not log in.
    Refused(Arc<Account>),
    /// Wrong password, or an unknown user: PAM does not reliably tell them apart.
    Rejected,
    /// PAM itself failed (missing service file, module error, directory down).
    Unavailable(String),
}

pub struct Pam {
    settings: Arc<PamSettings>,
    pool: Hasher,
}

impl Pam {
    pub fn new(settings: PamSettings) -> Pam {
        // Queue: a flood waits for its deadline rather than being refused at once.
        let pool = Hasher::new(settings.workers.max(1), 1000);
        Pam { settings: Arc::new(settings), pool }
    }

    pub fn service(&self) -> &str {
        &self.settings.service
    }

    /// Runs one PAM transaction for `user` and `password`: the verdict, and how long the
    /// transaction took on its worker (the service pads failures to the slowest seen, so
    /// pam_unix's quick "unknown user" looks like a wrong password; [`crate::pace`]).
    ///
    /// # Errors
    /// No PAM worker became free before `deadline`.
    pub async fn verify(
        &self,
        user: &str,
        password: Zeroizing<Vec<u8>>,
        rip: Option<IpAddr>,
        deadline: Instant,
    ) -> Result<(PamVerdict, Duration), Busy> {
        let settings = self.settings.clone();
        let user = user.to_owned();
        self.pool
            .run(deadline, move || {
                let started = std::time::Instant::now();
                let verdict = transaction(&settings, &user, &password, rip);
                (verdict, started.elapsed())
            })
            .await
    }

    /// Account management only (`pam_acct_mgmt` with `PAM_RHOST`, then the uid and group
    /// rules), for a login whose password a cached verification already proved: locks,
    /// expiry, faillock and `pam_access` rules still apply to every login.
    ///
    /// # Errors
    /// No PAM worker became free before `deadline`.
    pub async fn account(&self, user: &str, rip: Option<IpAddr>, deadline: Instant) -> Result<PamVerdict, Busy> {
        let settings = self.settings.clone();
        let user = user.to_owned();
        self.pool.run(deadline, move || account_only(&settings, &user, rip)).await
    }

    /// Master-user targets are not supported with PAM: whether a system account is locked
    /// or expired is PAM's to say, and asking it without a password would need a second,
    /// blocking transaction. So no target is ever found, and such logins fail as
    /// `authzid-not-allowed`.
    pub fn lookup(&self, _user: &str) -> Option<Arc<Account>> {
        None
    }
}

fn account(user: &str, status: Status) -> Account {
    Account { user: user.to_owned(), password: None, status, allow_nets: Vec::new() }
}

/// One blocking PAM transaction.
fn transaction(settings: &PamSettings, user: &str, password: &[u8], rip: Option<IpAddr>) -> PamVerdict {
    // PAM's C strings cannot hold NUL (the mechanisms refuse it already; never hand it on).
    if user.contains('\0') || password.contains(&0) {
        return PamVerdict::Rejected;
    }
    let mut txn = match start(settings, user, password, rip) {
        Ok(t) => t,
        Err(v) => return v,
    };
    let flags = AuthnFlags::DISALLOW_NULL_AUTHTOK;
    if let Err(e) = txn.authenticate(flags) {
        return match e {
            // Some modules (pam_sss) refuse locked or expired accounts already here. Before
            // the password is known to be right, every refusal looks the same to the client.
            ErrorCode::AuthenticationError
            | ErrorCode::UserUnknown
            | ErrorCode::MaxTries
            | ErrorCode::CredentialsInsufficient
            | ErrorCode::PermissionDenied
            | ErrorCode::AccountExpired
            | ErrorCode::NewAuthTokRequired
            | ErrorCode::AuthTokExpired => PamVerdict::Rejected,
            other => PamVerdict::Unavailable(format!("pam_authenticate: {other}")),
        };
    }
    // The password is right: from here on, every refusal names the account's state.
    manage(settings, &mut txn, user)
}

/// [`Pam::account`]'s transaction: no password, account management only.
fn account_only(settings: &PamSettings, user: &str, rip: Option<IpAddr>) -> PamVerdict {
    if user.contains('\0') {
        return PamVerdict::Rejected;
    }
    let mut txn = match start(settings, user, b"", rip) {
        Ok(t) => t,
        Err(v) => return v,
    };
    manage(settings, &mut txn, user)
}

/// `pam_start` with the conversation and `PAM_RHOST` set.
fn start(
    settings: &PamSettings,
    user: &str,
    password: &[u8],
    rip: Option<IpAddr>,
) -> Result<impl Transaction, PamVerdict> {
    let answers = Answers { user: OsString::from(user), password: Zeroizing::new(password.to_vec()) };
    let mut txn = TransactionBuilder::new_with_service(&settings.service)
        .username(user)
        .build(answers.into_conversation())
        .map_err(|e| PamVerdict::Unavailable(format!("pam_start({}): {e}", settings.service)))?;
    if let Some(ip) = rip {
        let _ = txn.items_mut().set_remote_host(Some(OsStr::new(&ip.to_string())));
    }
    Ok(txn)
}

/// `pam_acct_mgmt`, then the uid and group rules, for a user whose password is right.
fn manage(settings: &PamSettings, txn: &mut impl Transaction, user: &str) -> PamVerdict {
    let flags = AuthnFlags::DISALLOW_NULL_AUTHTOK;
    let status = match txn.account_management(flags) {
        Ok(()) => Status::Active,
        Err(ErrorCode::AccountExpired | ErrorCode::NewAuthTokRequired | ErrorCode::AuthTokExpired) => Status::Expired,
        Err(ErrorCode::PermissionDenied) => Status::Disabled("refused by PAM account management"),
        Err(other) => return PamVerdict::Unavailable(format!("pam_acct_mgmt: {other}")),
    };
    if status != Status::Active {
        return PamVerdict::Refused(Arc::new(account(user, status)));
    }
    match system_status(settings, user) {
        Some(Status::Active) => PamVerdict::Accepted(Arc::new(account(user, Status::Active))),
        Some(other) => PamVerdict::Refused(Arc::new(account(user, other))),
        // Accepted by a module that knows users the name service does not (an LDAP-only
        // stack without nss): the uid and group rules cannot hold, so only when unset.
        None if settings.min_uid == 0 && settings.required_group.is_none() => {
            PamVerdict::Accepted(Arc::new(account(user, Status::Active)))
        }
        None => PamVerdict::Refused(Arc::new(account(user, Status::Disabled("not known to the name service")))),
    }
}

/// The crypt hashes of a shadow file, when this process may read it (root, or the
/// `shadow` group): what pam_unix will verify, so what the failure pad is calibrated on.
/// Empty when unreadable (the pad then starts from a SHA512-CRYPT verification and rises
/// with what PAM is seen to take).
pub fn system_hashes(path: &std::path::Path) -> Vec<crate::scheme::Stored> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    let mut seen = std::collections::HashSet::new();
    text.lines()
        .filter_map(|line| line.split(':').nth(1))
        .filter(|hash| hash.starts_with('$'))
        .filter_map(|hash| crate::scheme::Stored::parse(hash, crate::scheme::Scheme::Crypt).ok())
        .filter(|s| seen.insert(s.cost_class()))
        .collect()
}

/// The uid and group rules, from the name service (getpwnam/getgrnam: files, sss, ldap).
/// `None` for a user the name service does not know.
fn system_status(settings: &PamSettings, user: &str) -> Option<Status> {
    let entry = nix::unistd::User::from_name(user).ok()??;
    if entry.uid.as_raw() < settings.min_uid {
        return Some(Status::Disabled("uid below passdb.min_uid"));
    }
    if let Some(wanted) = &settings.required_group {
        let member = match nix::unistd::Group::from_name(wanted) {
            Ok(Some(g)) => g.gid == entry.gid || g.mem.iter().any(|m| m == user),
            _ => false,
        };
        if !member {
            return Some(Status::Disabled("not in passdb.required_group"));
        }
    }
    Some(Status::Active)
}

/// Answers PAM's prompts: the echoed one gets the user name, the masked one the password.
/// Messages for a human (expiry warnings, ...) are dropped: nobody is at a terminal.
struct Answers {
    user: OsString,
    password: Zeroizing<Vec<u8>>,
}

impl ConversationAdapter for Answers {
    fn prompt(&self, _request: impl AsRef<OsStr>) -> nonstick::Result<OsString> {
        Ok(self.user.clone())
    }

    fn masked_prompt(&self, _request: impl AsRef<OsStr>) -> nonstick::Result<OsString> {
        Ok(OsStr::from_bytes(&self.password).to_owned())
    }

    fn error_msg(&self, _message: impl AsRef<OsStr>) {}

    fn info_msg(&self, _message: impl AsRef<OsStr>) {}
}
