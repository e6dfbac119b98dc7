//! What a list is asked about: the client address (reversed octets or nibbles), or a domain
//! for an RHSBL: the sender's, the HELO name, the verified client name or the unverified
//! reverse name. Like Postfix, address literals and names ending in a numeric label are
//! never sent to an RHSBL (they are not domains, and would leak addresses to the list).
//! Loopback, private and link-local client addresses ([`public`] is false) are not sent to
//! a DNSBL unless `dnsbl.query_private_clients` is on (no list can know them; asking only
//! tells the list about your network); the check logs the skip.

use std::fmt;
use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Deserialize;
use shared::policy::PolicyRequest;

/// One thing a list can be queried for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The client IP address (a classic DNSBL/DNSWL).
    Client,
    /// The domain of the envelope sender (`reject_rhsbl_sender`).
    Sender,
    /// The HELO/EHLO name (`reject_rhsbl_helo`).
    Helo,
    /// The forward-confirmed client name (`reject_rhsbl_client`).
    ClientName,
    /// The unverified reverse name (`reject_rhsbl_reverse_client`).
    ReverseClientName,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Client => "client",
            Target::Sender => "sender",
            Target::Helo => "helo",
            Target::ClientName => "client_name",
            Target::ReverseClientName => "reverse_client_name",
        }
    }

    /// Postfix's `$rbl_class` for the reply text.
    pub fn class(self) -> &'static str {
        match self {
            Target::Client | Target::ClientName => "Client host",
            Target::Sender => "Sender address",
            Target::Helo => "Helo command",
            Target::ReverseClientName => "Unverified Client host",
        }
    }

    /// The label sequence to put in front of the list's zone, and the value it stands for
    /// (shown in replies and logs), or `None` when the request has nothing to ask about.
    pub fn query(self, request: &PolicyRequest, ip: IpAddr) -> Option<(String, String)> {
        match self {
            Target::Client => Some((reversed(ip), ip.to_string())),
            Target::Sender => {
                let domain = request.sender.rsplit_once('@').map_or("", |(_, d)| d);
                rhs_name(domain).map(|d| (d.clone(), d))
            }
            Target::Helo => rhs_name(&request.helo_name).map(|d| (d.clone(), d)),
            Target::ClientName => rhs_name(&request.client_name).map(|d| (d.clone(), d)),
            Target::ReverseClientName => rhs_name(&request.reverse_client_name).map(|d| (d.clone(), d)),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a DNS list can know anything about `ip`: not loopback, private (RFC 1918, IPv6
/// unique local), link-local or unspecified.
pub fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public(IpAddr::V4(v4));
            }
            !(v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local() || v6.is_unspecified())
        }
    }
}

/// `1.2.3.4` → `4.3.2.1`; IPv6 → 32 nibbles, least significant first (RFC 5782 §2.4).
pub fn reversed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}")
        }
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(64);
            for byte in v6.octets().iter().rev() {
                let _ = write!(out, "{:x}.{:x}.", byte & 0xf, byte >> 4);
            }
            out.pop();
            out
        }
    }
}

/// The domain an RHSBL may be asked about, lower-case without a trailing dot; `None` for
/// empty, `unknown` (Postfix's placeholder), address literals, names ending in a numeric
/// label, single labels and anything with characters a host name cannot have.
pub fn rhs_name(name: &str) -> Option<String> {
    let name = name.trim_end_matches('.');
    if name.is_empty()
        || name.eq_ignore_ascii_case("unknown")
        || name.starts_with('[')
        || name.parse::<IpAddr>().is_ok()
    {
        return None;
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    if !name.contains('.') || last.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let valid = name.len() <= 200
        && name.split('.').all(|l| {
            (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    valid.then(|| name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversed_addresses() {
        assert_eq!(reversed("192.0.2.99".parse().unwrap()), "99.2.0.192");
        let v6 = reversed("2001:db8:1:2::7f".parse().unwrap());
        assert_eq!(v6, "f.7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2");
        assert_eq!(v6.split('.').count(), 32);
    }

    #[test]
    fn private_clients_are_never_sent_to_a_list() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["192.0.2.1", "198.18.0.1", "8.8.8.8", "2001:db8::1", "::ffff:192.0.2.1"] {
            assert!(public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn rhsbl_names() {
        assert_eq!(rhs_name("Mail.Example.ORG.").as_deref(), Some("mail.example.org"));
        for bad in [
            "",
            "unknown",
            "[192.0.2.1]",
            "[IPv6:2001:db8::1]",
            "192.0.2.1",
            "2001:db8::1",
            "host.123",
            "localhost",
            "bad name.example",
            "a..b.example",
        ] {
            assert_eq!(rhs_name(bad), None, "{bad:?}");
        }
        assert_eq!(rhs_name("123.example.com").as_deref(), Some("123.example.com"), "only the last label matters");
    }
}
