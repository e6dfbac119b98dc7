//! Which identities to evaluate for a request (RFC 7208 §2.3, §2.4, §4.3).
//!
//! - HELO is checked only when it is a fully qualified domain name: an address literal, a
//!   bare word or an empty HELO gives `none` for HELO, and the MAIL FROM check still runs.
//! - The null sender's MAIL FROM identity is `postmaster@<HELO>`; without a usable HELO it is
//!   `none` too.
//! - A sender whose domain is not a valid domain name gives `none` (§4.3), never an error.
//!   Its local part is never a reason to skip: an empty one is `postmaster` (§4.3), and a
//!   quoted one with spaces or odd characters is evaluated as Postfix passed it.

use viaspf::{DomainName, Sender};

use super::Identity;

/// One identity to evaluate, or why it cannot be.
#[derive(Debug, Clone)]
pub enum Target {
    Check { identity: Identity, sender: Sender },
    Skip { identity: Identity, domain: String, why: &'static str },
}

/// The identities of one message.
#[derive(Debug, Clone)]
pub struct Identities {
    pub helo: Target,
    pub mail_from: Target,
    /// The HELO name when it is usable (for `%{h}` and the HELO check).
    pub helo_domain: Option<DomainName>,
    /// Null sender with a usable HELO: MAIL FROM is the same check as HELO.
    pub mail_from_is_helo: bool,
}

impl Identities {
    pub fn from_request(helo: &str, sender: &str) -> Identities {
        let helo = helo.trim().trim_end_matches('.');
        let helo_domain = fqdn(helo);
        let helo_target = match &helo_domain {
            Some(d) => match Sender::from_domain(&d.to_string()) {
                Ok(sender) => Target::Check { identity: Identity::Helo, sender },
                Err(_) => skip(Identity::Helo, helo, "HELO name is not a domain name"),
            },
            None => skip(Identity::Helo, helo, helo_problem(helo)),
        };
        let (mail_from, mail_from_is_helo) = if sender.is_empty() {
            match &helo_target {
                Target::Check { sender, .. } => {
                    (Target::Check { identity: Identity::MailFrom, sender: sender.clone() }, true)
                }
                Target::Skip { .. } => {
                    (skip(Identity::MailFrom, helo, "null sender without a usable HELO name"), false)
                }
            }
        } else {
            // Split at the last `@`: a quoted local part may hold `@` too. Whatever the local
            // part holds, Postfix accepted it, so it is evaluated as it is (`%{l}` expands to
            // it); an empty one is `postmaster` (RFC 7208 §4.3).
            let (local, domain) = sender.rsplit_once('@').unwrap_or(("", sender));
            let domain = domain.trim_end_matches('.');
            match fqdn(domain).and_then(|_| Sender::from_parts(local, domain).ok()) {
                Some(parsed) => (Target::Check { identity: Identity::MailFrom, sender: parsed }, false),
                None => (skip(Identity::MailFrom, domain, "sender domain is not a domain name"), false),
            }
        };
        Identities { helo: helo_target, mail_from, helo_domain, mail_from_is_helo }
    }
}

fn skip(identity: Identity, domain: &str, why: &'static str) -> Target {
    Target::Skip { identity, domain: domain.to_owned(), why }
}

fn helo_problem(helo: &str) -> &'static str {
    if helo.is_empty() {
        "no HELO name"
    } else if helo.starts_with('[') {
        "HELO is an address literal"
    } else {
        "HELO name is not a fully qualified domain name"
    }
}

/// `name` as a domain name if it is fully qualified: at least two labels, not an address,
/// and a top label that is not all digits (`1.2.3.4` is an address, not a host).
pub fn fqdn(name: &str) -> Option<DomainName> {
    if name.is_empty() || name.starts_with('[') || !name.contains('.') {
        return None;
    }
    let top = name.rsplit('.').next().unwrap_or_default();
    if top.is_empty() || top.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    DomainName::new(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(t: &Target) -> Option<String> {
        match t {
            Target::Check { sender, .. } => Some(sender.to_string()),
            Target::Skip { .. } => None,
        }
    }

    /// (HELO, sender, HELO check sender, MAIL FROM check sender, MAIL FROM reuses HELO).
    type Case = (&'static str, &'static str, Option<&'static str>, Option<&'static str>, bool);

    #[test]
    fn identities() {
        // (helo, sender) → (helo sender, mail from sender, mail_from_is_helo)
        let cases: &[Case] = &[
            ("mx.example.org", "a@example.com", Some("postmaster@mx.example.org"), Some("a@example.com"), false),
            ("mx.example.org.", "", Some("postmaster@mx.example.org"), Some("postmaster@mx.example.org"), true),
            ("", "a@example.com", None, Some("a@example.com"), false),
            ("[192.0.2.1]", "a@example.com", None, Some("a@example.com"), false),
            ("localhost", "a@example.com", None, Some("a@example.com"), false),
            ("192.0.2.1", "", None, None, false),
            ("", "", None, None, false),
            ("mx.example.org", "a@[192.0.2.1]", Some("postmaster@mx.example.org"), None, false),
            ("mx.example.org", "a@nodot", Some("postmaster@mx.example.org"), None, false),
            ("mx.example.org", "a@bad..example", Some("postmaster@mx.example.org"), None, false),
            // Odd local parts are checked, never skipped (an SPF-fail bypass otherwise).
            (
                "mx.example.org",
                "@example.com",
                Some("postmaster@mx.example.org"),
                Some("postmaster@example.com"),
                false,
            ),
            ("mx.example.org", "x y@example.com", Some("postmaster@mx.example.org"), Some("x y@example.com"), false),
            ("mx.example.org", "a@b@example.com", Some("postmaster@mx.example.org"), Some("a@b@example.com"), false),
            (
                "mx.example.org",
                "%{l}:/@example.com",
                Some("postmaster@mx.example.org"),
                Some("%{l}:/@example.com"),
                false,
            ),
        ];
        for (helo, sender, want_helo, want_mf, is_helo) in cases {
            let ids = Identities::from_request(helo, sender);
            assert_eq!(checked(&ids.helo).as_deref(), *want_helo, "helo for {helo:?}/{sender:?}");
            assert_eq!(checked(&ids.mail_from).as_deref(), *want_mf, "mail from for {helo:?}/{sender:?}");
            assert_eq!(ids.mail_from_is_helo, *is_helo, "{helo:?}/{sender:?}");
        }
    }
}
