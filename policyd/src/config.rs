//! `/etc/postward/policyd.toml`: every key with its default. The man page and
//! `contrib/config/policyd.toml` repeat these defaults.

use ipnet::IpNet;
use serde::Deserialize;
use shared::config::{CommonConfig, ServerConfig};
use shared::dns::DnsConfig;
use shared::duration::ConfigDuration;
use shared::logging::LogConfig;

use crate::spf::{HeaderKind, ResultAction};

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub dns: DnsConfig,
    pub exempt: ExemptConfig,
    pub spf: SpfConfig,
}

/// `[exempt]`: clients no check applies to. Each exemption is logged with its reason.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExemptConfig {
    /// SMTP AUTH clients (Postfix sends `sasl_username`): they are your own users.
    pub authenticated: bool,
    /// Client networks (IPv4 and IPv6 CIDR). Empty by default: loopback is not special,
    /// list it if your content filter re-injects over SMTP through this policy.
    pub networks: Vec<IpNet>,
}

impl Default for ExemptConfig {
    fn default() -> Self {
        ExemptConfig { authenticated: true, networks: Vec::new() }
    }
}

/// `[spf]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpfConfig {
    pub enabled: bool,
    /// Time for the whole SPF check of one message (HELO and MAIL FROM together). Past it
    /// the identity being evaluated is TempError. Keep it well below Postfix's
    /// `smtpd_policy_service_timeout` (100 s).
    pub time_limit: ConfigDuration,
    /// RFC 7208 §4.6.4: DNS-querying terms per evaluation (10) and void lookups (2).
    pub max_lookups: usize,
    pub max_void_lookups: usize,
    /// Only add headers, never reject or defer (a trial run on a live server).
    pub dry_run: bool,
    /// Which header to prepend: `received-spf`, `authentication-results`, `both` or `none`.
    pub header: HeaderKind,
    /// The authserv-id of Authentication-Results and the `receiver=` of Received-SPF;
    /// empty means this host's name.
    pub authserv_id: String,
    /// Sender domains for which Softfail and Neutral count as Fail (they are known to send
    /// only from their listed hosts, so anything else is forged).
    pub strict_domains: Vec<String>,
    /// `{url}` in reply texts: an explanation page, with the same placeholders.
    pub why_url: String,
    /// Results cached per (client address, identity, HELO).
    pub cache_size: usize,
    /// How long a cached result is reused. TempError is never cached.
    pub cache_ttl: ConfigDuration,
    /// Actions for the HELO identity.
    pub helo: ActionMap,
    /// Actions for the MAIL FROM identity.
    pub mail_from: ActionMap,
    /// Reply texts. Placeholders: `{result}`, `{identity}` (helo or mailfrom), `{domain}`,
    /// `{sender}`, `{ip}`, `{helo}`, `{explanation}` (the domain's own `exp=` text, or the
    /// error cause), `{url}` (`why_url` expanded).
    pub reject_text: String,
    pub permerror_text: String,
    pub defer_text: String,
    pub exempt: SpfExemptConfig,
}

impl Default for SpfConfig {
    fn default() -> Self {
        SpfConfig {
            enabled: true,
            time_limit: ConfigDuration::secs(10),
            max_lookups: 10,
            max_void_lookups: 2,
            dry_run: false,
            header: HeaderKind::ReceivedSpf,
            authserv_id: String::new(),
            strict_domains: Vec::new(),
            why_url: String::new(),
            cache_size: 10_000,
            cache_ttl: ConfigDuration::secs(600),
            helo: ActionMap::default(),
            mail_from: ActionMap::default(),
            reject_text: "SPF {result}: {domain} does not allow {ip} to send mail ({identity}). {explanation} {url}"
                .into(),
            permerror_text: "SPF permerror: the SPF record of {domain} is invalid ({explanation}). {url}".into(),
            defer_text: "SPF temperror: cannot check {domain} now ({explanation}), try again later".into(),
            exempt: SpfExemptConfig::default(),
        }
    }
}

/// What to answer for each SPF result of one identity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActionMap {
    pub pass: ResultAction,
    pub fail: ResultAction,
    pub softfail: ResultAction,
    pub neutral: ResultAction,
    pub none: ResultAction,
    pub permerror: ResultAction,
    pub temperror: ResultAction,
}

impl Default for ActionMap {
    /// RFC 7208 §8 and RFC 7372: reject Fail (5.7.23), defer TempError (4.7.24), and only
    /// record the rest in a header. PermError is a broken record, not forgery, so it is not
    /// rejected unless asked for (pypolicyd-spf's default too).
    fn default() -> Self {
        ActionMap {
            pass: ResultAction::Header,
            fail: ResultAction::Reject,
            softfail: ResultAction::Header,
            neutral: ResultAction::Header,
            none: ResultAction::Header,
            permerror: ResultAction::Header,
            temperror: ResultAction::Defer,
        }
    }
}

/// `[spf.exempt]`: legitimate relays that SPF would fail.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpfExemptConfig {
    /// HELO names (`host.example` or `.example` for any name below) exempt when the name's
    /// A/AAAA records include the client address (a forged HELO does not resolve to it).
    pub helo_names: Vec<String>,
    /// Trusted forwarders by their own SPF record: the client is exempt when one of these
    /// domains' SPF gives Pass for it. Not spoofable, unlike a sender-domain list.
    pub forwarder_domains: Vec<String>,
    /// Trusted forwarders by forward-confirmed reverse name (`host.example` or `.example`).
    /// Postfix's `client_name` is already validated; without it postward validates itself.
    pub forwarder_names: Vec<String>,
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
        let spf = &self.spf;
        let fail = |key: &str, msg: String| Err((format!("spf.{key}"), msg));
        if spf.time_limit.get().is_zero() {
            return fail("time_limit", "must be more than 0s".into());
        }
        if spf.time_limit.get().as_secs() >= 100 {
            return fail("time_limit", "must stay below Postfix's smtpd_policy_service_timeout (100s)".into());
        }
        if spf.max_lookups == 0 {
            return fail("max_lookups", "must be at least 1 (RFC 7208 says 10)".into());
        }
        for (key, text) in [
            ("reject_text", &spf.reject_text),
            ("permerror_text", &spf.permerror_text),
            ("defer_text", &spf.defer_text),
            ("why_url", &spf.why_url),
        ] {
            if let Err(e) = crate::spf::reply::check_template(text) {
                return fail(key, e);
            }
        }
        for (key, names) in [
            ("strict_domains", &spf.strict_domains),
            ("exempt.helo_names", &spf.exempt.helo_names),
            ("exempt.forwarder_domains", &spf.exempt.forwarder_domains),
            ("exempt.forwarder_names", &spf.exempt.forwarder_names),
        ] {
            for name in names {
                let bare = name.strip_prefix('.').unwrap_or(name);
                if bare.is_empty() || !bare.contains('.') || bare.contains(|c: char| c.is_whitespace() || c == '@') {
                    return fail(key, format!("{name:?} is not a domain name"));
                }
            }
        }
        if spf.exempt.forwarder_domains.iter().any(|d| d.starts_with('.')) {
            return fail(
                "exempt.forwarder_domains",
                "entries are domains with an SPF record, without a leading dot".into(),
            );
        }
        Ok(())
    }
}
