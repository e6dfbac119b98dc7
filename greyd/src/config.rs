//! `/etc/postward/greyd.toml`: every key with its default. The man page and
//! `contrib/config/greyd.toml` repeat these defaults.

use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;
use shared::config::{CommonConfig, ServerConfig};
use shared::dns::DnsConfig;
use shared::duration::ConfigDuration;
use shared::logging::LogConfig;
use shared::policy::Action;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub dns: DnsConfig,
    pub greylist: GreylistConfig,
    pub store: StoreConfig,
    pub whitelist: WhitelistConfig,
    pub sender_pools: SenderPoolConfig,
}

/// `[greylist]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GreylistConfig {
    /// A retry passes once this long has gone by since the first attempt.
    pub delay: ConfigDuration,
    /// A first attempt not retried within this window is forgotten.
    pub retry_window: ConfigDuration,
    /// A passed triplet is forgotten this long after it was last seen.
    pub max_age: ConfigDuration,
    /// Client network prefix lengths: /24 and /64 by default; 32 and 128 key on the address.
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// The answer to a greylisted attempt, with `{seconds}` (seconds left) and `{domain}`
    /// (recipient domain) replaced. DEFER_IF_PERMIT lets a later REJECT win.
    pub reply: String,
    /// Prepend `X-Greylist: delayed N seconds by postward-greyd …` once per message on the
    /// first pass.
    pub header: bool,
    /// Passes (at most one counted per hour) after which a client address is whitelisted;
    /// 0 turns the client auto-whitelist off.
    pub auto_whitelist_clients: i64,
    /// Whitelist a sender domain for a client network once two different senders of that
    /// domain passed from it (sqlgrey's domain auto-whitelist).
    pub auto_whitelist_domains: bool,
    /// Client networks never greylisted. Empty by default: loopback is not special.
    pub trusted_networks: Vec<IpNet>,
    /// Greylist only clients that look suspicious (see postward-greyd(8)).
    pub selective: bool,
    /// Store sender and recipient only as keyed hashes; the key comes from this file
    /// (any content; keep it identical on every MX sharing a database).
    pub privacy_key_file: Option<PathBuf>,
    /// The answer when the store fails: DUNNO lets mail through (fail-open); a
    /// DEFER_IF_PERMIT answer makes senders retry later.
    pub on_store_error: String,
    /// Pending (never retried) triplets one client network may have stored; its further
    /// first attempts are deferred without being stored (see `pending.rs`). 0: no bound.
    pub max_pending_per_network: u32,
    /// Pending triplets the whole store may hold; expiry forgets the oldest pending ones
    /// beyond it. Passed triplets and auto-whitelists are never touched. 0: no bound.
    pub max_pending: u64,
}

impl Default for GreylistConfig {
    fn default() -> Self {
        GreylistConfig {
            delay: ConfigDuration::secs(300),
            retry_window: ConfigDuration::secs(2 * 86_400),
            max_age: ConfigDuration::secs(35 * 86_400),
            ipv4_prefix: 24,
            ipv6_prefix: 64,
            reply: "DEFER_IF_PERMIT 4.7.1 Greylisted: please retry in {seconds} seconds".into(),
            header: false,
            auto_whitelist_clients: 5,
            auto_whitelist_domains: true,
            trusted_networks: Vec::new(),
            selective: false,
            privacy_key_file: None,
            on_store_error: "DUNNO".into(),
            max_pending_per_network: 5_000,
            max_pending: 1_000_000,
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite:///path/greyd.sqlite`, `postgres://…`, `mysql://…`. Empty: a SQLite file
    /// `greyd.sqlite` in `$STATE_DIRECTORY` (set by systemd's StateDirectory=) or in
    /// `/var/lib/postward`.
    pub url: String,
    pub max_connections: u32,
    /// Limit for each store operation; past it the request gets the `on_store_error` answer.
    pub timeout: ConfigDuration,
    /// Triplets this host has seen kept in memory (about 0.3 KiB each), and a quarter as many
    /// auto-whitelisted clients.
    pub cache_size: usize,
    /// How often expired entries are removed, and how many rows one statement deletes.
    pub purge_interval: ConfigDuration,
    pub purge_batch: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: String::new(),
            max_connections: 8,
            timeout: ConfigDuration::secs(2),
            cache_size: 50_000,
            purge_interval: ConfigDuration::secs(600),
            purge_batch: 1000,
        }
    }
}

impl StoreConfig {
    /// The URL to open, with the SQLite default filled in.
    pub fn effective_url(&self) -> String {
        if !self.url.is_empty() {
            return self.url.clone();
        }
        let dir = std::env::var_os("STATE_DIRECTORY")
            .and_then(|d| std::env::split_paths(&d).next())
            .unwrap_or_else(|| PathBuf::from("/var/lib/postward"));
        format!("sqlite://{}", dir.join("greyd.sqlite").display())
    }
}

