//! User names as they reach the password store: optional lower-casing, a default domain for
//! bare names, and a character whitelist.
//!
//! The form is fixed so that normalising is idempotent: a name that comes back from a
//! store, a cache key or a second login normalises to itself. Case mapping alone is not:
//! `İ` (U+0130) lower-cases to `i` and a combining dot (U+0307), and a precomposed letter
//! may lower-case into a base letter and a mark. So a name is put in Unicode NFC, case
//! mapped, and put in NFC again (the order of RFC 8265's UsernameCaseMapped profile:
//! case mapping, then normalisation); combining marks (categories Mn, Mc, Me) are allowed
//! after a letter or digit, since NFC keeps many letters decomposed. A name whose normal
//! form would not normalise to itself is refused rather than stored in a form it does not
//! come back as.
//!
//! The whitelist is what keeps every reply and log line safe: Postfix copies `user=` into
//! its own logs and headers without unescaping, so a TAB, CR, LF or `\001` in a name would
//! forge protocol fields, and `:`/`/` would reach passwd-file parsing or file paths.

use unicode_normalization::UnicodeNormalization;

/// How names are normalised (`[auth]` settings).
#[derive(Debug, Clone)]
pub struct UsernamePolicy {
    pub lowercase: bool,
    /// Appended as `@domain` to names without `@`.
    pub default_domain: Option<String>,
    /// Allowed besides letters and digits (any script).
    pub extra_chars: String,
    /// In bytes, after normalisation.
    pub max_length: usize,
}

impl Default for UsernamePolicy {
    fn default() -> Self {
        UsernamePolicy {
            lowercase: true,
            default_domain: None,
            extra_chars: DEFAULT_EXTRA_CHARS.to_owned(),
            max_length: 256,
        }
    }
}

/// Dovecot's `auth_username_chars` punctuation, plus `+` and `=` (sub-addresses, SRS-like names).
pub const DEFAULT_EXTRA_CHARS: &str = ".-_@+=";

/// Why a name was refused. The message is safe to log: it never quotes the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadUsername {
    #[error("empty user name")]
    Empty,
    #[error("user name is not UTF-8")]
    NotUtf8,
    #[error("user name longer than {0} bytes")]
    TooLong(usize),
    #[error("user name with a character outside auth.username_chars")]
    BadChar,
    #[error("user name with a combining mark that follows no letter or digit")]
    StrayMark,
    #[error("user name whose normal form is unstable")]
    Unstable,
}

impl UsernamePolicy {
    /// The canonical form of `raw`.
    ///
    /// # Errors
    /// Empty, not UTF-8, too long, or a character that is neither alphanumeric nor allowed.
    pub fn normalize(&self, raw: &[u8]) -> Result<String, BadUsername> {
        let name = self.normal_form(raw)?;
        // The fixed point check: cheap next to a password hash, and what makes a stored
        // name always match itself.
        if !name.is_ascii() && self.normal_form(name.as_bytes()).as_deref() != Ok(name.as_str()) {
            return Err(BadUsername::Unstable);
        }
        Ok(name)
    }

    fn normal_form(&self, raw: &[u8]) -> Result<String, BadUsername> {
        if raw.is_empty() {
            return Err(BadUsername::Empty);
        }
        let text = std::str::from_utf8(raw).map_err(|_| BadUsername::NotUtf8)?;
        let mut name = if text.is_ascii() {
            if self.lowercase { text.to_ascii_lowercase() } else { text.to_owned() }
        } else {
            let composed: String = text.nfc().collect();
            let mapped = if self.lowercase { composed.to_lowercase() } else { composed };
            mapped.nfc().collect()
        };
        self.check_chars(&name)?;
        if let Some(domain) = &self.default_domain
            && !name.contains('@')
        {
            name.push('@');
            name.push_str(domain);
        }
        if name.len() > self.max_length {
            return Err(BadUsername::TooLong(self.max_length));
        }
        Ok(name)
    }

