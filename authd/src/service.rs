//! One attempt's path after the mechanism has parsed it: name → authorization → cache →
//! store → verify (on the hashing pool) → account checks → pad, failure delay and penalty →
//! one log line. The mechanisms in [`crate::request`] call [`Service::check_password`] (PLAIN,
//! LOGIN) or [`Service::account_for`] + [`Service::admit`] (CRAM-MD5, SCRAM), then
//! [`Service::finish`].

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shared::daemon::BuildError;
use tokio::time::Instant;

use crate::cache::{Fingerprint, Fingerprinter, VerifyCache};
use crate::config::{Config, Driver};
use crate::hasher::Hasher;
use crate::mech::{Mech, MechError};
use crate::outcome::{Failure, Outcome};
use crate::pace::Pace;
use crate::protocol::{Handshake, MechFlags};
use crate::scheme::{SCRAM_ITERATIONS, SCRAM_SALT_LEN, Scheme, ScramKeys, Stored, decoy};
use crate::secret::ServerSecret;
use crate::store::pam::{Pam, PamSettings, PamVerdict};
use crate::store::passwd_file::PasswdFile;
use crate::store::shadow::{Shadow, ShadowSettings};
use crate::store::sql::{SqlDb, SqlSettings};
use crate::store::{Account, LookupContext, PassDb, Status};
use crate::throttle::{Throttle, ThrottleSettings};
use crate::username::UsernamePolicy;

/// Longest password verified. SHA-crypt's cost grows with the square of the password's
/// length, so a 12 KB "password" would hold a hashing worker for half a second; no real
/// password comes near this.
const MAX_PASSWORD: usize = 1024;

/// Time kept free at the end of the reply budget for writing the reply.
const WRITE_MARGIN: Duration = Duration::from_millis(100);

/// What the service knows about one attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: u32,
    pub mech: Mech,
    /// Postfix's `service=` (`smtp`, `submission`, …).
    pub service: String,
    pub rip: Option<IpAddr>,
    pub lip: Option<IpAddr>,
    pub secured: bool,
    /// When the AUTH line arrived: the reply budget counts from here.
    pub started: Instant,
}

/// The account a CRAM-MD5 or SCRAM exchange proves credentials for.
pub struct Login {
    /// The normalised name that authenticates.
    pub name: String,
    /// The user to log in as when a master user names another one.
    pub target: Option<String>,
    /// `None` for an unknown user: the exchange runs on decoy credentials to the end.
    pub account: Option<Arc<Account>>,
}

/// The running service, rebuilt on every reload.
pub struct Service {
    mechs: Vec<Mech>,
    announce: Vec<(&'static str, MechFlags)>,
    names: UsernamePolicy,
    passdb: PassDb,
    hasher: Hasher,
    throttle: Option<Throttle>,
    cache: Option<VerifyCache>,
    /// Whether PAM logins are cached (`cache.pam_logins`).
    cache_pam: bool,
    fingerprints: Fingerprinter,
    /// The decoy unknown users are verified against, and the pad failures wait for.
    pace: Pace,
    /// What SCRAM salts of names without SCRAM credentials derive from; loaded when
    /// SCRAM-SHA-256 is offered.
    secret: Option<ServerSecret>,
    master_users: HashSet<String>,
    failure_delay: Duration,
    budget: Duration,
    hostname: String,
    connections: AtomicU64,
}

/// The user-name rules of `[auth]`.
fn names(config: &Config) -> UsernamePolicy {
    let auth = &config.auth;
    UsernamePolicy {
        lowercase: auth.lowercase_usernames,
        default_domain: Some(auth.default_domain.clone()).filter(|d| !d.is_empty()),
        extra_chars: auth.username_chars.clone(),
        max_length: auth.max_username_length,
    }
}

fn sql_settings(config: &Config) -> SqlSettings {
    let p = &config.passdb;
    SqlSettings {
        url: p.url.clone(),
        query: p.query.clone(),
        default_scheme: config.default_scheme(),
        timeout: p.timeout.get(),
        max_connections: p.max_connections,
    }
}

fn shadow_settings(config: &Config) -> ShadowSettings {
    let p = &config.passdb;
    ShadowSettings {
        shadow: p.shadow_file.clone(),
        passwd: p.passwd_file.clone(),
        group: p.group_file.clone(),
        min_uid: p.min_uid,
        required_group: Some(p.required_group.clone()).filter(|g| !g.is_empty()),
    }
}

impl Service {
    /// Builds the service from a checked configuration: opens the store, sizes the pools.
    ///
    /// # Errors
    /// The store cannot be opened (unreadable passwd-file, bad database URL, …).
    /// `--check-config`: opens the passwd-file or shadow files as start-up does, checks an
    /// SQL store's URL and query placeholders without connecting, and a PAM stack's file.
    ///
    /// # Errors
    /// What start-up would stop on.
    pub fn check(config: &Config) -> Result<(), String> {
        let p = &config.passdb;
        let names = names(config);
        match p.driver {
            Driver::PasswdFile => PasswdFile::open(&p.path, config.default_scheme(), names).map(|_| ()),
            Driver::Sql => SqlDb::check(&sql_settings(config)),
            Driver::Shadow => Shadow::open(shadow_settings(config)).map(|_| ()),
            Driver::Pam => {
                let stack = std::path::Path::new("/etc/pam.d").join(&p.pam_service);
                return if stack.is_file() {
                    Ok(())
                } else {
                    Err(format!("passdb.pam_service: no PAM stack {}", stack.display()))
                };
            }
        }
        .map_err(|e| e.to_string())
    }

