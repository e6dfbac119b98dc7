//! One request's path through greyd, top to bottom:
//! skip rules and whitelists (no database) → triplet → memory cache → store lookups →
//! sender pool (only for a first attempt) → [`greylist::decide`] → store update → answer.
//!
//! Store trouble never reaches the client as an error: the request gets the configured
//! `on_store_error` answer (DUNNO by default), one warning is logged per outage, and the
//! next request simply tries the store again.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use shared::daemon::BuildError;
use shared::policy::{Action, Decision, Header, PolicyRequest};
use tokio::sync::OnceCell;

use crate::cache::HotCache;
use crate::config::{Config, render_reply, store_error_action};
use crate::greylist::{self, Policy, RequestFacts, Skip, StoredFacts, Update, Verdict};
use crate::pending::PendingLimit;
use crate::pool::SpfPool;
use crate::store::{
    Attempt, Entry, FirstRule, Found, Lookup, PassBook, PassOutcome, Store, StoreError, StoreOptions, Triplet as Key,
};
use crate::triplet::{NULL_SENDER, Normalizer, Triplet};
use crate::whitelist::Whitelists;

/// The running greylist service, rebuilt on every reload.
pub struct Service {
    config: Arc<Config>,
    policy: Policy,
    normalizer: Normalizer,
    trusted: Vec<IpNet>,
    whitelists: Whitelists,
    store: Arc<LazyStore>,
    cache: Arc<HotCache>,
    /// The per-network bound on pending triplets.
    pending: Arc<PendingLimit>,
    pool: Option<SpfPool>,
    on_store_error: Action,
    outage: Arc<Outage>,
    /// When the store may insert a first attempt while it looks the triplet up.
    first_rule: FirstRule,
    hostname: String,
    _purge: AbortOnDrop,
    _admin_watch: AbortOnDrop,
}

impl Service {
    /// Builds the service: loads whitelists and the privacy key, opens the store (a store
    /// that is down only delays its opening; a wrong URL or schema stops the start).
    ///
    /// # Errors
    /// Unreadable whitelist or key files, an invalid store URL, a failed migration.
    pub async fn build(config: Arc<Config>) -> Result<Service, BuildError> {
        let g = &config.greylist;
        let normalizer = Normalizer::from_config(g)?;
        let wl = config.whitelist.clone();
        let whitelists = tokio::task::spawn_blocking(move || {
            Whitelists::load(&wl.clients, &wl.recipients, &wl.senders, wl.builtins())
        })
        .await??;
        let options = StoreOptions {
            max_connections: config.store.max_connections,
            op_timeout: config.store.timeout.get(),
            connect_timeout: config.store.timeout.get().max(Duration::from_secs(2)),
        };
        let store = Arc::new(LazyStore::new(config.store.effective_url(), options));
        // An outage that starts with the daemon is the same outage the first requests meet:
        // one warning, here, and the "recovered" line when it ends.
        let outage = Arc::new(Outage::default());
        match store.open().await {
            Ok(_) => {}
            Err(e @ (StoreError::Unavailable(_) | StoreError::Timeout)) => {
                outage.failed(&e, &format!("answering {} until it can be opened", g.on_store_error));
            }
            Err(e) => return Err(format!("cannot open the store: {e}").into()),
        }
        let pool = if config.sender_pools.spf {
            let resolver = config.dns.build()?;
            let sp = &config.sender_pools;
            Some(SpfPool::new(
                shared::dns::SpfLookup(resolver),
                sp.spf_timeout.get(),
                sp.spf_cache_size,
                sp.spf_cache_ttl.get(),
                crate::pool::width::Limits { widest_ipv4: sp.widest_ipv4, widest_ipv6: sp.widest_ipv6 },
            ))
        } else {
            None
        };
        let policy = Policy {
            delay: secs(g.delay.get()),
            retry_window: secs(g.retry_window.get()),
            max_age: secs(g.max_age.get()),
            awl_client_passes: g.auto_whitelist_clients,
        };
        let pending = Arc::new(PendingLimit::new(g.max_pending_per_network));
        let purge = spawn_purge(store.clone(), outage.clone(), &config, policy.clone(), pending.clone());
        let cache = Arc::new(HotCache::new(config.store.cache_size));
        let admin_watch = spawn_admin_watch(store.clone(), cache.clone());
        Ok(Service {
            normalizer,
            trusted: g.trusted_networks.clone(),
            on_store_error: store_error_action(&g.on_store_error)?,
            cache,
            pending,
            whitelists,
            store,
            pool,
            outage,
            // `decide`'s rule for a triplet that is not stored, as data for SQLite's writer
            // (greylist test `an_absent_triplet_is_inserted_unless_auto_whitelisted_or_pooled`).
            first_rule: FirstRule {
                awl_client_passes: policy.awl_client_passes,
                awl_domains: g.auto_whitelist_domains,
            },
            hostname: crate::header::hostname(),
            policy,
            config,
            _purge: purge,
            _admin_watch: admin_watch,
        })
    }

