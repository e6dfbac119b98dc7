//! The greylisting key: (client network, sender, recipient), normalized so that the retries
//! of one message map to one key even when the sender's software varies the details.
//!
//! - Client: the IPv4 /24 and IPv6 /64 by default (big senders retry from neighbouring
//!   addresses), configurable down to the exact address.
//! - Sender: lower-cased; BATV tags (`prvs=TAG=user@`, `prvs=user/TAG@`, `msprvs1=TAG=user@`),
//!   SRS0/SRS1 hash and timestamp fields, `+extension` and digit runs (VERP and bounce
//!   counters) folded away; the null sender `<>` is its own value.
//! - Recipient: lower-cased, `+extension` removed.
//!
//! In privacy mode the sender, the recipient and the sender domain (of the domain
//! auto-whitelist) are stored only as keyed hashes (HMAC-SHA-256, a key of at least 16
//! bytes), so a database dump reveals no addresses; the client network stays readable because
//! whitelisting and reports need it. A value longer than the database key column (255 bytes)
//! is stored as its plain SHA-256 hash.

use std::net::IpAddr;

use hmac::{Hmac, KeyInit, Mac};
use ipnet::IpNet;
use sha2::{Digest, Sha256};

/// How long a stored key part may be (the SQL key columns).
pub const MAX_KEY_LEN: usize = 255;

/// The stored form of the null sender.
pub const NULL_SENDER: &str = "<>";

/// A normalized key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Triplet {
    pub client_net: String,
    pub sender: String,
    pub recipient: String,
}

/// Builds triplets according to the configuration.
#[derive(Clone)]
pub struct Normalizer {
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    privacy_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for Normalizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the privacy key.
        f.debug_struct("Normalizer")
            .field("ipv4_prefix", &self.ipv4_prefix)
            .field("ipv6_prefix", &self.ipv6_prefix)
            .field("privacy", &self.privacy_key.is_some())
            .finish()
    }
}

impl Normalizer {
    /// `ipv4_prefix` ≤ 32 and `ipv6_prefix` ≤ 128 (checked by the configuration).
    pub fn new(ipv4_prefix: u8, ipv6_prefix: u8, privacy_key: Option<Vec<u8>>) -> Normalizer {
        Normalizer { ipv4_prefix: ipv4_prefix.min(32), ipv6_prefix: ipv6_prefix.min(128), privacy_key }
    }

    /// The daemon's normalization as configured, privacy key read from its file: the daemon
    /// and the admin commands build it here, so the keys they compute match.
    ///
    /// # Errors
    /// As [`read_privacy_key`].
    pub fn from_config(g: &crate::config::GreylistConfig) -> Result<Normalizer, String> {
        // A small file read once per start or reload: not worth a blocking-pool hop.
        let key = g.privacy_key_file.as_deref().map(read_privacy_key).transpose()?;
        Ok(Normalizer::new(g.ipv4_prefix, g.ipv6_prefix, key))
    }

    pub fn triplet(&self, client: IpAddr, sender: &str, recipient: &str) -> Triplet {
        Triplet {
            client_net: self.client_net(client),
            sender: self.protect(normalize_sender(sender)),
            recipient: self.protect(normalize_recipient(recipient)),
        }
    }

    /// The client part of the key: `192.0.2.0/24`, `2001:db8::/64`, or the bare address when
    /// the prefix is the full length.
    pub fn client_net(&self, client: IpAddr) -> String {
        let client = client.to_canonical();
        let prefix = match client {
            IpAddr::V4(_) => self.ipv4_prefix,
            IpAddr::V6(_) => self.ipv6_prefix,
        };
        let full = if client.is_ipv4() { 32 } else { 128 };
        if prefix >= full {
            return client.to_string();
        }
        match IpNet::new(client, prefix) {
            Ok(net) => net.trunc().to_string(),
            Err(_) => client.to_string(),
        }
    }

    /// The sender's domain as stored (the domain auto-whitelist): hashed in privacy mode,
    /// empty for the null sender.
    pub fn domain_of(&self, sender: &str) -> String {
        let domain = sender_domain(sender);
        if domain.is_empty() { domain } else { self.protect(domain) }
    }

    /// Hashes a normalized value in privacy mode; bounds its length otherwise.
    pub fn protect(&self, value: String) -> String {
        match &self.privacy_key {
            Some(key) => {
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
                mac.update(value.as_bytes());
                format!("k:{}", hex(&mac.finalize().into_bytes()))
            }
            None if value.len() > MAX_KEY_LEN => format!("h:{}", hex(&Sha256::digest(value.as_bytes()))),
            None => value,
        }
    }
}