    pub async fn build(config: Arc<Config>) -> Result<Service, BuildError> {
        let auth = &config.auth;
        let names = names(&config);
        let default_scheme = config.default_scheme();
        let p = &config.passdb;
        let passdb = match p.driver {
            Driver::PasswdFile => PassDb::File(PasswdFile::open(&p.path, default_scheme, names.clone())?),
            Driver::Sql => PassDb::Sql(SqlDb::open(&sql_settings(&config), names.clone())?),
            Driver::Shadow => PassDb::Shadow(Shadow::open(shadow_settings(&config))?),
            Driver::Pam => PassDb::Pam(Pam::new(PamSettings {
                service: p.pam_service.clone(),
                workers: p.pam_workers,
                min_uid: p.min_uid,
                required_group: Some(p.required_group.clone()).filter(|g| !g.is_empty()),
            })),
        };
        let mechs = config.mechanisms();
        warn_unservable(&passdb, &mechs);
        let throttle = config.throttle.enabled.then(|| {
            Throttle::new(ThrottleSettings {
                initial: config.throttle.initial.get(),
                max: config.throttle.max.get(),
                forget_after: config.throttle.forget_after.get(),
                size: config.throttle.size,
                ipv6_prefix: config.throttle.ipv6_prefix,
            })
        });
        // Without a costlier entry in the store, the decoy is the default scheme's own slow
        // hash, or SHA512-CRYPT (what distributions and `doveadm pw` users mostly store).
        let fallback = if default_scheme.is_slow() && default_scheme != Scheme::Crypt {
            default_scheme
        } else {
            Scheme::Sha512Crypt
        };
        let mut samples = passdb.cost_samples();
        if matches!(passdb, PassDb::Sql(_)) {
            // Nothing to time before the first logins: start from the costliest of what
            // doveadm and `postward-authd pw` make by default.
            samples.extend([decoy(Scheme::BlfCrypt), decoy(Scheme::Argon2id)]);
        }
        let delay = auth.failure_delay.get();
        let ceiling = auth.reply_budget.get().saturating_sub(delay * 5 / 4 + WRITE_MARGIN);
        let floor = auth.failure_floor.get();
        let pace = tokio::task::spawn_blocking(move || Pace::calibrate(samples, decoy(fallback), floor, ceiling))
            .await
            .map_err(|e| format!("calibrating the failure pad: {e}"))?;
        let pace = match config.secret_path().parent() {
            Some(state) if state.is_dir() => pace.remembered_in(state.join("pace")),
            _ => pace,
        };
        tracing::info!(
            "failures are answered {} ms after the request at the earliest (unknown users are checked against {}), then after auth.failure_delay",
            pace.pad().as_millis(),
            pace.decoy().cost_class()
        );
        let secret = if mechs.contains(&Mech::ScramSha256) {
            let path = config.secret_path();
            Some(
                tokio::task::spawn_blocking(move || ServerSecret::load_or_create(&path))
                    .await
                    .map_err(|e| e.to_string())??,
            )
        } else {
            None
        };
        let hostname = if auth.hostname.is_empty() {
            nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".to_owned())
        } else {
            auth.hostname.clone()
        };
        tracing::info!(
            "password store: {}; mechanisms: {}",
            passdb.describe(),
            mechs.iter().map(|m| m.name()).collect::<Vec<_>>().join(" ")
        );
        Ok(Service {
            announce: mechs.iter().map(|m| (m.name(), m.flags())).collect(),
            mechs,
            master_users: auth.master_users.iter().filter_map(|u| names.normalize(u.as_bytes()).ok()).collect(),
            names,
            passdb,
            hasher: Hasher::new(auth.hash_workers, auth.hash_queue),
            throttle,
            cache: VerifyCache::new(config.cache.size, config.cache.ttl.get()),
            cache_pam: config.cache.pam_logins,
            fingerprints: Fingerprinter::new(),
            pace,
            secret,
            failure_delay: auth.failure_delay.get(),
            budget: auth.reply_budget.get(),
            hostname,
            connections: AtomicU64::new(0),
        })
    }