/// `[whitelist]`. Files in postgrey's format are accepted as they are.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WhitelistConfig {
    /// Client files: addresses, prefixes, CIDRs, hostnames, `.suffix`, `/regex/`.
    pub clients: Vec<PathBuf>,
    /// Recipient files: `domain`, `name@`, `name@domain`, `/regex/`.
    pub recipients: Vec<PathBuf>,
    /// Sender files (opt-in: senders are trivially forged).
    pub senders: Vec<PathBuf>,
    /// Use the built-in list of big senders that retry from address pools.
    pub builtin_clients: bool,
    /// Never greylist `postmaster@` and `abuse@` (RFC 2142 role addresses) of any domain.
    pub builtin_recipients: bool,
}

impl WhitelistConfig {
    pub fn builtins(&self) -> crate::whitelist::Builtins {
        crate::whitelist::Builtins { clients: self.builtin_clients, recipients: self.builtin_recipients }
    }
}

impl Default for WhitelistConfig {
    fn default() -> Self {
        WhitelistConfig {
            clients: Vec::new(),
            recipients: Vec::new(),
            senders: Vec::new(),
            builtin_clients: true,
            builtin_recipients: true,
        }
    }
}

/// `[sender_pools]`: let a retry from another address of the same sender pass.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SenderPoolConfig {
    /// Pass when the sender domain's SPF record authorizes both client addresses.
    pub spf: bool,
    /// Time limit for one SPF evaluation.
    pub spf_timeout: ConfigDuration,
    /// SPF results kept, and for how long.
    pub spf_cache_size: usize,
    pub spf_cache_ttl: ConfigDuration,
    /// Earlier attempts considered per request.
    pub max_candidates: u32,
    /// A record authorizing more than a network of this prefix length is no pool (nor is
    /// one that passes a probe address no pool covers): the rule is refused for its domain.
    pub widest_ipv4: u8,
    pub widest_ipv6: u8,
}

impl Default for SenderPoolConfig {
    fn default() -> Self {
        SenderPoolConfig {
            spf: true,
            spf_timeout: ConfigDuration::secs(5),
            spf_cache_size: 10_000,
            spf_cache_ttl: ConfigDuration::secs(3600),
            max_candidates: 4,
            widest_ipv4: 8,
            widest_ipv6: 24,
        }
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
        self.dns.check("dns")?;
        let g = &self.greylist;
        let bad = |k: &str, m: String| Err((format!("greylist.{k}"), m));
        if g.ipv4_prefix > 32 {
            return bad("ipv4_prefix", format!("{} is more than 32", g.ipv4_prefix));
        }
        if g.ipv6_prefix > 128 {
            return bad("ipv6_prefix", format!("{} is more than 128", g.ipv6_prefix));
        }
        if g.delay.get() >= g.retry_window.get() {
            return bad("delay", format!("delay {} must be shorter than retry_window {}", g.delay, g.retry_window));
        }
        match reply_template(&g.reply) {
            Ok(Action::Defer(_) | Action::DeferIfPermit(_)) => {}
            Ok(Action::Literal(code, _)) if code.class() == 4 => {}
            Ok(_) => return bad("reply", "must be DEFER_IF_PERMIT, DEFER or a 4NN reply".into()),
            Err(e) => return bad("reply", e),
        }
        store_error_action(&g.on_store_error).map_err(|e| ("greylist.on_store_error".to_owned(), e))?;
        if self.store.max_connections == 0 {
            return Err(("store.max_connections".into(), "must be at least 1".into()));
        }
        if self.store.purge_batch == 0 {
            return Err(("store.purge_batch".into(), "must be at least 1".into()));
        }
        if self.sender_pools.widest_ipv4 > 32 {
            return Err((
                "sender_pools.widest_ipv4".into(),
                format!("{} is more than 32", self.sender_pools.widest_ipv4),
            ));
        }
        if self.sender_pools.widest_ipv6 > 128 {
            return Err((
                "sender_pools.widest_ipv6".into(),
                format!("{} is more than 128", self.sender_pools.widest_ipv6),
            ));
        }
        Ok(())
    }
}

/// Parses the reply template with its placeholders filled by sample values.
///
/// # Errors
/// Text that is not a valid action.
pub fn reply_template(text: &str) -> Result<Action, String> {
    render_reply(text, 300, "example.org").map_err(|e| format!("invalid reply {text:?}: {e}"))
}

/// The reply for a greylisted attempt.
///
/// # Errors
/// The template does not form an action (caught by validation at load time).
pub fn render_reply(template: &str, seconds: i64, domain: &str) -> Result<Action, shared::policy::ActionError> {
    template.replace("{seconds}", &seconds.to_string()).replace("{domain}", domain).parse()
}

/// The answer on store trouble.
///
/// # Errors
/// Text that is not DUNNO or a temporary-failure answer.
pub fn store_error_action(text: &str) -> Result<Action, String> {
    match text.parse::<Action>() {
        Ok(a @ (Action::Dunno | Action::Defer(_) | Action::DeferIfPermit(_))) => Ok(a),
        Ok(a @ Action::Literal(code, _)) if code.class() == 4 => Ok(a),
        Ok(_) => Err("must be DUNNO (fail open), DEFER_IF_PERMIT, DEFER or a 4NN reply".into()),
        Err(e) => Err(format!("invalid action {text:?}: {e}")),
    }
}