/// Shortest privacy key accepted: 128 bits.
const MIN_PRIVACY_KEY: usize = 16;

/// Reads `greylist.privacy_key_file`. An empty or short key makes the hashes guessable by
/// anyone who tries the addresses they suspect: it is refused rather than used for weak
/// pseudonyms.
///
/// # Errors
/// An unreadable file, or a key under 16 bytes; the message names the file and the fix.
pub fn read_privacy_key(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let key = std::fs::read(path).map_err(|e| format!("cannot read privacy_key_file {}: {e}", path.display()))?;
    if key.len() < MIN_PRIVACY_KEY {
        return Err(format!(
            "privacy_key_file {}: {} bytes, fewer than {MIN_PRIVACY_KEY} (make one with: head -c 32 /dev/urandom > {})",
            path.display(),
            key.len(),
            path.display()
        ));
    }
    Ok(key)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sender's domain, lower-cased (empty for the null sender).
pub fn sender_domain(sender: &str) -> String {
    sender.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default()
}

/// Folds a sender address as described in the module documentation.
pub fn normalize_sender(sender: &str) -> String {
    if sender.is_empty() || sender == NULL_SENDER {
        return NULL_SENDER.to_owned();
    }
    let lower = sender.to_lowercase();
    let (local, domain) = match lower.rsplit_once('@') {
        Some((l, d)) => (l.to_owned(), Some(d.to_owned())),
        None => (lower, None),
    };
    let local = strip_batv(&local);
    let local = fold_srs(&local);
    let local = strip_extension(&local).to_owned();
    // Digits are folded after the SRS tag, so the tag itself stays readable.
    let local = match local.get(..5) {
        Some(tag @ ("srs0=" | "srs1=")) => format!("{tag}{}", fold_digits(local[5..].to_owned())),
        _ => fold_digits(local),
    };
    match domain {
        Some(d) => format!("{local}@{d}"),
        None => local,
    }
}

/// Lower-cases a recipient and removes its `+extension`.
pub fn normalize_recipient(recipient: &str) -> String {
    let lower = recipient.to_lowercase();
    match lower.rsplit_once('@') {
        Some((l, d)) => format!("{}@{d}", strip_extension(l)),
        None => strip_extension(&lower).to_owned(),
    }
}

/// BATV (draft-levine-smtp-batv): `prvs=TAG=local`, the older `prvs=local/TAG`, and
/// Microsoft's `msprvs1=TAG=local`.
fn strip_batv(local: &str) -> String {
    for prefix in ["prvs=", "msprvs1=", "btv1=="] {
        if let Some(rest) = local.strip_prefix(prefix) {
            if let Some((_, user)) = rest.split_once('=') {
                return user.trim_start_matches('=').to_owned();
            }
            if let Some((user, _)) = rest.split_once('/') {
                return user.to_owned();
            }
        }
    }
    local.to_owned()
}

/// SRS (Sender Rewriting Scheme): `SRS0=HHH=TT=domain=local` keeps `srs0=domain=local`;
/// `SRS1=HHH=forwarder==HHH=TT=domain=local` keeps `srs1=forwarder==domain=local`. The hash
/// and timestamp change with every forwarded message and would defeat the key.
fn fold_srs(local: &str) -> String {
    let parts: Vec<&str> = local.split('=').collect();
    match parts.as_slice() {
        ["srs0", _hash, _time, domain, rest @ ..] if !rest.is_empty() => format!("srs0={domain}={}", rest.join("=")),
        ["srs1", _hash, forwarder, "", _hash2, _time, domain, rest @ ..] if !rest.is_empty() => {
            format!("srs1={forwarder}=={domain}={}", rest.join("="))
        }
        _ => local.to_owned(),
    }
}

fn strip_extension(local: &str) -> &str {
    match local.split_once('+') {
        Some((base, _)) if !base.is_empty() => base,
        _ => local,
    }
}

/// Replaces every run of digits with `#`, so `bounce-1234-5678@` and `bounce-99-1@` fold
/// together (VERP and bounce counters, as postgrey does).
fn fold_digits(local: String) -> String {
    if !local.bytes().any(|b| b.is_ascii_digit()) {
        return local;
    }
    let mut out = String::with_capacity(local.len());
    let mut in_run = false;
    for c in local.chars() {
        if c.is_ascii_digit() {
            if !in_run {
                out.push('#');
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_folding() {
        let cases = [
            ("plain", "Alice@Example.ORG", "alice@example.org"),
            ("null sender", "", "<>"),
            ("null sender literal", "<>", "<>"),
            ("plus extension", "alice+news@example.org", "alice@example.org"),
            ("leading plus kept", "+x@example.org", "+x@example.org"),
            ("BATV prvs", "prvs=1234abcdef=alice@example.org", "alice@example.org"),
            ("BATV old form", "prvs=alice/1234abcdef@example.org", "alice@example.org"),
            ("BATV Microsoft", "msprvs1=17aAbCdEf=bounces-123@example.org", "bounces-#@example.org"),
            ("SRS0", "SRS0=HHH1=TT=orig.example=alice@fwd.example", "srs0=orig.example=alice@fwd.example"),
            (
                "SRS0 other hash folds the same",
                "SRS0=zzz9=QQ=orig.example=alice@fwd.example",
                "srs0=orig.example=alice@fwd.example",
            ),
            (
                "SRS1",
                "SRS1=HHH=first.example==HHH=TT=orig.example=alice@second.example",
                "srs1=first.example==orig.example=alice@second.example",
            ),
            ("VERP digits", "bounce-12345-678@lists.example.org", "bounce-#-#@lists.example.org"),
            ("VERP other numbers fold the same", "bounce-9-1@lists.example.org", "bounce-#-#@lists.example.org"),
            ("no domain", "MAILER-DAEMON", "mailer-daemon"),
            ("unicode lower-cased", "J\u{dc}RGEN@B\u{dc}CHER.example", "j\u{fc}rgen@b\u{fc}cher.example"),
        ];
        for (label, input, want) in cases {
            assert_eq!(normalize_sender(input), want, "{label}");
        }
    }

    #[test]
    fn srs_hash_and_time_do_not_matter() {
        let a = normalize_sender("SRS0=abcd=T1=orig.example=alice@fwd.example");
        let b = normalize_sender("SRS0=wxyz=X9=orig.example=alice@fwd.example");
        assert_eq!(a, b);
        assert_ne!(a, normalize_sender("SRS0=abcd=T1=orig.example=bob@fwd.example"));
    }

    #[test]
    fn recipient_folding() {
        assert_eq!(normalize_recipient("Bob+Tag@Example.NET"), "bob@example.net");
        assert_eq!(normalize_recipient("bob@example.net"), "bob@example.net");
        assert_eq!(normalize_recipient("postmaster"), "postmaster");
    }

    #[test]
    fn client_networks() {
        let n = Normalizer::new(24, 64, None);
        assert_eq!(n.client_net("192.0.2.77".parse().unwrap()), "192.0.2.0/24");
        assert_eq!(n.client_net("2001:db8:1:2:3:4:5:6".parse().unwrap()), "2001:db8:1:2::/64");
        assert_eq!(n.client_net("::ffff:192.0.2.77".parse().unwrap()), "192.0.2.0/24", "v4-mapped is v4");
        let exact = Normalizer::new(32, 128, None);
        assert_eq!(exact.client_net("192.0.2.77".parse().unwrap()), "192.0.2.77");
        assert_eq!(exact.client_net("2001:db8::1".parse().unwrap()), "2001:db8::1");
        let wide = Normalizer::new(19, 48, None);
        assert_eq!(wide.client_net("192.0.63.1".parse().unwrap()), "192.0.32.0/19");
    }

    #[test]
    fn privacy_mode_hides_addresses_but_keeps_equality() {
        let n = Normalizer::new(24, 64, Some(b"secret".to_vec()));
        let a = n.triplet("192.0.2.1".parse().unwrap(), "Alice+x@Example.org", "bob@example.net");
        let b = n.triplet("192.0.2.9".parse().unwrap(), "alice@example.org", "Bob@example.net");
        assert_eq!(a, b);
        assert!(a.sender.starts_with("k:") && a.sender.len() == 66, "{}", a.sender);
        assert!(!a.sender.contains("alice") && !a.recipient.contains("bob"));
        assert_eq!(a.client_net, "192.0.2.0/24");
        let other_key = Normalizer::new(24, 64, Some(b"other".to_vec()));
        assert_ne!(other_key.triplet("192.0.2.1".parse().unwrap(), "alice@example.org", "b@x").sender, a.sender);
        assert!(!format!("{n:?}").contains("secret"));
    }

    #[test]
    fn long_values_are_bounded() {
        let n = Normalizer::new(24, 64, None);
        let long = format!("{}@example.org", "x".repeat(400));
        let t = n.triplet("192.0.2.1".parse().unwrap(), &long, &long);
        assert!(t.sender.len() <= MAX_KEY_LEN && t.sender.starts_with("h:"));
        assert_eq!(t.sender, t.recipient);
    }
}
