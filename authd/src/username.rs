//! User names as they reach the password store: optional lower-casing, a default domain for
//! bare names, and a character whitelist.
//!
//! The whitelist is what keeps every reply and log line safe: Postfix copies `user=` into
//! its own logs and headers without unescaping, so a TAB, CR, LF or `\001` in a name would
//! forge protocol fields, and `:`/`/` would reach passwd-file parsing or file paths.

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
}

impl UsernamePolicy {
    /// The canonical form of `raw`.
    ///
    /// # Errors
    /// Empty, not UTF-8, too long, or a character that is neither alphanumeric nor allowed.
    pub fn normalize(&self, raw: &[u8]) -> Result<String, BadUsername> {
        if raw.is_empty() {
            return Err(BadUsername::Empty);
        }
        let text = std::str::from_utf8(raw).map_err(|_| BadUsername::NotUtf8)?;
        if !text.chars().all(|c| c.is_alphanumeric() || self.extra_chars.contains(c)) {
            return Err(BadUsername::BadChar);
        }
        let mut name = if self.lowercase { text.to_lowercase() } else { text.to_owned() };
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

    /// Whether `name` could be a normalised name (used to check names a store hands back).
    pub fn is_safe(&self, name: &str) -> bool {
        !name.is_empty() && name.len() <= self.max_length && !name.chars().any(|c| c.is_control() || c == '\u{1}')
    }
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
}
