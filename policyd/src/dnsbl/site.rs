//! postscreen's DNS list syntax, `zone[=filter][*weight]`, with postscreen's meaning:
//!
//! - `filter` is an IPv4 pattern the A reply must match: four fields, each a number 0..255
//!   or a `[…]` set of `;`-separated numbers and `low..high` ranges
//!   (`127.0.0.[2..11]`, `127.0.[0..255].[1;3]`); the whole pattern may be wrapped in `[]`.
//!   Without a filter any listing reply counts.
//! - `weight` is a whole number, 1 by default; a negative weight makes an allowlist.
//!
//! Errors quote the offending text and, for filters, mark the spot as `before>here<after`,
//! so an admin pasting `postscreen_dnsbl_sites` sees which entry and where.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// One octet's accepted values, as inclusive ranges.
type Field = Vec<(u8, u8)>;

/// A reply filter (`127.0.0.[2..11]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    fields: [Field; 4],
}

impl Filter {
    /// Whether the reply address matches every field.
    pub fn matches(&self, reply: Ipv4Addr) -> bool {
        self.fields
            .iter()
            .zip(reply.octets())
            .all(|(field, octet)| field.iter().any(|&(lo, hi)| (lo..=hi).contains(&octet)))
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            match field.as_slice() {
                [(lo, hi)] if lo == hi => write!(f, "{lo}")?,
                members => {
                    f.write_str("[")?;
                    for (j, (lo, hi)) in members.iter().enumerate() {
                        let sep = if j > 0 { ";" } else { "" };
                        if lo == hi { write!(f, "{sep}{lo}")? } else { write!(f, "{sep}{lo}..{hi}")? }
                    }
                    f.write_str("]")?;
                }
            }
        }
        Ok(())
    }
}

impl FromStr for Filter {
    type Err = String;

    fn from_str(text: &str) -> Result<Filter, String> {
        let inner = match text.strip_prefix('[') {
            Some(rest) if matching_close(text) == Some(text.len() - 1) => &rest[..rest.len() - 1],
            Some(_) if matching_close(text).is_none() => return Err("missing \"]\" character".into()),
            _ => text,
        };
        if inner.is_empty() {
            return Err("empty address pattern".into());
        }
        Parser { text: inner, pos: 0 }.pattern()
    }
}

/// The index of the `]` closing the `[` at the start of `text`.
fn matching_close(text: &str) -> Option<usize> {
    let mut level = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '[' => level += 1,
            ']' => {
                level = level.saturating_sub(1);
                if level == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// A recursive-descent parser over the filter text, reporting where it stopped.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn pattern(mut self) -> Result<Filter, String> {
        let mut fields: [Field; 4] = Default::default();
        for (i, field) in fields.iter_mut().enumerate() {
            if i > 0 {
                self.expect('.', "need \".\" between the four fields")?;
            }
            *field = self.field()?;
        }
        if self.pos < self.text.len() {
            return Err(self.error(self.pos, "garbage after pattern"));
        }
        Ok(Filter { fields })
    }

    fn field(&mut self) -> Result<Field, String> {
        if self.peek() == Some('[') {
            self.pos += 1;
            let mut members = Vec::new();
            loop {
                let start = self.pos;
                let lo = self.number().ok_or_else(|| self.error(start, "need a decimal number 0..255"))?;
                let mut hi = lo;
                if self.text[self.pos..].starts_with("..") {
                    self.pos += 2;
                    hi = match self.number() {
                        Some(hi) if hi >= lo => hi,
                        _ => return Err(self.error(start, "numeric range error (need low..high, low <= high <= 255)")),
                    };
                }
                members.push((lo, hi));
                match self.peek() {
                    Some(';') => self.pos += 1,
                    Some(']') => {
                        self.pos += 1;
                        return Ok(members);
                    }
                    _ => return Err(self.error(self.pos, "need \";\" or \"]\"")),
                }
            }
        }
        let start = self.pos;
        self.number().map(|n| vec![(n, n)]).ok_or_else(|| self.error(start, "need a decimal number 0..255 or \"[\""))
    }

    /// A decimal number 0..=255; `None` (position unchanged) for anything else.
    fn number(&mut self) -> Option<u8> {
        let digits = self.text[self.pos..].bytes().take_while(u8::is_ascii_digit).count();
        let value = self.text[self.pos..self.pos + digits].parse::<u8>().ok()?;
        self.pos += digits;
        Some(value)
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn expect(&mut self, c: char, what: &str) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.error(self.pos, what))
        }
    }

    /// `what at "before>here<after"`, marking the token that starts at `at`.
    fn error(&self, at: usize, what: &str) -> String {
        let at = at.min(self.text.len());
        let len = self.text[at..].chars().next().map_or(0, char::len_utf8);
        let (before, rest) = self.text.split_at(at);
        let (here, after) = rest.split_at(len);
        format!("{what} at \"{before}>{here}<{after}\"")
    }
}