    /// Letters, digits and `extra_chars`; a combining mark only right after a letter, a
    /// digit or another mark.
    fn check_chars(&self, name: &str) -> Result<(), BadUsername> {
        let mut after_base = false;
        for c in name.chars() {
            if c.is_alphanumeric() {
                after_base = true;
            } else if is_mark(c) {
                if !after_base {
                    return Err(BadUsername::StrayMark);
                }
            } else if self.extra_chars.contains(c) {
                after_base = false;
            } else {
                return Err(BadUsername::BadChar);
            }
        }
        Ok(())
    }

    /// Whether `name` could be a normalised name (used to check names a store hands back).
    pub fn is_safe(&self, name: &str) -> bool {
        !name.is_empty() && name.len() <= self.max_length && !name.chars().any(|c| c.is_control() || c == '\u{1}')
    }
}

/// Combining marks (general categories Mn, Mc, Me).
fn is_mark(c: char) -> bool {
    unicode_normalization::char::is_combining_mark(c)
}

/// The local part and domain of a name, for SQL placeholders (`domain` empty without `@`).
pub fn split(name: &str) -> (&str, &str) {
    name.rsplit_once('@').unwrap_or((name, ""))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn normalize() {
        let p = UsernamePolicy::default();
        assert_eq!(p.normalize(b"Bob@Example.COM").unwrap(), "bob@example.com");
        assert_eq!(p.normalize("Jürgen@bücher.de".as_bytes()).unwrap(), "jürgen@bücher.de");
        assert_eq!(p.normalize(b""), Err(BadUsername::Empty));
        assert_eq!(p.normalize(b"bob example"), Err(BadUsername::BadChar));
        assert_eq!(p.normalize(b"bob\tuser=root"), Err(BadUsername::BadChar));
        assert_eq!(p.normalize(b"bob\x01"), Err(BadUsername::BadChar));
        assert_eq!(p.normalize(b"bob:x"), Err(BadUsername::BadChar));
        assert_eq!(p.normalize(b"../etc"), Err(BadUsername::BadChar));
        assert_eq!(p.normalize(b"\xff"), Err(BadUsername::NotUtf8));
        assert_eq!(p.normalize(&[b'a'; 300]), Err(BadUsername::TooLong(256)));
        let p = UsernamePolicy {
            lowercase: false,
            default_domain: Some("example.org".into()),
            ..UsernamePolicy::default()
        };
        assert_eq!(p.normalize(b"Bob").unwrap(), "Bob@example.org");
        assert_eq!(p.normalize(b"bob@other").unwrap(), "bob@other");
        assert_eq!(split("a@b@c"), ("a@b", "c"));
        assert_eq!(split("root"), ("root", ""));
    }

    /// Every accepted name normalises to itself (the fuzz target `auth_mech` found `İ`,
    /// which lower-cases into `i` and a combining dot).
    #[test]
    fn normalising_is_idempotent() {
        let p = UsernamePolicy::default();
        let cases: [(&str, Option<&str>); 9] = [
            ("\u{130}", Some("i\u{307}")),
            ("İstanbul@example.tr", Some("i\u{307}stanbul@example.tr")),
            ("Cafe\u{301}@example.fr", Some("caf\u{e9}@example.fr")),
            ("CAF\u{c9}", Some("caf\u{e9}")),
            ("\u{212a}elvin", Some("kelvin")),
            ("ΣΟΦΙΑ", Some("σοφια")),
            ("\u{301}x", None),
            ("x.\u{301}", None),
            ("a\u{0}b", None),
        ];
        for (raw, want) in cases {
            let got = p.normalize(raw.as_bytes()).ok();
            assert_eq!(got.as_deref(), want, "{raw:?}");
            if let Some(n) = got {
                assert_eq!(p.normalize(n.as_bytes()).as_deref(), Ok(n.as_str()), "{raw:?} twice");
            }
        }
        // The bytes the fuzz target found.
        let found = p.normalize(b"\xc4\xb0").unwrap();
        assert_eq!(p.normalize(found.as_bytes()), Ok(found));
    }
}
