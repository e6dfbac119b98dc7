//! `/etc/postward/policyd.toml`: every key with its default. The man page and
//! `contrib/config/policyd.toml` repeat these defaults.

use ipnet::IpNet;
use serde::Deserialize;
use shared::config::{CommonConfig, ServerConfig};
use shared::dns::DnsConfig;
use shared::duration::ConfigDuration;
use shared::logging::LogConfig;

use crate::dnsbl::{Site, Target};
use crate::spf::{HeaderKind, ResultAction};

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub dns: DnsConfig,
    pub exempt: ExemptConfig,
    pub dnsbl: DnsblConfig,
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

/// `[dnsbl]`: DNS list scoring, postscreen-style. Nothing is queried until a list is
/// configured.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsblConfig {
    /// Client-address lists in postscreen's `zone=filter*weight` syntax, as in
    /// `postscreen_dnsbl_sites` (one entry per string).
    pub sites: Vec<String>,
    /// Lists with options (`[[dnsbl.list]]`): RHSBL targets, DQS keys, probing.
    pub list: Vec<ListConfig>,
    /// Score at or above which the message is rejected (554 5.7.1); 0 turns it off.
    pub reject_threshold: i32,
    /// Score at or above which it is deferred (`DEFER_IF_PERMIT` 450 4.7.1); 0 turns it off.
    pub defer_threshold: i32,
    /// Score at or above which the score header is prepended; 0 turns it off.
    pub header_threshold: i32,
    /// Score at or below which the client is allowlisted (negative); 0 turns it off.
    pub allow_threshold: i32,
    /// An allowlisted client also skips SPF.
    pub allow_skips_spf: bool,
    /// Send loopback, private and link-local client addresses to the lists too. Off by
    /// default: no public list knows them, and asking tells the list about your network.
    /// Turn it on where Postfix sees clients through a NAT, proxy or load balancer that
    /// hands on their public addresses, and for tests on loopback. While off, each such
    /// message is logged with `dnsbl_skipped=private-client`.
    pub query_private_clients: bool,
    /// Only log and add the header, never reject or defer.
    pub dry_run: bool,
    /// Time for all list queries of one message together (they run concurrently). A list
    /// that has not answered by then counts as not listed.
    pub timeout: ConfigDuration,
    /// Answers are cached for their TTL clamped to `min_ttl..max_ttl` (postscreen: 60 s, 1 h).
    pub min_ttl: ConfigDuration,
    pub max_ttl: ConfigDuration,
    /// Answers kept; 0 turns the cache off (concurrent queries are still shared).
    pub cache_size: usize,
    /// How often each list's RFC 5782 test points are checked (also once at start).
    pub probe_interval: ConfigDuration,
    /// Reply texts. Placeholders: `{list}` (the zone, never a DQS key), `{class}` (Client
    /// host, Helo command, ...), `{what}` (the address or name listed), `{reason}` ("; " and
    /// the list's TXT text, or nothing), `{score}`, `{ip}`.
    pub reject_text: String,
    pub defer_text: String,
    /// The score header's name.
    pub header_name: String,
}

impl Default for DnsblConfig {
    fn default() -> Self {
        DnsblConfig {
            sites: Vec::new(),
            list: Vec::new(),
            reject_threshold: 1,
            defer_threshold: 0,
            header_threshold: 1,
            allow_threshold: -1,
            allow_skips_spf: true,
            query_private_clients: false,
            dry_run: false,
            timeout: ConfigDuration::secs(5),
            min_ttl: ConfigDuration::secs(60),
            max_ttl: ConfigDuration::secs(3600),
            cache_size: 20_000,
            probe_interval: ConfigDuration::secs(900),
            reject_text: "Service unavailable; {class} [{what}] blocked using {list}{reason}".into(),
            defer_text: "Service temporarily unavailable; {class} [{what}] listed by {list}{reason}".into(),
            header_name: "X-Postward-DNSBL".into(),
        }
    }
}

/// `[[dnsbl.list]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListConfig {
    /// `zone=filter*weight`, as in `sites`.
    pub site: String,
    /// What to look up: `client`, `sender`, `helo`, `client_name`, `reverse_client_name`.
    pub query: Vec<Target>,
    /// A Spamhaus Data Query Service key: queries go to `KEY.zone`; replies and logs show
    /// only the zone.
    pub dqs_key: String,
    /// Check the list's RFC 5782 test points and skip it while they fail.
    pub probe: bool,
}

impl Default for ListConfig {
    fn default() -> Self {
        ListConfig { site: String::new(), query: vec![Target::Client], dqs_key: String::new(), probe: true }
    }
}

/// One list entry as the check uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSpec {
    pub site: Site,
    pub query: Vec<Target>,
    pub dqs_key: Option<String>,
    pub probe: bool,
}

