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
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// How long a transaction that verified a password takes, recently.
    typical: Typical,
}

/// A moving average of durations (microseconds, weight 1/8 for the newest).
#[derive(Default)]
struct Typical(AtomicU64);

impl Typical {
    fn record(&self, took: Duration) {
        let new = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let old = self.0.load(Ordering::Relaxed);
        let avg = if old == 0 { new } else { old - old / 8 + new / 8 };
        self.0.store(avg, Ordering::Relaxed);
    }

    fn get(&self) -> Duration {
        Duration::from_micros(self.0.load(Ordering::Relaxed))
    }
}

impl Pam {
    pub fn new(settings: PamSettings) -> Pam {
        // Queue: a flood waits for its deadline rather than being refused at once.
        let pool = Hasher::new(settings.workers.max(1), 1000);
        Pam { settings: Arc::new(settings), pool, typical: Typical::default() }
    }

    pub fn service(&self) -> &str {
        &self.settings.service
    }

    /// Runs one PAM transaction for `user` and `password`.
    ///
    /// # Errors
    /// No PAM worker became free before `deadline`.
    pub async fn verify(
        &self,
        user: &str,
        password: Zeroizing<Vec<u8>>,
        rip: Option<IpAddr>,
        deadline: Instant,
    ) -> Result<PamVerdict, Busy> {
        let settings = self.settings.clone();
        let user = user.to_owned();
        let started = Instant::now();
        let verdict = self.pool.run(deadline, move || transaction(&settings, &user, &password, rip)).await?;
        let took = started.elapsed();
        match &verdict {
            PamVerdict::Accepted(_) | PamVerdict::Refused(_) => self.typical.record(took),
            // pam_unix answers an unknown user without hashing: wait as long as a hash
            // takes, so the reply time does not tell unknown users from wrong passwords.
            PamVerdict::Rejected => {
                let pad = self.typical.get().saturating_sub(took);
                tokio::time::sleep_until((started + took + pad).min(deadline)).await;
            }
            PamVerdict::Unavailable(_) => {}
        }
        Ok(verdict)
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
    let answers = Answers { user: OsString::from(user), password: Zeroizing::new(password.to_vec()) };
    let mut txn =
        match TransactionBuilder::new_with_service(&settings.service).username(user).build(answers.into_conversation())
        {
            Ok(t) => t,
            Err(e) => return PamVerdict::Unavailable(format!("pam_start({}): {e}", settings.service)),
        };
    if let Some(ip) = rip {
        let _ = txn.items_mut().set_remote_host(Some(OsStr::new(&ip.to_string())));
    }
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
