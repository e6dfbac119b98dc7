//! The whitelist file format: one entry per line, read into typed entries.
//!
//! Owns the line syntax shared by all lists (postgrey's, so its `whitelist_clients` and
//! `whitelist_recipients` files load unchanged) and the per-entry errors. It does not build
//! lookup structures (`client.rs`, `address.rs`) or read files (`mod.rs`).
//!
//! Line syntax, as postgrey reads it (`read_clients_whitelists` in `/usr/sbin/postgrey` 1.37):
//! everything from the first `#` on is a comment (also in the middle of a line, so a regex
//! cannot contain `#`), leading and trailing white space is dropped, and blank lines are
//! skipped. Unlike postgrey, which warns about a line it cannot read (or silently drops an
//! unparsable address) and goes on, a line we cannot read is an error naming file and line:
//! a whitelist that is quietly shorter than written lets mail through greylisting unchecked
//! or holds it back.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use regex::RegexBuilder;

use super::lookup::NameScope;

/// Why one entry was refused. Each message quotes the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("invalid regex {text:?}: {reason}")]
    Regex { text: String, reason: String },
    #[error("invalid network {text:?}: {reason}")]
    Network { text: String, reason: String },
    #[error("invalid hostname {text:?}: {reason}")]
    Hostname { text: String, reason: String },
    #[error("invalid address {text:?}: {reason}")]
    Address { text: String, reason: String },
    #[error("line is not valid UTF-8")]
    Utf8,
}

/// One non-blank line of a whitelist file: its 1-based number and its entry (comment and
/// surrounding white space removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Line {
    pub number: usize,
    pub text: String,
}

/// Splits a file into entry lines.
///
/// Works on bytes so that a comment in Latin-1 (old hand-edited files) does not make the file
/// unreadable; only the entry part must be UTF-8 (and, in practice, ASCII).
///
/// # Errors
///
/// The line number and [`EntryError::Utf8`] when an entry is not UTF-8.
pub(super) fn lines(bytes: &[u8]) -> Result<Vec<Line>, (usize, EntryError)> {
    let mut out = Vec::new();
    for (index, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let entry = match raw.iter().position(|b| *b == b'#') {
            Some(hash) => &raw[..hash],
            None => raw,
        };
        let entry = entry.trim_ascii();
        if entry.is_empty() {
            continue;
        }
        let text = std::str::from_utf8(entry).map_err(|_| (index + 1, EntryError::Utf8))?;
        out.push(Line { number: index + 1, text: text.to_owned() });
    }
    Ok(out)
}

/// A client whitelist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ClientEntry {
    /// An address, a CIDR network or a textual IPv4 prefix, matched against `client_address`.
    Net(IpNet),
    /// A name matched against `client_name`, lower case.
    Name(NameScope, String),
    /// `/regex/` matched against `client_name`.
    Regex(String),
}

/// A recipient or sender whitelist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AddressEntry {
    /// `name@domain`: that address, also with a `+extension`.
    Address { local: String, domain: String },
    /// `name@`: that local part (also with a `+extension`) in any domain.
    Local(String),
    /// `domain` (and subdomains), `.domain` (subdomains only) or `@domain` (that domain only).
    Domain(NameScope, String),
    /// `/regex/` matched against the whole address.
    Regex(String),
}

/// Reads a client entry:
///
/// | entry | matches |
/// |---|---|
/// | `/regex/` | `client_name`, case-insensitive, unanchored unless the regex anchors it |
/// | `192.0.2.7`, `2001:db8::7` | that address |
/// | `192.0.2.0/24`, `2001:db8::/32` | that network (host bits are ignored, as postgrey does) |
/// | `192.0.2`, `192.0.2.`, `198.51`, `10.` | that textual prefix: /24, /24, /16, /8 |
/// | `example.org` | `client_name` equal to it or ending in `.example.org` |
/// | `.example.org` | `client_name` ending in `.example.org` only |
/// | `=mx.example.org` | `client_name` equal to it only |
///
/// # Errors
///
/// [`EntryError`] when the entry is none of these, or a regex, network or name is invalid.
pub(super) fn client_entry(text: &str) -> Result<ClientEntry, EntryError> {
    if let Some(pattern) = regex_body(text) {
        return regex(text, pattern).map(ClientEntry::Regex);
    }
    if text.contains(':') || text.contains('/') {
        return network(text).map(ClientEntry::Net);
    }
    if text.starts_with(|c: char| c.is_ascii_digit()) && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return ipv4_prefix(text).map(ClientEntry::Net);
    }
    let (scope, name) = if let Some(name) = text.strip_prefix('=') {
        (NameScope::Exact, name)
    } else if let Some(name) = text.strip_prefix('.') {
        (NameScope::Below, name)
    } else {
        (NameScope::Tree, text)
    };
    hostname(name)
        .map(|name| ClientEntry::Name(scope, name))
        .map_err(|reason| EntryError::Hostname { text: text.to_owned(), reason: reason.to_owned() })
}