impl DnsblConfig {
    /// Every list entry, `sites` first.
    ///
    /// # Errors
    /// The key and message of the first invalid entry.
    pub fn lists(&self) -> Result<Vec<ListSpec>, (String, String)> {
        let mut out = Vec::new();
        for (i, text) in self.sites.iter().enumerate() {
            let site = text.parse::<Site>().map_err(|e| (format!("dnsbl.sites[{i}]"), e))?;
            out.push(ListSpec { site, query: vec![Target::Client], dqs_key: None, probe: true });
        }
        for (i, list) in self.list.iter().enumerate() {
            let key = |k: &str| format!("dnsbl.list[{i}].{k}");
            let site = list.site.parse::<Site>().map_err(|e| (key("site"), e))?;
            if list.query.is_empty() {
                return Err((key("query"), "must name at least one target".into()));
            }
            if !list.dqs_key.bytes().all(|b| b.is_ascii_alphanumeric()) || list.dqs_key.len() > 63 {
                return Err((key("dqs_key"), "must be letters and digits only (it becomes a DNS label)".into()));
            }
            let dqs_key = (!list.dqs_key.is_empty()).then(|| list.dqs_key.to_ascii_lowercase());
            out.push(ListSpec { site, query: list.query.clone(), dqs_key, probe: list.probe });
        }
        Ok(out)
    }

    fn validate(&self, spf_limit: std::time::Duration) -> Result<(), (String, String)> {
        self.lists()?;
        let fail = |key: &str, msg: &str| Err((format!("dnsbl.{key}"), msg.to_owned()));
        for (key, value) in [
            ("reject_threshold", self.reject_threshold),
            ("defer_threshold", self.defer_threshold),
            ("header_threshold", self.header_threshold),
        ] {
            if value < 0 {
                return fail(key, "must be positive (or 0 to turn it off)");
            }
        }
        if self.allow_threshold > 0 {
            return fail("allow_threshold", "must be negative (or 0 to turn it off)");
        }
        let timeout = self.timeout.get();
        if timeout.is_zero() {
            return fail("timeout", "must be more than 0s");
        }
        // A spf.time_limit that is too long alone is spf.time_limit's error, said there.
        if spf_limit.as_secs() < 100 && (timeout + spf_limit).as_secs() >= 100 {
            return fail(
                "timeout",
                &format!(
                    "{}s plus spf.time_limit ({}s) must stay below Postfix's smtpd_policy_service_timeout (100s)",
                    timeout.as_secs(),
                    spf_limit.as_secs()
                ),
            );
        }
        if self.min_ttl.get() > self.max_ttl.get() {
            return fail("min_ttl", "must not be more than max_ttl");
        }
        if self.probe_interval.get().as_secs() < 10 {
            return fail("probe_interval", "must be at least 10s");
        }
        for (key, text) in [("reject_text", &self.reject_text), ("defer_text", &self.defer_text)] {
            if let Err(e) = crate::dnsbl::check_template(text) {
                return Err((format!("dnsbl.{key}"), e));
            }
        }
        if let Err(e) = shared::policy::Header::new(&self.header_name, "x") {
            return Err(("dnsbl.header_name".into(), e.to_string()));
        }
        Ok(())
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
    /// Results cached: per (client address, identity, domain) when the domain's records use
    /// no macro, else per (client address, identity, sender, HELO).
    pub cache_size: usize,
    /// How long a cached result is reused. TempError is never cached.
    pub cache_ttl: ConfigDuration,
    /// Actions for the HELO identity. Only a fail whose action refuses ends the check at
    /// HELO; any other HELO result leaves the decision to MAIL FROM (RFC 7208 §2.3).
    pub helo: ActionMap,
    /// A HELO pass ends the check too: MAIL FROM is not evaluated and the HELO result is
    /// the one recorded. Off by default, as in pypolicyd-spf.
    pub helo_pass_decides: bool,
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
            cache_size: 50_000,
            cache_ttl: ConfigDuration::secs(600),
            helo: ActionMap::default(),
            helo_pass_decides: false,
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
        let spf_limit = if self.spf.enabled { self.spf.time_limit.get() } else { std::time::Duration::ZERO };
        self.dnsbl.validate(spf_limit)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use shared::config::CommonConfig;
    use shared::duration::ConfigDuration;

    /// A time limit that is too long is blamed on the key that holds it.
    #[test]
    fn the_time_limits_are_blamed_on_their_own_keys() {
        let mut c = Config::default();
        c.spf.time_limit = ConfigDuration::secs(120);
        assert_eq!(c.validate().unwrap_err().0, "spf.time_limit");
        c.spf.time_limit = ConfigDuration::secs(60);
        c.dnsbl.timeout = ConfigDuration::secs(50);
        let (key, message) = c.validate().unwrap_err();
        assert_eq!(key, "dnsbl.timeout");
        assert!(message.contains("50s plus spf.time_limit (60s)"), "{message}");
    }
}
