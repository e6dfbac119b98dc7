//! The DNS resolver every check uses: hickory-resolver, configured from `[dns]`.
//!
//! By default it reads the system's resolv.conf; `nameservers` replaces that with explicit
//! addresses (with ports, so a local unbound or a test server on 127.0.0.1:5353 works).
//! The hosts file is never consulted: mail checks are about DNS, not about /etc/hosts.
//! Callers should always pass fully qualified names with a trailing dot, so no search list
//! ever applies.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use serde::Deserialize;

use crate::duration::ConfigDuration;

mod resolver;
mod spf;
pub use resolver::{Answer, LookupFailure, Resolver, TtlBounds, txt_texts, wire_name};
pub use spf::SpfLookup;

/// `[dns]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// `"127.0.0.1"`, `"127.0.0.1:5353"`, `"[::1]:53"`; empty means /etc/resolv.conf.
    pub nameservers: Vec<String>,
    /// Time allowed for one query to one server.
    pub timeout: ConfigDuration,
    /// Tries per query and server (1 = no retry). hickory counts retries, so it gets one less.
    pub attempts: usize,
    /// Answers kept in the resolver's caches (postward's answer cache and hickory's own);
    /// 0 turns caching off.
    pub cache_size: u64,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig { nameservers: Vec::new(), timeout: ConfigDuration::secs(2), attempts: 2, cache_size: 4096 }
    }
}

/// Why a resolver could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DnsConfigError {
    #[error("invalid nameserver {0:?} (expected an IP address, optionally with :port)")]
    BadNameserver(String),
    #[error("attempts must be at least 1")]
    Attempts,
    #[error("cannot read the system resolver configuration: {0}")]
    System(String),
    #[error("cannot build the resolver: {0}")]
    Build(String),
}

/// Parses `ip`, `ip:port` or `[ipv6]:port`; the port defaults to 53.
///
/// # Errors
/// Text that is not one of those forms.
pub fn parse_nameserver(text: &str) -> Result<SocketAddr, DnsConfigError> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    text.parse::<SocketAddr>().map_err(|_| DnsConfigError::BadNameserver(text.to_owned()))
}

impl DnsConfig {
    /// Checks the nameserver list without building anything.
    ///
    /// # Errors
    /// The first invalid nameserver.
    pub fn validate(&self) -> Result<(), DnsConfigError> {
        if self.attempts == 0 {
            return Err(DnsConfigError::Attempts);
        }
        self.nameservers.iter().try_for_each(|n| parse_nameserver(n).map(drop))
    }

    /// [`DnsConfig::validate`] for [`crate::config::CommonConfig::validate`]: the error comes
    /// with the dotted key (under `section`) that a configuration error names.
    ///
    /// # Errors
    /// The key and message of the first invalid setting.
    pub fn check(&self, section: &str) -> Result<(), (String, String)> {
        self.validate().map_err(|e| {
            let key = match e {
                DnsConfigError::Attempts => "attempts",
                _ => "nameservers",
            };
            (format!("{section}.{key}"), e.to_string())
        })
    }

    /// Builds the resolver. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// See [`DnsConfigError`].
    pub fn build(&self) -> Result<Resolver, DnsConfigError> {
        let entries = usize::try_from(self.cache_size).unwrap_or(usize::MAX);
        self.build_hickory().map(|r| Resolver::with_cache(r, entries))
    }

    /// Builds a resolver of its own for one check, with its own answer cache of `entries`
    /// answers kept for their TTL clamped to `bounds`. hickory's cache is off: this cache
    /// sits in front of it and decides how long answers live.
    ///
    /// # Errors
    /// See [`DnsConfigError`].
    pub fn build_bounded(&self, entries: usize, bounds: TtlBounds) -> Result<Resolver, DnsConfigError> {
        let uncached = DnsConfig { cache_size: 0, ..self.clone() };
        uncached.build_hickory().map(|r| Resolver::with_bounds(r, entries, bounds))
    }

    /// Builds hickory's resolver alone, without in-flight sharing.
    ///
    /// # Errors
    /// See [`DnsConfigError`].
    pub fn build_hickory(&self) -> Result<TokioResolver, DnsConfigError> {
        let mut builder = if self.nameservers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| DnsConfigError::System(e.to_string()))?
        } else {
            let servers = self
                .nameservers
                .iter()
                .map(|n| {
                    let addr = parse_nameserver(n)?;
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    Ok(NameServerConfig::new(addr.ip(), true, vec![udp, tcp]))
                })
                .collect::<Result<Vec<_>, DnsConfigError>>()?;
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            )
        };
        let opts = builder.options_mut();
        opts.timeout = self.timeout.get();
        opts.attempts = self.attempts.saturating_sub(1);
        opts.cache_size = self.cache_size;
        opts.use_hosts_file = ResolveHosts::Never;
        builder.build().map_err(|e| DnsConfigError::Build(e.to_string()))
    }
}