/// One `zone[=filter][*weight]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The list's zone, lower-case, without a trailing dot.
    pub zone: String,
    pub filter: Option<Filter>,
    pub weight: i32,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.zone)?;
        if let Some(filter) = &self.filter {
            write!(f, "={filter}")?;
        }
        write!(f, "*{}", self.weight)
    }
}

impl FromStr for Site {
    type Err = String;

    fn from_str(site: &str) -> Result<Site, String> {
        let text = site.trim();
        // postscreen splits off the weight first, then the filter.
        let (rest, weight) = match text.split_once('*') {
            Some((rest, w)) => {
                let weight =
                    w.trim().parse::<i32>().map_err(|_| format!("bad DNSBL weight factor \"{w}\" in \"{site}\""))?;
                (rest, weight)
            }
            None => (text, 1),
        };
        let (zone, filter) = match rest.split_once('=') {
            Some((zone, f)) => {
                let filter = f.parse::<Filter>().map_err(|e| format!("bad DNSBL filter \"{f}\" in \"{site}\": {e}"))?;
                (zone, Some(filter))
            }
            None => (rest, None),
        };
        let zone = zone.trim_end_matches('.').to_ascii_lowercase();
        if !valid_zone(&zone) {
            return Err(format!("bad DNSBL domain name \"{zone}\" in \"{site}\""));
        }
        Ok(Site { zone, filter, weight })
    }
}

