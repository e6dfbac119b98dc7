//! The configuration file, `/etc/postward/authd.toml`. Every key has a default; the
//! defaults serve /etc/postward/passwd with PLAIN and LOGIN.

use std::path::PathBuf;

use serde::Deserialize;
use shared::config::{CommonConfig, ServerConfig};
use shared::duration::ConfigDuration;
use shared::logging::LogConfig;

use crate::mech::Mech;
use crate::scheme::Scheme;
use crate::username::DEFAULT_EXTRA_CHARS;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub throttle: ThrottleConfig,
    pub cache: CacheConfig,
    pub passdb: PassdbConfig,
}

/// `[auth]`: mechanisms, names, delays and the hashing pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Offered in this order. CRAM-MD5 and SCRAM-SHA-256 need a store that can hold
    /// plaintext or mechanism-specific credentials (not shadow).
    pub mechanisms: Vec<String>,
    pub lowercase_usernames: bool,
    /// Appended as `@domain` to names without `@`; empty for none.
    pub default_domain: String,
    /// Allowed in names besides letters and digits.
    pub username_chars: String,
    pub max_username_length: usize,
    /// Failures are answered after this delay, ±25% jitter (Dovecot: 2 s).
    pub failure_delay: ConfigDuration,
    /// A failure is answered no sooner than this after its request started (then the
    /// failure delay). The pad is at least twice the slowest verification measured; raise
    /// it for stores whose slow entries are only met at run time (SQL).
    pub failure_floor: ConfigDuration,
    /// The server secret SCRAM-SHA-256 derives the salts of names without stored SCRAM
    /// credentials from; made on first start. Empty = `$STATE_DIRECTORY/secret`, else
    /// `/var/lib/postward-authd/secret`. Hosts that share a store should share the file.
    pub secret_file: PathBuf,
    /// Every reply leaves within this time, penalties included. Postfix gives up after
    /// 10 s and answers 454, so keep it below that.
    pub reply_budget: ConfigDuration,
    /// Hashes computed at once; 0 = one per core.
    pub hash_workers: usize,
    /// Verifications waiting for a hashing worker; beyond this, temporary failure at once.
    pub hash_queue: usize,
    /// Users who may log in as any other user by giving that user as authorization identity
    /// (PLAIN authzid, SCRAM `a=`) with their own password.
    pub master_users: Vec<String>,
    /// Host name in CRAM-MD5 challenges; empty = this host's name.
    pub hostname: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mechanisms: vec!["PLAIN".to_owned(), "LOGIN".to_owned()],
            lowercase_usernames: true,
            default_domain: String::new(),
            username_chars: DEFAULT_EXTRA_CHARS.to_owned(),
            max_username_length: 256,
            failure_delay: ConfigDuration::secs(2),
            failure_floor: ConfigDuration::secs(0),
            secret_file: PathBuf::new(),
            reply_budget: ConfigDuration::secs(9),
            hash_workers: 0,
            hash_queue: 1000,
            master_users: Vec::new(),
            hostname: String::new(),
        }
    }
}

/// `[throttle]`: the brute-force penalty.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    pub enabled: bool,
    pub initial: ConfigDuration,
    pub max: ConfigDuration,
    pub forget_after: ConfigDuration,
    pub size: usize,
    pub ipv6_prefix: u8,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            enabled: true,
            initial: ConfigDuration::secs(1),
            max: ConfigDuration::secs(6),
            forget_after: ConfigDuration::secs(900),
            size: 100_000,
            ipv6_prefix: 64,
        }
    }
}

/// `[cache]`: remembered successful verifications.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Entries; 0 turns the cache off.
    pub size: usize,
    pub ttl: ConfigDuration,
    /// Whether PAM logins are cached too. Off by default: a PAM login's answer may depend on
    /// the client address (pam_access, faillock). When on, the address is part of the key
    /// and every cache hit still runs `pam_acct_mgmt`.
    pub pam_logins: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { size: 10_000, ttl: ConfigDuration::secs(3600), pam_logins: false }
    }
}

/// The store kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Driver {
    #[default]
    PasswdFile,
    Sql,
    Shadow,
    Pam,
}

/// `[passdb]`: where accounts come from. Keys of other drivers are ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PassdbConfig {
    pub driver: Driver,
    /// passwd-file: the file.
    pub path: PathBuf,
    /// Scheme of stored passwords without a `{SCHEME}` prefix (passwd-file, sql).
    pub default_scheme: String,
    /// sql: `sqlite:///path`, `postgres://…`, `mysql://…`.
    pub url: String,
    pub query: String,
    pub timeout: ConfigDuration,
    pub max_connections: u32,
    /// shadow: the files.
    pub shadow_file: PathBuf,
    pub passwd_file: PathBuf,
    pub group_file: PathBuf,
    /// pam: the stack (/etc/pam.d/<name>) and how many PAM calls may run at once.
    pub pam_service: String,
    pub pam_workers: usize,
    /// shadow and pam: who may log in.
    pub min_uid: u32,
    pub required_group: String,
}