/// Reads a recipient or sender entry:
///
/// | entry | matches |
/// |---|---|
/// | `/regex/` | the whole address, case-insensitive |
/// | `name@example.org` | that address and `name+anything@example.org` |
/// | `name@` | `name@` and `name+anything@` in any domain |
/// | `example.org` | addresses in that domain and its subdomains (as postgrey) |
/// | `.example.org` | addresses in subdomains of it only |
/// | `@example.org` | addresses in that domain only |
///
/// Local parts and domains compare case-insensitively, as postgrey does (RFC 5321 §2.4 lets
/// the receiving domain treat local parts as case-sensitive, but no real mailbox relies on it).
///
/// # Errors
///
/// [`EntryError`] when the entry has white space, two `@` forms are empty, or a regex or
/// domain is invalid.
pub(super) fn address_entry(text: &str) -> Result<AddressEntry, EntryError> {
    if let Some(pattern) = regex_body(text) {
        return regex(text, pattern).map(AddressEntry::Regex);
    }
    let bad = |reason: &str| EntryError::Address { text: text.to_owned(), reason: reason.to_owned() };
    if text.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(bad("white space in an address (a regex must be written /like this/)"));
    }
    let domain = |name: &str| hostname(name).map_err(|reason| bad(&format!("domain: {reason}")));
    match text.rsplit_once('@') {
        Some(("", "")) => Err(bad("neither a local part nor a domain")),
        Some(("", name)) => Ok(AddressEntry::Domain(NameScope::Exact, domain(name)?)),
        Some((local, "")) => Ok(AddressEntry::Local(local.to_lowercase())),
        Some((local, name)) => Ok(AddressEntry::Address { local: local.to_lowercase(), domain: domain(name)? }),
        None => match text.strip_prefix('.') {
            Some(name) => Ok(AddressEntry::Domain(NameScope::Below, domain(name)?)),
            None => Ok(AddressEntry::Domain(NameScope::Tree, domain(text)?)),
        },
    }
}

/// The pattern inside `/…/`, if the entry has that form (postgrey: `^/(\S+)/$`).
fn regex_body(text: &str) -> Option<&str> {
    text.strip_prefix('/')?.strip_suffix('/').filter(|body| !body.is_empty())
}

/// Checks a pattern on its own, so that an error names its line.
///
/// postgrey compiles the same text as a Perl regex with `/i`. Rust's `regex` accepts the
/// Perl syntax the shipped lists use (`\d`, `(?:…)`, `.*?`, anchors), but not look-around or
/// back-references: such an entry is refused here rather than misread.
fn regex(text: &str, pattern: &str) -> Result<String, EntryError> {
    match RegexBuilder::new(pattern).case_insensitive(true).nest_limit(super::lookup::NEST_LIMIT).build() {
        Ok(_) => Ok(pattern.to_owned()),
        Err(err) => Err(EntryError::Regex { text: text.to_owned(), reason: regex_reason(&err) }),
    }
}

/// The one-line reason of a regex error: the crate's syntax errors span several lines (the
/// pattern with a caret under the fault, then `error: …`), which a log line cannot show.
fn regex_reason(err: &regex::Error) -> String {
    let full = err.to_string();
    let reason = full.lines().rev().find_map(|line| line.trim().strip_prefix("error: ")).unwrap_or(full.trim());
    reason.to_owned()
}

/// An address or CIDR network, IPv4 or IPv6.
fn network(text: &str) -> Result<IpNet, EntryError> {
    let bad = |reason: String| EntryError::Network { text: text.to_owned(), reason };
    if text.contains('/') {
        text.parse::<IpNet>().map(|net| net.trunc()).map_err(|err| bad(err.to_string()))
    } else {
        text.parse::<IpAddr>().map(IpNet::from).map_err(|err| bad(err.to_string()))
    }
}