    /// Closes the store, if it was opened: SQLite's writer first writes what it holds
    /// behind (passes, early-retry counts).
    pub async fn close(&self) {
        if let Some(store) = self.store.cell.get() {
            store.close().await;
        }
    }

    /// Decides one request.
    pub async fn decide(&self, req: &PolicyRequest) -> Decision {
        let facts = self.request_facts(req);
        if let Some(skip) = greylist::precheck(&facts) {
            return skip_decision(skip);
        }
        let Some(client) = req.client_address else {
            return skip_decision(Skip::NoClientAddress);
        };
        let triplet = self.normalizer.triplet(client, &req.sender, &req.recipient);
        let now = unix_now();
        let started = std::time::Instant::now();
        match self.with_store(req, client, &triplet, now).await {
            Ok(d) => {
                self.outage.recovered(started);
                d
            }
            Err(e) => {
                self.outage.failed(&e, &format!("answering {} until it recovers", self.on_store_error));
                metrics::counter!("postward_greyd_store_errors_total").increment(1);
                Decision::new(self.on_store_error.clone(), "store-error").with("error", e)
            }
        }
    }

    fn request_facts(&self, req: &PolicyRequest) -> RequestFacts {
        let client = req.client_address;
        let whitelisted = client.and_then(|ip| {
            if let Some(o) = self.whitelists.client(ip, &req.client_name) {
                return Some(("whitelist-client", o.to_string()));
            }
            if let Some(o) = self.whitelists.recipient(&req.recipient) {
                return Some(("whitelist-recipient", o.to_string()));
            }
            self.whitelists.sender(&req.sender).map(|o| ("whitelist-sender", o.to_string()))
        });
        RequestFacts {
            protocol_state: Some(req.protocol_state.clone()),
            authenticated: req.is_authenticated(),
            has_client_address: client.is_some(),
            trusted_network: client.is_some_and(|ip| self.trusted.iter().any(|n| n.contains(&ip))),
            whitelisted,
            suspicious: match (self.config.greylist.selective, client) {
                (true, Some(ip)) => Some(crate::selective::suspicious(ip, &req.client_name, &req.helo_name)),
                _ => None,
            },
        }
    }