impl Default for PassdbConfig {
    fn default() -> Self {
        PassdbConfig {
            driver: Driver::PasswdFile,
            path: PathBuf::from("/etc/postward/passwd"),
            default_scheme: "CRYPT".to_owned(),
            url: String::new(),
            query: "SELECT password FROM users WHERE username = :user".to_owned(),
            timeout: ConfigDuration::secs(5),
            max_connections: 4,
            shadow_file: PathBuf::from("/etc/shadow"),
            passwd_file: PathBuf::from("/etc/passwd"),
            group_file: PathBuf::from("/etc/group"),
            pam_service: "postward-authd".to_owned(),
            pam_workers: 8,
            min_uid: 1000,
            required_group: String::new(),
        }
    }
}

impl Config {
    /// Where the server secret lives (see [`AuthConfig::secret_file`]).
    pub fn secret_path(&self) -> PathBuf {
        if self.auth.secret_file.as_os_str().is_empty() {
            crate::secret::default_path()
        } else {
            self.auth.secret_file.clone()
        }
    }

    /// The configured mechanisms, parsed (validation guarantees they parse).
    pub fn mechanisms(&self) -> Vec<Mech> {
        self.auth.mechanisms.iter().filter_map(|m| Mech::from_name(m)).collect()
    }

    pub fn default_scheme(&self) -> Scheme {
        Scheme::from_name(&self.passdb.default_scheme).unwrap_or(Scheme::Crypt)
    }
}

impl CommonConfig for Config {
    fn server(&self) -> &ServerConfig {
        &self.server
    }
    fn server_mut(&mut self) -> &mut ServerConfig {
        &mut self.server
    }
    fn log(&self) -> &LogConfig {
        &self.log
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, msg: String| Err((key.to_owned(), msg));
        if self.auth.mechanisms.is_empty() {
            return bad("auth.mechanisms", "offer at least one mechanism, or Postfix's smtpd exits at start".into());
        }
        for (i, name) in self.auth.mechanisms.iter().enumerate() {
            let Some(mech) = Mech::from_name(name) else {
                let known: Vec<&str> = Mech::ALL.iter().map(|m| m.name()).collect();
                return bad(
                    &format!("auth.mechanisms[{i}]"),
                    format!("unknown mechanism {name:?} (known: {})", known.join(", ")),
                );
            };
            if !mech.is_plaintext() && matches!(self.passdb.driver, Driver::Shadow | Driver::Pam) {
                return bad(
                    &format!("auth.mechanisms[{i}]"),
                    format!(
                        "{mech} needs plaintext or {mech} credentials, which the shadow and pam stores cannot hold"
                    ),
                );
            }
        }
        let budget = self.auth.reply_budget.get();
        if budget.is_zero() || budget >= std::time::Duration::from_secs(10) {
            return bad("auth.reply_budget", "must be above 0 and below Postfix's 10s auth timeout".into());
        }
        if self.auth.failure_delay.get() * 5 / 4 >= budget {
            return bad("auth.failure_delay", "with its 25% jitter it must stay below auth.reply_budget".into());
        }
        if self.auth.failure_floor.get() + self.auth.failure_delay.get() * 5 / 4 >= budget {
            return bad(
                "auth.failure_floor",
                "with auth.failure_delay and its 25% jitter it must stay below auth.reply_budget".into(),
            );
        }
        if self.auth.username_chars.chars().any(|c| c.is_control() || c == ':' || c == '/' || c.is_whitespace()) {
            return bad("auth.username_chars", "control characters, whitespace, ':' and '/' are never allowed".into());
        }
        if self.throttle.ipv6_prefix > 128 {
            return bad("throttle.ipv6_prefix", "at most 128".into());
        }
        if Scheme::from_name(&self.passdb.default_scheme).is_none() {
            return bad("passdb.default_scheme", format!("unknown scheme {:?}", self.passdb.default_scheme));
        }
        if self.passdb.driver == Driver::Pam {
            let name = &self.passdb.pam_service;
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return bad("passdb.pam_service", format!("{name:?} is not a file name under /etc/pam.d"));
            }
            if self.passdb.pam_workers == 0 {
                return bad("passdb.pam_workers", "at least 1".into());
            }
        }
        if self.passdb.driver == Driver::Sql && self.passdb.url.is_empty() {
            return bad("passdb.url", "the sql driver needs a database URL".into());
        }
        Ok(())
    }
}