/// A full IPv4 address, or a textual prefix of 1 to 3 octets with or without a trailing dot.
///
/// postgrey's man page: "You can also leave off one number, in which case only the first
/// specified numbers will be checked". Its code turns `a.b.c` into a /24 but also `a.b` into a
/// /24 (`a.b.0.0/24`, although the comment there says /16), and reads `a.b.c.` as a host name
/// that never matches. We follow the documented meaning and Postfix access(5), where
/// `net.work.` and `net.work` both mean that textual prefix: `a.b.c[.]` /24, `a.b[.]` /16,
/// `a[.]` /8.
fn ipv4_prefix(text: &str) -> Result<IpNet, EntryError> {
    let bad = |reason: &str| EntryError::Network { text: text.to_owned(), reason: reason.to_owned() };
    let digits = text.strip_suffix('.').unwrap_or(text);
    let parts: Vec<&str> = digits.split('.').collect();
    if parts.len() > 4 || (parts.len() == 4 && digits.len() != text.len()) {
        return Err(bad("too many octets"));
    }
    let mut octets = [0u8; 4];
    for (slot, part) in octets.iter_mut().zip(&parts) {
        if part.is_empty() || part.len() > 3 {
            return Err(bad("expected octets of 1 to 3 digits"));
        }
        *slot = part.parse().map_err(|_| bad("octet out of range"))?;
    }
    let len = u8::try_from(8 * parts.len()).map_err(|_| bad("too many octets"))?;
    Ipv4Net::new(Ipv4Addr::from(octets), len).map(IpNet::V4).map_err(|_| bad("bad prefix length"))
}