    async fn with_store(
        &self,
        req: &PolicyRequest,
        client: IpAddr,
        t: &Triplet,
        now: i64,
    ) -> Result<Decision, StoreError> {
        let client_key = client.to_string();
        if self.cache.client_whitelisted(&client_key, now) {
            return Ok(self.answer(req, Verdict::AwlClient, t));
        }
        let store = self.store.get().await?;
        let key = Key { client_net: &t.client_net, sender: &t.sender, recipient: &t.recipient };
        // In privacy mode the domain auto-whitelist stores the domain hashed too.
        let domain = self.normalizer.domain_of(&req.sender);
        // A triplet this host has seen is decided from memory (see `cache`); otherwise one
        // round trip reads the row and both auto-whitelists, and on SQLite also inserts a first
        // attempt when `first_rule` says so.
        let cached = self.cache.entry(t);
        let from_cache = cached.is_some();
        let mut inserted = None;
        // Whether the client's network is at its bound of pending triplets, once asked.
        let mut at_bound = None;
        let mut facts = match cached {
            Some(entry) => StoredFacts { entry: Some(entry), ..StoredFacts::default() },
            None => {
                let pools = self.pool.is_some() && t.sender != NULL_SENDER;
                let attempt = Attempt {
                    client: &client_key,
                    domain: &domain,
                    now,
                    max_age: self.policy.max_age,
                    pool_cutoff: pools.then(|| now - self.policy.delay),
                };
                // A network at its bound of pending triplets is only read: a first attempt
                // from it must not be inserted on the way.
                let full = *at_bound.insert(self.pending.full(&t.client_net));
                let found = if full {
                    Found::Looked(store.lookup(&key, &client_key, &domain, now, self.policy.max_age).await?)
                } else {
                    store.lookup_or_insert(&key, &attempt, &self.first_rule).await?
                };
                match found {
                    Found::Looked(found) => {
                        stored_facts(found, &self.policy, self.config.greylist.auto_whitelist_domains)
                    }
                    Found::Inserted(stored) => {
                        inserted = Some(stored);
                        StoredFacts::default()
                    }
                }
            }
        };
        // The writer inserts only when no pool candidate exists, so there is no partner.
        if let Some(pool) = &self.pool
            && inserted.is_none()
            && t.sender != NULL_SENDER
            && greylist::needs_pool(now, facts.entry.as_ref(), &self.policy)
        {
            let candidates = store
                .pool_candidates(
                    &t.sender,
                    &t.recipient,
                    &t.client_net,
                    now - self.policy.delay,
                    self.config.sender_pools.max_candidates,
                )
                .await?;
            facts.pool_partner = pool.partner(&req.sender, client, &candidates).await;
        }
        let (mut verdict, mut update) = greylist::decide(now, &facts, &self.policy);
        let mut entry = facts.entry.clone();
        if update == Update::InsertFirst {
            let stored = match inserted {
                Some(stored) => stored,
                None if at_bound.unwrap_or_else(|| self.pending.full(&t.client_net)) => {
                    return Ok(self.refuse_pending(req, t, now));
                }
                None => store.insert_first(&key, &client_key, now).await?,
            };
            update = Update::None;
            if stored.first_seen == now {
                self.pending.stored(&t.client_net);
            } else {
                // Another MX inserted the same triplet a moment earlier: decide on its row.
                (verdict, update) =
                    greylist::decide(now, &StoredFacts { entry: Some(stored.clone()), ..facts.clone() }, &self.policy);
            }
            entry = Some(stored);
        }
        // Auto-whitelist bookkeeping rides on the pass writes (the first pass, then at most
        // hourly, which is also the client auto-whitelist's counting interval), in one store
        // operation with them.
        let mut book = PassBook {
            insert_for: None,
            count_client: (self.policy.awl_client_passes > 0).then_some((client_key.as_str(), 3600)),
            note_domain: (self.config.greylist.auto_whitelist_domains && !domain.is_empty()).then_some(domain.as_str()),
        };
        // The client's count when the pass was written at once; `None` when written behind.
        let mut passed: Option<PassOutcome> = None;
        match update {
            Update::None | Update::InsertFirst => {}
            Update::Restart => {
                store.restart(&key, &client_key, now).await?;
                self.pending.stored(&t.client_net);
                entry = Some(Entry::first(now, &client_key));
            }
            Update::RecordRetry => {
                store.note_retry(&key, &client_key, now).await?;
                if let Some(e) = &mut entry {
                    e.attempts += 1;
                    e.last_seen = now;
                }
            }
            Update::RecordPass => {
                let first_pass = entry.as_ref().is_some_and(|e| e.passed_at.is_none());
                let due = !from_cache || entry.as_ref().is_none_or(|e| HotCache::refresh_due(e, now));
                if first_pass || due {
                    passed = store.note_pass(&key, now, &book).await?;
                    if first_pass {
                        self.pending.passed(&t.client_net);
                    }
                    if let Some(e) = &mut entry {
                        e.passed_at.get_or_insert(now);
                        e.last_seen = now;
                    }
                }
            }
            Update::InsertPassed => {
                book.insert_for = Some(&client_key);
                passed = store.note_pass(&key, now, &book).await?;
                entry = Some(Entry { passed_at: Some(now), ..Entry::first(now, &client_key) });
            }
        }
        if verdict == Verdict::AwlClient {
            self.cache.remember_client(&client_key, now);
        }
        if let Some(e) = entry
            && !matches!(verdict, Verdict::AwlClient | Verdict::AwlDomain)
        {
            self.cache.remember(t, e);
        }
        if passed.is_some_and(|p| self.policy.awl_client_passes > 0 && p.client_passes >= self.policy.awl_client_passes)
        {
            self.cache.remember_client(&client_key, now);
        }
        Ok(self.answer(req, verdict, t))
    }