/// A DNS name of letters, digits, `-` and `_`, with at least two labels of 1..=63 bytes.
pub fn valid_zone(zone: &str) -> bool {
    zone.len() <= 253
        && zone.contains('.')
        && zone.split('.').all(|l| {
            (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn filters_postscreen_accepts() {
        let table: &[(&str, &[&str], &[&str])] = &[
            ("127.0.0.2", &["127.0.0.2"], &["127.0.0.3", "127.0.1.2"]),
            ("127.0.0.[2..11]", &["127.0.0.2", "127.0.0.11"], &["127.0.0.1", "127.0.0.12"]),
            ("127.0.1.[2..99]", &["127.0.1.2", "127.0.1.99"], &["127.0.0.2", "127.0.1.100"]),
            ("127.0.[0..255].[1..3]", &["127.0.0.1", "127.0.255.3"], &["127.0.9.0", "127.0.9.4"]),
            ("127.0.0.[17;18]", &["127.0.0.17", "127.0.0.18"], &["127.0.0.19"]),
            ("127.0.0.[1;3;5..7]", &["127.0.0.1", "127.0.0.3", "127.0.0.6"], &["127.0.0.2", "127.0.0.8"]),
            ("[127.0.0.2]", &["127.0.0.2"], &["127.0.0.3"]),
            ("[127.0.0.[2;4]]", &["127.0.0.4"], &["127.0.0.3"]),
            ("[127..127].0.0.[0..255]", &["127.0.0.0"], &["126.0.0.0"]),
            ("127.0.0.[2..2]", &["127.0.0.2"], &["127.0.0.3"]),
            ("0.0.0.0", &["0.0.0.0"], &["0.0.0.1"]),
        ];
        for (text, yes, no) in table {
            let f: Filter = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            for a in *yes {
                assert!(f.matches(ip(a)), "{text} should match {a}");
            }
            for a in *no {
                assert!(!f.matches(ip(a)), "{text} should not match {a}");
            }
        }
        assert_eq!("127.0.0.[1;3;5..7]".parse::<Filter>().unwrap().to_string(), "127.0.0.[1;3;5..7]");
        assert_eq!("[127.0.0.2]".parse::<Filter>().unwrap().to_string(), "127.0.0.2");
    }

    #[test]
    fn filters_postscreen_refuses() {
        let table = [
            ("", "empty address pattern"),
            ("[]", "empty address pattern"),
            ("[127.0.0.2", "missing \"]\" character"),
            ("127.0.0", "need \".\" between the four fields at \"127.0.0><\""),
            ("127.0.0.2.5", "garbage after pattern at \"127.0.0.2>.<5\""),
            ("127.0.0.256", "need a decimal number 0..255 or \"[\" at \"127.0.0.>2<56\""),
            ("127.0.0.x", "need a decimal number 0..255 or \"[\" at \"127.0.0.>x<\""),
            ("127.0.0.[2..x]", "numeric range error (need low..high, low <= high <= 255) at \"127.0.0.[>2<..x]\""),
            ("127.0.0.[11..2]", "numeric range error"),
            ("127.0.0.[2,4]", "need \";\" or \"]\" at \"127.0.0.[2>,<4]\""),
            ("127.0.0.[2;]", "need a decimal number 0..255 at \"127.0.0.[2;>]<\""),
            ("127.0.0.[2", "need \";\" or \"]\" at \"127.0.0.[2><\""),
            ("127.0.[3.4]", "need \";\" or \"]\""),
            ("127.0.0.3[6..9]", "garbage after pattern at \"127.0.0.3>[<6..9]\""),
            ("127.0.0.-1", "need a decimal number 0..255 or \"[\""),
            ("::1", "need a decimal number 0..255 or \"[\" at \">:<:1\""),
        ];
        for (text, want) in table {
            let err = text.parse::<Filter>().expect_err(text);
            assert!(err.contains(want), "{text:?}: got {err:?}, want {want:?}");
        }
    }

    #[test]
    fn sites() {
        let s: Site = "zen.spamhaus.org".parse().unwrap();
        assert_eq!((s.zone.as_str(), s.filter.is_none(), s.weight), ("zen.spamhaus.org", true, 1));
        let s: Site = "Zen.Spamhaus.org.=127.0.0.[2..11]*3".parse().unwrap();
        assert_eq!(s.to_string(), "zen.spamhaus.org=127.0.0.[2..11]*3");
        let s: Site = "list.dnswl.org=127.0.[0..255].[1..3]*-5".parse().unwrap();
        assert_eq!(s.weight, -5);
        assert!(s.filter.as_ref().unwrap().matches(ip("127.0.15.2")));
        assert_eq!("bl.example*+2".parse::<Site>().unwrap().weight, 2);
        assert_eq!("bl.example*0".parse::<Site>().unwrap().weight, 0);

        let errors = [
            ("zen.spamhaus.org*x", "bad DNSBL weight factor \"x\" in \"zen.spamhaus.org*x\""),
            ("zen.spamhaus.org*", "bad DNSBL weight factor \"\""),
            ("zen.spamhaus.org*3*4", "bad DNSBL weight factor \"3*4\""),
            ("zen.spamhaus.org*2.5", "bad DNSBL weight factor \"2.5\""),
            (
                "zen.spamhaus.org=127.0.0*3",
                "bad DNSBL filter \"127.0.0\" in \"zen.spamhaus.org=127.0.0*3\": need \".\"",
            ),
            ("=127.0.0.2", "bad DNSBL domain name \"\""),
            ("bad domain.example", "bad DNSBL domain name \"bad domain.example\""),
            ("localhost", "bad DNSBL domain name \"localhost\""),
            ("a..example", "bad DNSBL domain name"),
        ];
        for (text, want) in errors {
            let err = text.parse::<Site>().expect_err(text);
            assert!(err.contains(want), "{text:?}: got {err:?}, want {want:?}");
        }
    }
}