    /// The handshake for a new connection (its own CUID and cookie).
    pub fn handshake(&self) -> String {
        let mut cookie = [0u8; 16];
        let _ = getrandom::fill(&mut cookie);
        Handshake {
            mechs: &self.announce,
            spid: std::process::id(),
            cuid: self.connections.fetch_add(1, Ordering::Relaxed) + 1,
            cookie,
        }
        .render()
    }

    /// The offered mechanism called `name`, if any.
    pub fn mechanism(&self, name: &str) -> Option<Mech> {
        Mech::from_name(name).filter(|m| self.mechs.contains(m))
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// PLAIN and LOGIN: checks a password.
    pub async fn check_password(
        &self,
        at: &Attempt,
        authzid: Option<&[u8]>,
        authcid: &[u8],
        password: &[u8],
    ) -> (Outcome, Option<Fingerprint>) {
        let name = match self.names.normalize(authcid) {
            Ok(n) => n,
            Err(e) => return (Outcome::failure(None, Failure::BadUsername(e)), None),
        };
        let fp = self.fingerprints.of(&name, password);
        if password.len() > MAX_PASSWORD {
            return (
                Outcome::failure(
                    Some(name),
                    Failure::Malformed(MechError::Malformed("password longer than 1024 bytes")),
                ),
                Some(fp),
            );
        }
        let target = match self.authorize(&name, authzid) {
            Ok(t) => t,
            Err(f) => return (Outcome::failure(Some(name), f), Some(fp)),
        };
        let generation = self.passdb.generation();
        let cache = self.cache.as_ref().filter(|_| self.cache_pam || !matches!(self.passdb, PassDb::Pam(_)));
        let cache_key = cache.map(|_| self.cache_key(at, &name, password));
        if target.is_none()
            && let (Some(cache), Some(key)) = (cache, &cache_key)
            && let Some(user) = cache.get(key, generation)
        {
            metrics::counter!("postward_auth_cache_hits_total").increment(1);
            return (self.admit_cached(at, name, user).await, Some(fp));
        }
        let account = match self.verify(at, &name, password).await {
            Ok(a) => a,
            Err(f) => return (Outcome::failure(Some(name), f), Some(fp)),
        };
        // A hit skips every account check: only accounts whose checks do not depend on the
        // request (no allow_nets, no master login) are remembered.
        let cacheable = account.allow_nets.is_empty() && target.is_none();
        let outcome = match self.admit(at, &Login { name, target, account: Some(account) }).await {
            Ok(user) => {
                if let (Some(cache), Some(key)) = (cache, cache_key)
                    && cacheable
                {
                    cache.put(key, &user, generation);
                }
                Outcome::success(user)
            }
            Err(o) => o,
        };
        (outcome, Some(fp))
    }

    /// Checks `password` against the store. Returns the account when the password is right,
    /// or when the account has none (locked): [`Self::admit`] then refuses it by its state.
    ///
    /// # Errors
    /// Unknown user, wrong password, or the store or pool could not answer in time.
    async fn verify(&self, at: &Attempt, name: &str, password: &[u8]) -> Result<Arc<Account>, Failure> {
        let secret = zeroize::Zeroizing::new(password.to_vec());
        if let PassDb::Pam(pam) = &self.passdb {
            let (verdict, took) = pam.verify(name, secret, at.rip, self.deadline(at)).await.map_err(Failure::Busy)?;
            self.pace.observe_time(took);
            return match verdict {
                PamVerdict::Accepted(account) | PamVerdict::Refused(account) => Ok(account),
                PamVerdict::Rejected => Err(Failure::WrongPassword),
                PamVerdict::Unavailable(why) => Err(Failure::Store(why)),
            };
        }
        let account = self.lookup(name, at).await?;
        // An unknown user (or one without a password) costs what the costliest known one
        // does: the decoy is verified instead.
        let stored = match account.as_ref().and_then(|a| a.password.clone()) {
            Some(s) => s,
            None => Stored::clone(&self.pace.decoy()),
        };
        let timed = move || {
            let started = std::time::Instant::now();
            let verified = stored.verify(&secret);
            (verified, started.elapsed(), stored)
        };
        let (verified, took, stored) = if stored_is_slow(&account, &self.pace) {
            self.hasher.run(self.deadline(at), timed).await.map_err(Failure::Busy)?
        } else {
            timed()
        };
        self.pace.observe(&stored, took);
        let account = account.ok_or(Failure::UnknownUser)?;
        if account.password.is_some() && !verified {
            return Err(Failure::WrongPassword);
        }
        Ok(account)
    }

    /// A cached PLAIN or LOGIN success. With PAM the account is asked again (locks,
    /// expiry, rules by client address); the other stores' account checks were part of
    /// what was cached (only requests they cannot vary with are).
    async fn admit_cached(&self, at: &Attempt, name: String, user: String) -> Outcome {
        let PassDb::Pam(pam) = &self.passdb else { return Outcome::success(user) };
        match pam.account(&name, at.rip, self.deadline(at)).await {
            Ok(PamVerdict::Accepted(account)) => Outcome::success(account.user.clone()),
            Ok(PamVerdict::Refused(account)) => {
                let login = Login { name, target: None, account: Some(account) };
                match self.admit(at, &login).await {
                    Ok(u) => Outcome::success(u),
                    Err(o) => o,
                }
            }
            Ok(PamVerdict::Rejected) => Outcome::failure(Some(name), Failure::WrongPassword),
            Ok(PamVerdict::Unavailable(why)) => Outcome::failure(Some(name), Failure::Store(why)),
            Err(busy) => Outcome::failure(Some(name), Failure::Busy(busy)),
        }
    }

    /// CRAM-MD5 and SCRAM: the account whose credentials the exchange checks.
    ///
    /// # Errors
    /// A bad name, a refused authorization identity or a store failure, as a final outcome.
    pub async fn account_for(&self, at: &Attempt, authzid: Option<&[u8]>, authcid: &[u8]) -> Result<Login, Outcome> {
        let name = self.names.normalize(authcid).map_err(|e| Outcome::failure(None, Failure::BadUsername(e)))?;
        let target = self.authorize(&name, authzid).map_err(|f| Outcome::failure(Some(name.clone()), f))?;
        let account = self.lookup(&name, at).await.map_err(|f| Outcome::failure(Some(name.clone()), f))?;
        Ok(Login { name, target, account })
    }

    /// SCRAM-SHA-256 keys for a login: the account's, or decoys for an unknown user or one
    /// whose store entry cannot serve SCRAM (the exchange then fails at the proof, as a
    /// wrong password does, instead of telling the client early).
    ///
    /// What the client sees before its proof (salt, iteration count, and the time the
    /// server-first message takes) must not tell these apart: every name without stored
    /// SCRAM keys gets a salt derived from the name under the server secret (the same after
    /// every restart and reload), and every name costs one PBKDF2 on the hashing pool (a
    /// PLAIN entry's real one, a decoy's, or a throwaway one beside stored keys).
    pub async fn scram_keys(&self, at: &Attempt, login: &Login) -> Result<ScramKeys, Failure> {
        let Some(secret) = &self.secret else {
            return Err(Failure::Store("SCRAM-SHA-256 without a server secret".to_owned()));
        };
        let salt = secret.derive("scram-salt", &login.name)[..SCRAM_SALT_LEN].to_vec();
        let noise = zeroize::Zeroizing::new(secret.derive("scram-decoy-password", &login.name));
        let stored = login.account.as_ref().and_then(|a| a.password.clone());
        let job = move || {
            let keys = match stored {
                Some(s) if s.scheme() == Scheme::Plain => s.scram_sha256(&salt),
                Some(s) if s.scheme() == Scheme::ScramSha256 => {
                    std::hint::black_box(ScramKeys::derive(&noise[..], &salt, SCRAM_ITERATIONS));
                    s.scram_sha256(&salt)
                }
                _ => None,
            };
            keys.unwrap_or_else(|| ScramKeys::derive(&noise[..], &salt, SCRAM_ITERATIONS))
        };
        self.hasher.run(self.deadline(at), job).await.map_err(Failure::Busy)
    }

    /// After the credentials are proven: the account's state, its networks, and the master
    /// user's target. Returns the user to report in `OK user=`.
    ///
    /// # Errors
    /// The outcome to report.
    pub async fn admit(&self, at: &Attempt, login: &Login) -> Result<String, Outcome> {
        let fail = |f: Failure| Outcome::failure(Some(login.name.clone()), f);
        let Some(account) = &login.account else { return Err(fail(Failure::UnknownUser)) };
        match account.status {
            Status::Active => {}
            Status::Disabled(why) => return Err(fail(Failure::Disabled(why))),
            Status::Expired => return Err(fail(Failure::Expired)),
        }
        if !account.allows(at.rip) {
            return Err(fail(Failure::NotFromHere));
        }
        let Some(target) = &login.target else { return Ok(account.user.clone()) };
        // A master user logs in as an existing, active user only.
        match self.lookup(target, at).await {
            Ok(Some(t)) if t.status == Status::Active => Ok(t.user.clone()),
            Ok(_) => Err(fail(Failure::Authz)),
            Err(f) => Err(fail(f)),
        }
    }

    /// Ends an attempt: records it for throttling, waits (inside the reply budget), and logs
    /// it. A failure leaves no sooner than the pad after its request started, then the
    /// failure delay with jitter, then the penalty: its time tells nothing about the account
    /// ([`crate::pace`]). An abandoned exchange is recorded and logged but not waited for:
    /// nobody reads its answer.
    pub async fn finish(&self, at: &Attempt, outcome: Outcome, fp: Option<Fingerprint>) -> Outcome {
        let user = outcome.user.as_deref();
        let mut penalty = Duration::ZERO;
        if let Some(throttle) = &self.throttle {
            penalty = throttle.penalty(at.rip, user);
            match &outcome.result {
                Ok(()) => throttle.succeeded(at.rip, user),
                Err(f) if f.is_guess() => {
                    let attempt = fp.map_or(0, |f| u64::from_le_bytes(f[..8].try_into().unwrap_or_default()));
                    throttle.failed(at.rip, user, attempt);
                }
                Err(_) => {}
            }
        }
        let until = match &outcome.result {
            Err(Failure::Abandoned(_)) => None,
            Err(f) if f.is_delayed() => {
                let padded = (at.started + self.pace.pad()).max(Instant::now());
                Some(padded + jitter(self.failure_delay) + penalty)
            }
            // Only a real wait touches the timer: a zero sleep still waits for the timer's
            // next millisecond tick, which would cap every connection at ~1,000 answers a
            // second.
            _ if !penalty.is_zero() => Some(Instant::now() + penalty),
            _ => None,
        };
        if let Some(until) = until {
            tokio::time::sleep_until(until.min(self.deadline(at))).await;
        }
        log(at, &outcome, at.started.elapsed());
        outcome
    }

    /// A fingerprint for a CRAM-MD5 or SCRAM attempt: the exchange's messages carry fresh
    /// nonces, so each one differs and every failure counts as a new guess.
    pub fn fingerprint(&self, name: &str, answer: &[u8]) -> Fingerprint {
        self.fingerprints.of(name, answer)
    }

    /// Takes over what the service a reload replaces has learnt: the throttle's records and
    /// the measured verification costs (when the store is the same kind).
    #[must_use]
    pub fn inherit(mut self, previous: &Service) -> Service {
        if let (Some(mine), Some(theirs)) = (&mut self.throttle, &previous.throttle) {
            mine.inherit(theirs);
        }
        if std::mem::discriminant(&self.passdb) == std::mem::discriminant(&previous.passdb) {
            self.pace.inherit(&previous.pace);
        }
        self
    }

    /// The latest time the reply may leave.
    pub fn deadline(&self, at: &Attempt) -> Instant {
        at.started + self.budget.saturating_sub(WRITE_MARGIN)
    }

    /// What a cached success is filed under: the user and password, and whatever else the
    /// store's answer may depend on (the service, and the client address for PAM and for an
    /// SQL query that uses `:rip`).
    fn cache_key(&self, at: &Attempt, name: &str, password: &[u8]) -> Fingerprint {
        let mut scope = format!("{name}\0{}", at.service);
        if self.passdb.varies_with_client() || matches!(self.passdb, PassDb::Pam(_)) {
            scope.push('\0');
            scope.push_str(&at.rip.map(|ip| ip.to_string()).unwrap_or_default());
        }
        self.fingerprints.of(&scope, password)
    }

    /// The user to log in as when `authzid` names someone else.
    fn authorize(&self, name: &str, authzid: Option<&[u8]>) -> Result<Option<String>, Failure> {
        let Some(raw) = authzid else { return Ok(None) };
        let target = self.names.normalize(raw).map_err(Failure::BadUsername)?;
        if target == name {
            Ok(None)
        } else if self.master_users.contains(name) {
            Ok(Some(target))
        } else {
            Err(Failure::Authz)
        }
    }

    async fn lookup(&self, name: &str, at: &Attempt) -> Result<Option<Arc<Account>>, Failure> {
        let ctx = LookupContext { service: &at.service, rip: at.rip };
        match tokio::time::timeout_at(self.deadline(at), self.passdb.lookup(name, ctx)).await {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(e)) => Err(Failure::Store(e.to_string())),
            Err(_) => Err(Failure::Store("no answer before the reply deadline".to_owned())),
        }
    }
}

/// Whether verifying this attempt's credential belongs on the hashing pool: a slow stored
/// scheme, or the decoy (which is the store's costliest).
fn stored_is_slow(account: &Option<Arc<Account>>, pace: &Pace) -> bool {
    match account.as_ref().and_then(|a| a.password.as_ref()) {
        Some(s) => s.scheme().is_slow(),
        None => pace.decoy().scheme().is_slow(),
    }
}

/// Warns when a configured mechanism can serve no account of a passwd-file.
fn warn_unservable(passdb: &PassDb, mechs: &[Mech]) {
    let PassDb::File(file) = passdb else { return };
    let table = file.table();
    for mech in mechs {
        let servable = match mech {
            Mech::Plain | Mech::Login => true,
            Mech::CramMd5 => table.any(|s| s.cram_md5().is_some()),
            Mech::ScramSha256 => table.any(|s| matches!(s.scheme(), Scheme::Plain | Scheme::ScramSha256)),
        };
        if !servable && !table.is_empty() {
            tracing::warn!(
                "{mech} is offered but no account in {} has PLAIN or {mech} credentials: every {mech} login will fail",
                file.path().display()
            );
        }
    }
}

/// `delay` ±25%, so failures cannot be told apart by their exact timing.
fn jitter(delay: Duration) -> Duration {
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    let fraction = f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX);
    delay.mul_f64(0.75 + fraction / 2.0)
}

/// The one log line per attempt (fail2ban matches `authentication failed` … `rip=`).
fn log(at: &Attempt, outcome: &Outcome, took: Duration) {
    let user = outcome.user.as_deref().unwrap_or("(invalid)");
    let rip = at.rip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let tls = if at.secured { "yes" } else { "no" };
    let ms = took.as_millis();
    let result = match &outcome.result {
        Ok(()) => {
            tracing::info!(
                "authentication ok: user={user} method={} rip={rip} service={} tls={tls} ms={ms}",
                at.mech,
                at.service
            );
            "ok"
        }
        Err(f) => {
            tracing::info!(
                "authentication failed: user={user} method={} rip={rip} service={} tls={tls} reason={} ms={ms}",
                at.mech,
                at.service,
                f.log_reason()
            );
            f.kind()
        }
    };
    if shared::metrics::enabled() {
        metrics::counter!("postward_auth_attempts_total", "mechanism" => at.mech.to_string(), "result" => result)
            .increment(1);
        metrics::histogram!("postward_auth_duration_seconds").record(took.as_secs_f64());
    }
}