    /// A first attempt from a network at `greylist.max_pending_per_network`: deferred as a
    /// new one is, not stored; one warning per network per hour.
    fn refuse_pending(&self, req: &PolicyRequest, t: &Triplet, now: i64) -> Decision {
        if self.pending.refused(&t.client_net, now) {
            tracing::warn!(
                "client network {} holds {} pending triplets (greylist.max_pending_per_network): \
                 its new first attempts are deferred without being stored",
                t.client_net,
                self.pending.limit()
            );
        }
        self.answer(req, Verdict::PendingLimit, t)
    }

    fn answer(&self, req: &PolicyRequest, verdict: Verdict, t: &Triplet) -> Decision {
        let domain = req.recipient.rsplit_once('@').map_or("", |(_, d)| d);
        let action = match verdict {
            Verdict::New | Verdict::PendingLimit => {
                render_reply(&self.config.greylist.reply, self.policy.delay, domain)
            }
            Verdict::TooEarly { seconds_left } => render_reply(&self.config.greylist.reply, seconds_left, domain),
            Verdict::FirstPass { delayed } | Verdict::PoolPass { delayed }
                if self.config.greylist.header && self.cache.first_header_for(&req.instance) =>
            {
                Header::new("X-Greylist", &crate::header::x_greylist(delayed, &self.hostname, unix_now()))
                    .map(Action::Prepend)
            }
            _ => Ok(Action::Dunno),
        };
        let action = action.unwrap_or_else(|e| {
            // The template was validated at load time; this is a last line of defence.
            tracing::error!("greylist reply template: {e}");
            Action::Dunno
        });
        let mut d = Decision::new(action, verdict.reason()).with("net", &t.client_net);
        match verdict {
            Verdict::TooEarly { seconds_left } => d = d.with("left", format!("{seconds_left}s")),
            Verdict::FirstPass { delayed } | Verdict::Known { delayed } | Verdict::PoolPass { delayed } => {
                d = d.with("delayed", format!("{delayed}s"))
            }
            _ => {}
        }
        d
    }
}

/// What a lookup gives [`greylist::decide`], with the auto-whitelists that are off left out.
fn stored_facts(found: Lookup, policy: &Policy, domains: bool) -> StoredFacts {
    StoredFacts {
        entry: found.entry,
        client_passes: if policy.awl_client_passes > 0 { found.client_passes } else { 0 },
        domain_whitelisted: domains && found.domain_whitelisted,
        pool_partner: None,
    }
}

fn skip_decision(skip: Skip) -> Decision {
    let reason = skip.reason();
    match skip {
        Skip::Whitelisted { entry, .. } => Decision::new(Action::Dunno, reason).with("entry", entry),
        _ => Decision::new(Action::Dunno, reason),
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Seconds since the epoch: the clock every greylist decision is made with.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, secs)
}

/// Opens the store on first use when it was down at start, retrying at most every 5 s.
pub struct LazyStore {
    url: String,
    options: StoreOptions,
    cell: OnceCell<Store>,
    last_try: AtomicU64,
}

impl LazyStore {
    fn new(url: String, options: StoreOptions) -> LazyStore {
        LazyStore { url, options, cell: OnceCell::new(), last_try: AtomicU64::new(0) }
    }

    async fn open(&self) -> Result<&Store, StoreError> {
        self.cell.get_or_try_init(|| Store::open(&self.url, &self.options)).await
    }