/// Validates a host or domain name and returns it in lower case without a trailing dot.
///
/// Names are compared in their ASCII form, as Postfix reports them (`client_name` is the
/// A-label form): an internationalized name must be written as `xn--…`. `_` is allowed
/// because real PTR records use it.
///
/// # Errors
///
/// A short reason when the name is empty, has an empty label or other characters.
pub(super) fn hostname(name: &str) -> Result<String, &'static str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err("empty name");
    }
    if !name.is_ascii() {
        return Err("not ASCII (write an internationalized name as xn--…)");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > 63 {
            return Err("label longer than 63 characters");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err("only letters, digits, '-', '_' and '.' are allowed");
        }
    }
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_splitting() {
        let text = b"# header\n\n  example.org  \nmx.example.net # trailing comment\r\n/^a#b/\n\t\n";
        let got: Vec<(usize, String)> = lines(text).unwrap().into_iter().map(|l| (l.number, l.text)).collect();
        let want = [(3, "example.org"), (4, "mx.example.net"), (5, "/^a")];
        assert_eq!(got, want.map(|(n, t)| (n, t.to_owned())));
    }

    /// Stacked repetitions deep enough to overflow a worker's stack are refused as an entry
    /// error (found by the greyd_whitelist fuzz target); ordinary patterns still compile.
    #[test]
    fn deeply_nested_regexes_are_refused() {
        let deep = format!("a{}", "*".repeat(300));
        let err = regex(&format!("/{deep}/"), &deep).unwrap_err();
        assert!(matches!(&err, EntryError::Regex { reason, .. } if reason.contains("nest")), "{err:?}");
        assert!(regex("/^mx[0-9]*\\.(?:a|b)\\.example$/", "^mx[0-9]*\\.(?:a|b)\\.example$").is_ok());
    }

    #[test]
    fn non_utf8_entry_is_an_error() {
        assert_eq!(lines(b"ok\n\xe9t\xe9\n"), Err((2, EntryError::Utf8)));
        assert!(lines(b"ok # caf\xe9\n").is_ok());
    }

    fn net(s: &str) -> Result<ClientEntry, EntryError> {
        Ok(ClientEntry::Net(s.parse().unwrap()))
    }

    fn name(scope: NameScope, s: &str) -> Result<ClientEntry, EntryError> {
        Ok(ClientEntry::Name(scope, s.to_owned()))
    }

    #[test]
    fn client_entries() {
        use NameScope::*;
        let cases: &[(&str, &str, Result<ClientEntry, EntryError>)] = &[
            ("IPv4 address", "192.0.2.7", net("192.0.2.7/32")),
            ("IPv4 CIDR", "192.0.2.0/24", net("192.0.2.0/24")),
            ("IPv4 CIDR with host bits", "192.0.2.7/24", net("192.0.2.0/24")),
            ("three octets", "192.0.2", net("192.0.2.0/24")),
            ("three octets and a dot", "192.0.2.", net("192.0.2.0/24")),
            ("two octets", "198.51", net("198.51.0.0/16")),
            ("one octet and a dot", "10.", net("10.0.0.0/8")),
            ("IPv6 address", "2001:DB8::7", net("2001:db8::7/128")),
            ("IPv6 CIDR", "2001:db8::/32", net("2001:db8::/32")),
            ("domain", "Example.ORG", name(Tree, "example.org")),
            ("domain with a root dot", "example.org.", name(Tree, "example.org")),
            ("strict suffix", ".example.org", name(Below, "example.org")),
            ("exact host", "=mx.example.org", name(Exact, "mx.example.org")),
            ("digits in labels", "126.com", name(Tree, "126.com")),
            ("regex", "/^mx\\d+\\.example\\.org$/", Ok(ClientEntry::Regex("^mx\\d+\\.example\\.org$".into()))),
        ];
        for (label, text, want) in cases {
            assert_eq!(&client_entry(text), want, "{label}");
        }
    }

    #[test]
    fn client_entry_errors() {
        const CASES: &[(&str, &str, &str)] = &[
            ("unclosed group", "/(foo/", "invalid regex \"/(foo/\": unclosed group"),
            ("look-around is not supported", "/^(?!mx)/", "invalid regex \"/^(?!mx)/\": look-around"),
            ("prefix too long", "10.0.0.0/33", "invalid network \"10.0.0.0/33\": invalid IP address syntax"),
            ("octet too big", "300.1.2.3", "invalid network \"300.1.2.3\": octet out of range"),
            ("five octets", "1.2.3.4.5", "invalid network \"1.2.3.4.5\": too many octets"),
            ("four octets and a dot", "1.2.3.4.", "invalid network \"1.2.3.4.\": too many octets"),
            ("empty octet", "1..3", "invalid network \"1..3\": expected octets"),
            ("bad IPv6", "2001:db8::g", "invalid network \"2001:db8::g\": invalid IP address syntax"),
            ("sqlgrey wildcard", "*.example.org", "invalid hostname \"*.example.org\": only letters"),
            ("empty label", "mx..example.org", "invalid hostname \"mx..example.org\": empty label"),
            ("bare dot", ".", "invalid hostname \".\": empty name"),
            ("white space", "mx example.org", "invalid hostname \"mx example.org\": only letters"),
            ("non-ASCII", "bücher.example", "invalid hostname \"bücher.example\": not ASCII"),
            ("empty regex is a name", "//", "invalid network \"//\""),
        ];
        for (label, text, want) in CASES {
            let got = client_entry(text).map(|_| ()).unwrap_err().to_string();
            assert!(got.starts_with(want), "{label}: {got}");
        }
    }

    #[test]
    fn address_entries() {
        use AddressEntry::*;
        use NameScope::*;
        let cases: &[(&str, &str, AddressEntry)] = &[
            (
                "full address",
                "Postmaster@Example.org",
                Address { local: "postmaster".into(), domain: "example.org".into() },
            ),
            ("local part", "abuse@", Local("abuse".into())),
            ("domain and subdomains", "example.org", Domain(Tree, "example.org".into())),
            ("subdomains only", ".example.org", Domain(Below, "example.org".into())),
            ("that domain only", "@example.org", Domain(Exact, "example.org".into())),
            (
                "quoted local part with @",
                "\"a@b\"@example.org",
                Address { local: "\"a@b\"".into(), domain: "example.org".into() },
            ),
            ("regex", "/^bounce-.*@/", Regex("^bounce-.*@".into())),
        ];
        for (label, text, want) in cases {
            assert_eq!(address_entry(text).as_ref(), Ok(want), "{label}");
        }
        const ERRORS: &[(&str, &str, &str)] = &[
            ("lone @", "@", "neither a local part nor a domain"),
            ("space", "a b@example.org", "white space"),
            ("bad domain", "a@exa mple", "white space"),
            ("empty label", "a@example..org", "domain: empty label"),
            ("bad regex", "/[a-/", "invalid regex"),
        ];
        for (label, text, want) in ERRORS {
            let got = address_entry(text).unwrap_err().to_string();
            assert!(got.contains(want), "{label}: {got}");
        }
    }
}
