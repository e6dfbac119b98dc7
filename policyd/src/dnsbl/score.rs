//! From the lists' answers to one action: postscreen's summed weights and thresholds.

use std::fmt;
use std::net::Ipv4Addr;

use super::Target;
use crate::config::DnsblConfig;

/// One list entry that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The list's zone as shown to people (never with a DQS key).
    pub list: String,
    /// The entry as configured (`zone=filter*weight`).
    pub site: String,
    pub target: Target,
    /// The address or name that is listed.
    pub what: String,
    /// The reply codes that matched the entry's filter.
    pub codes: Vec<Ipv4Addr>,
    pub weight: i32,
}

/// What the score asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// At or below the allowlist threshold: accept, and skip the remaining checks.
    Allowlisted,
    Reject,
    Defer,
    /// Accept with the score header.
    Header,
    /// Accept, nothing to add.
    Clean,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowlisted => "allowlisted",
            Outcome::Reject => "reject",
            Outcome::Defer => "defer",
            Outcome::Header => "header",
            Outcome::Clean => "clean",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The configured thresholds; 0 means "off" for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub reject: i32,
    pub defer: i32,
    pub header: i32,
    pub allow: i32,
}

impl Thresholds {
    pub fn new(config: &DnsblConfig) -> Thresholds {
        Thresholds {
            reject: config.reject_threshold,
            defer: config.defer_threshold,
            header: config.header_threshold,
            allow: config.allow_threshold,
        }
    }

    /// The action for a summed score. The allowlist is checked first: a client can only get
    /// a negative score from an allowlist entry.
    pub fn outcome(&self, score: i32) -> Outcome {
        let reached = |threshold: i32| threshold > 0 && score >= threshold;
        if self.allow < 0 && score <= self.allow {
            Outcome::Allowlisted
        } else if reached(self.reject) {
            Outcome::Reject
        } else if reached(self.defer) {
            Outcome::Defer
        } else if reached(self.header) {
            Outcome::Header
        } else {
            Outcome::Clean
        }
    }
}

/// The summed weight of the hits.
pub fn total(hits: &[Hit]) -> i32 {
    hits.iter().fold(0i32, |sum, h| sum.saturating_add(h.weight))
}

/// The hit a reply names: the heaviest listing (the first one on a tie, in configuration
/// order), or `None` when nothing lists the client.
pub fn deciding(hits: &[Hit]) -> Option<&Hit> {
    hits.iter().filter(|h| h.weight > 0).reduce(|best, h| if h.weight > best.weight { h } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(list: &str, weight: i32) -> Hit {
        Hit {
            list: list.into(),
            site: format!("{list}*{weight}"),
            target: Target::Client,
            what: "192.0.2.1".into(),
            codes: vec![Ipv4Addr::new(127, 0, 0, 2)],
            weight,
        }
    }

    #[test]
    fn thresholds_decide() {
        let t = Thresholds { reject: 5, defer: 3, header: 1, allow: -2 };
        let table = [
            (-5, Outcome::Allowlisted),
            (-2, Outcome::Allowlisted),
            (-1, Outcome::Clean),
            (0, Outcome::Clean),
            (1, Outcome::Header),
            (2, Outcome::Header),
            (3, Outcome::Defer),
            (4, Outcome::Defer),
            (5, Outcome::Reject),
            (50, Outcome::Reject),
        ];
        for (score, want) in table {
            assert_eq!(t.outcome(score), want, "score {score}");
        }
        let off = Thresholds { reject: 0, defer: 0, header: 0, allow: 0 };
        for score in [-10, 0, 10] {
            assert_eq!(off.outcome(score), Outcome::Clean, "every action off, score {score}");
        }
        let postscreen_default = Thresholds { reject: 1, defer: 0, header: 1, allow: -1 };
        assert_eq!(postscreen_default.outcome(1), Outcome::Reject);
        assert_eq!(postscreen_default.outcome(-1), Outcome::Allowlisted);
    }

    #[test]
    fn scores_sum_and_the_heaviest_listing_decides() {
        let hits = [hit("a.example", 2), hit("wl.example", -5), hit("b.example", 3), hit("c.example", 3)];
        assert_eq!(total(&hits), 3);
        assert_eq!(deciding(&hits).map(|h| h.list.as_str()), Some("b.example"));
        assert_eq!(deciding(&[hit("wl.example", -1)]), None);
        assert_eq!(total(&[hit("x.example", i32::MAX), hit("y.example", 5)]), i32::MAX);
    }
}