    /// The open store, or an error while it cannot be opened.
    pub async fn get(&self) -> Result<&Store, StoreError> {
        if let Some(s) = self.cell.get() {
            return Ok(s);
        }
        // One try per 5 s, counted from the last try: steady traffic must not keep pushing the
        // next try away. Concurrent requests let the one that won the swap try.
        let now = u64::try_from(unix_now()).unwrap_or(0);
        let last = self.last_try.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 5
            || self.last_try.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return Err(StoreError::Unavailable("store not open yet".into()));
        }
        self.open().await
    }
}

/// Tracks store health so an outage gives one warning, not one per request.
///
/// Only an operation that started after the latest failure ends an outage: under load, a
/// query answered just before the database went away can finish after the first failure,
/// and must not log "recovered" (and a second warning right after).
#[derive(Default)]
struct Outage {
    /// Set while down: the request path reads only this when all is well.
    down: AtomicBool,
    /// When the latest failure was seen while down; `None` while the store works.
    down_since: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Outage {
    /// `consequence` completes the warning, e.g. "answering DUNNO until it recovers".
    fn failed(&self, e: &StoreError, consequence: &str) {
        let mut down = self.down_since.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.down.store(true, Ordering::SeqCst);
        if down.replace(std::time::Instant::now()).is_none() {
            tracing::warn!("store unavailable: {e}; {consequence}");
        }
    }

    /// An operation that started at `started` succeeded.
    fn recovered(&self, started: std::time::Instant) {
        if !self.down.load(Ordering::SeqCst) {
            return;
        }
        let mut down = self.down_since.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if down.is_some_and(|failed| started > failed) {
            *down = None;
            self.down.store(false, Ordering::SeqCst);
            tracing::info!("store recovered; greylisting again");
        }
    }
}

/// Aborts a background task when the service that owns it is dropped (after a reload).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Removes expired entries every `purge_interval`, in small batches.
/// How often the daemon looks for changes made by the admin commands.
const ADMIN_POLL: Duration = Duration::from_secs(5);

/// Drops the caches when `postward-greyd delete` or `whitelist`, run on any host sharing the
/// store, changed it (see `store/admin.rs`): the change applies within [`ADMIN_POLL`]. A
/// failed read changes nothing; the request path reports outages.
fn spawn_admin_watch(store: Arc<LazyStore>, cache: Arc<HotCache>) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let mut seen = None;
        let mut tick = tokio::time::interval(ADMIN_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Ok(store) = store.get().await else { continue };
            let Ok(epoch) = store.admin_epoch().await else { continue };
            match seen.replace(epoch) {
                Some(before) if before != epoch => {
                    cache.clear();
                    tracing::info!("greylist changed by an admin command: cache dropped");
                }
                _ => {}
            }
        }
    }))
}

fn spawn_purge(
    store: Arc<LazyStore>,
    outage: Arc<Outage>,
    config: &Config,
    policy: Policy,
    pending: Arc<PendingLimit>,
) -> AbortOnDrop {
    let interval = config.store.purge_interval.get();
    let batch = config.store.purge_batch;
    let max_pending = config.greylist.max_pending;
    AbortOnDrop(tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is at once: expiry waits a whole interval, but the per-network
        // counts are read at start (a restart must not reopen a flooded network).
        let mut first = true;
        loop {
            tick.tick().await;
            let Ok(store) = store.get().await else { continue };
            if !first {
                match store.purge(unix_now(), policy.retry_window, policy.max_age, batch).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!("expired {n} greylist entries"),
                    Err(e) => outage.failed(&e, "expiry postponed"),
                }
            }
            first = false;
            if max_pending > 0 {
                match store.trim_pending(max_pending, batch).await {
                    Ok(0) => {}
                    Ok(n) => {
                        metrics::counter!("postward_greyd_pending_trimmed_total").increment(n);
                        tracing::warn!(
                            "more than {max_pending} pending triplets (greylist.max_pending): forgot the oldest {n}"
                        );
                    }
                    Err(e) => outage.failed(&e, "the pending bound is applied later"),
                }
            }
            if pending.enabled() {
                match store.pending_by_network(pending.resync_floor()).await {
                    Ok(counts) => pending.resync(&counts),
                    Err(e) => outage.failed(&e, "per-network pending counts are read later"),
                }
            }
        }
    }))
}
