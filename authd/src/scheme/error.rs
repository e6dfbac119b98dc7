//! What can go wrong parsing a stored credential or hashing a password.
//!
//! These messages reach logs (a bad line in a password file is reported with its user), so no
//! variant carries the stored value or the password: only the scheme and what is wrong.

use super::Scheme;

/// A stored credential that cannot be used, or a password that cannot be hashed.
#[derive(Debug, thiserror::Error)]
pub enum SchemeError {
    /// A `{NAME}` prefix, `pw -s NAME` or configured default naming no scheme we know.
    #[error("unknown password scheme {name:?}")]
    Unknown {
        /// The name as given when it looks like a scheme name, else a placeholder (see
        /// [`SchemeError::unknown`]).
        name: String,
    },
    /// The stored value does not have the shape its scheme requires.
    #[error("malformed {scheme} value: {what}")]
    Malformed { scheme: Scheme, what: &'static str },
    /// A well-known format this build deliberately does not verify.
    #[error("unsupported {scheme} value: {what}")]
    Unsupported { scheme: Scheme, what: &'static str },
    /// A cost outside what the scheme (or doveadm, for hashing) accepts.
    #[error("{scheme} rounds {rounds} out of range {min}..={max}")]
    RoundsOutOfRange { scheme: Scheme, rounds: u32, min: u32, max: u32 },
    /// Rounds were given for a scheme that has no cost parameter.
    #[error("{scheme} takes no rounds")]
    NoRounds { scheme: Scheme },
    /// The password cannot be hashed in this scheme.
    #[error("cannot hash the password as {scheme}: {what}")]
    Password { scheme: Scheme, what: &'static str },
    /// The OS random source failed, so no salt could be made.
    #[error("no randomness for a salt: {0}")]
    Random(getrandom::Error),
    /// A hashing library refused parameters that passed our own checks (a bug, not bad input).
    #[error("{scheme} hashing failed: {what}")]
    Hash { scheme: Scheme, what: String },
}

impl SchemeError {
    /// [`SchemeError::Unknown`] for `name`. The name is kept only when it looks like a scheme
    /// name (short, letters, digits, `-`, `_`, `.`): a plaintext password that happens to start
    /// with `{` must not end up in a log.
    pub fn unknown(name: &str) -> SchemeError {
        let plausible =
            name.len() <= 32 && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        let name = if plausible { name.to_owned() } else { format!("<{} bytes, not shown>", name.len()) };
        SchemeError::Unknown { name }
    }
}
