//! Dovecot password schemes: naming them, parsing stored credentials, verifying passwords
//! against them and hashing new ones exactly as `doveadm pw` prints them.
//!
//! This module owns the formats (`{SCHEME}data`, encoding suffixes, crypt(3) strings, Dovecot's
//! own PBKDF2, CRAM-MD5 and SCRAM layouts) and the cryptography behind them. It does not own
//! where credentials come from (`store`), which mechanism asks for what (`mech`), or where a slow
//! verification runs (`hasher`): [`Scheme::is_slow`] only tells the caller which ones to move
//! off the async workers.
//!
//! # Layout
//! - `stored.rs`: [`Stored`], the parsed credential, and the dispatch to the files below.
//! - `crypt.rs` (+ `md5_crypt.rs`): the crypt(3) family, by the string's own `$id$`.
//! - `digest.rs`: PLAIN-MD5 and the (salted) SHA family.
//! - `pbkdf2.rs`, `argon2.rs`: Dovecot's PBKDF2 format and the libsodium Argon2 strings.
//! - `cram.rs`, `scram.rs`: the keys the challenge-response mechanisms need.
//! - `encoding.rs`, `random.rs`, `error.rs`: base64/hex, salts, [`SchemeError`].
//!
//! Formats and defaults follow Dovecot 2.3 (`src/auth/password-scheme*.c`) and were checked
//! against `doveadm pw` 2.3.19.1; the test vectors in `tests.rs` come from it.

mod argon2;
mod cram;
mod crypt;
mod digest;
mod encoding;

pub(crate) use encoding::unhex;
mod error;
mod md5_crypt;
mod pbkdf2;
mod random;
mod scram;
mod stored;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use cram::CramMd5Key;
pub use error::SchemeError;
pub use scram::{MIN_ITERATIONS as SCRAM_ITERATIONS, SALT_LEN as SCRAM_SALT_LEN, ScramKeys, ScramSha1Keys};
pub use stored::Stored;

use random::Rng;
use zeroize::Zeroize;

/// The most memory a stored Argon2 or yescrypt parameter set may ask for. doveadm's own
/// largest default (`ARGON2ID -r 4` and up) is 1 GiB; a store asking for more than this is
/// more likely tampered with than tuned, and one verification must not be able to take the
/// daemon's memory.
const MAX_MEMORY_BYTES: u64 = 4 << 30;

/// A password scheme by Dovecot's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `PLAIN`: the password itself (aliases `CLEAR`, `CLEARTEXT`).
    Plain,
    /// `CRYPT`: any crypt(3) string this build verifies, chosen by its `$id$`; hashing makes
    /// `$2y$` bcrypt, as `doveadm pw` has since 2.3 (alias `DES-CRYPT`, whose traditional
    /// 13-character strings are refused).
    Crypt,
    /// `SHA512-CRYPT`: `$6$`.
    Sha512Crypt,
    /// `SHA256-CRYPT`: `$5$`.
    Sha256Crypt,
    /// `BLF-CRYPT`: bcrypt, `$2y$` (also reads `$2a$` and `$2b$`). Like crypt_blowfish, only
    /// the first 72 password bytes count.
    BlfCrypt,
    /// `MD5-CRYPT`: `$1$` (alias `MD5`, which Dovecot also reads as PLAIN-MD5 when the data is
    /// not a `$1$` string).
    Md5Crypt,
    /// `ARGON2I`: `$argon2i$` PHC strings as libsodium writes them.
    Argon2i,
    /// `ARGON2ID`: `$argon2id$` PHC strings as libsodium writes them.
    Argon2id,
    /// `PBKDF2`: Dovecot's own `$1$salt$rounds$hex` (PBKDF2-HMAC-SHA1).
    Pbkdf2,
    /// `SSHA`: base64(SHA1(password‖salt)‖salt).
    Ssha,
    /// `SSHA256`: base64(SHA256(password‖salt)‖salt).
    Ssha256,
    /// `SSHA512`: base64(SHA512(password‖salt)‖salt).
    Ssha512,
    /// `SHA`: base64(SHA1(password)) (alias `SHA1`).
    Sha,
    /// `SHA256`: base64(SHA256(password)).
    Sha256,
    /// `SHA512`: base64(SHA512(password)).
    Sha512,
    /// `PLAIN-MD5`: hex(MD5(password)) (alias `LDAP-MD5`, which defaults to base64).
    PlainMd5,
    /// `CRAM-MD5`: the HMAC-MD5 key's precomputed MD5 states (alias `HMAC-MD5`).
    CramMd5,
    /// `SCRAM-SHA-1`: `iterations,salt,StoredKey,ServerKey`.
    ScramSha1,
    /// `SCRAM-SHA-256`: `iterations,salt,StoredKey,ServerKey`.
    ScramSha256,
}

impl Scheme {
    /// Every scheme, for `pw -l` and docs.
    pub const ALL: &'static [Scheme] = &[
        Scheme::Plain,
        Scheme::Crypt,
        Scheme::Sha512Crypt,
        Scheme::Sha256Crypt,
        Scheme::BlfCrypt,
        Scheme::Md5Crypt,
        Scheme::Argon2i,
        Scheme::Argon2id,
        Scheme::Pbkdf2,
        Scheme::Ssha,
        Scheme::Ssha256,
        Scheme::Ssha512,
        Scheme::Sha,
        Scheme::Sha256,
        Scheme::Sha512,
        Scheme::PlainMd5,
        Scheme::CramMd5,
        Scheme::ScramSha1,
        Scheme::ScramSha256,
    ];

    /// Dovecot's name, e.g. "SHA512-CRYPT".
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Plain => "PLAIN",
            Scheme::Crypt => "CRYPT",
            Scheme::Sha512Crypt => "SHA512-CRYPT",
            Scheme::Sha256Crypt => "SHA256-CRYPT",
            Scheme::BlfCrypt => "BLF-CRYPT",
            Scheme::Md5Crypt => "MD5-CRYPT",
            Scheme::Argon2i => "ARGON2I",
            Scheme::Argon2id => "ARGON2ID",
            Scheme::Pbkdf2 => "PBKDF2",
            Scheme::Ssha => "SSHA",
            Scheme::Ssha256 => "SSHA256",
            Scheme::Ssha512 => "SSHA512",
            Scheme::Sha => "SHA",
            Scheme::Sha256 => "SHA256",
            Scheme::Sha512 => "SHA512",
            Scheme::PlainMd5 => "PLAIN-MD5",
            Scheme::CramMd5 => "CRAM-MD5",
            Scheme::ScramSha1 => "SCRAM-SHA-1",
            Scheme::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    /// Case-insensitive, with Dovecot's aliases (CLEAR, CLEARTEXT → Plain; SHA1 → Sha;
    /// MD5 → Md5Crypt; HMAC-MD5 → CramMd5; LDAP-MD5 → PlainMd5; DES-CRYPT → Crypt).
    ///
    /// Encoding suffixes (`.b64`, `.hex`) are not names: [`Stored::parse`] reads those.
    pub fn from_name(name: &str) -> Option<Scheme> {
        if let Some(scheme) = Scheme::ALL.iter().copied().find(|s| s.name().eq_ignore_ascii_case(name)) {
            return Some(scheme);
        }
        const ALIASES: &[(&str, Scheme)] = &[
            ("CLEAR", Scheme::Plain),
            ("CLEARTEXT", Scheme::Plain),
            ("SHA1", Scheme::Sha),
            ("MD5", Scheme::Md5Crypt),
            ("HMAC-MD5", Scheme::CramMd5),
            ("LDAP-MD5", Scheme::PlainMd5),
            ("DES-CRYPT", Scheme::Crypt),
        ];
        ALIASES.iter().find(|(alias, _)| alias.eq_ignore_ascii_case(name)).map(|&(_, scheme)| scheme)
    }

    /// True when verifying costs a deliberate key-stretching computation (crypt family, argon2,
    /// pbkdf2, scram), so the caller runs it on a bounded blocking pool; false for PLAIN and
    /// plain digests (run inline).
    pub fn is_slow(self) -> bool {
        match self {
            Scheme::Crypt
            | Scheme::Sha512Crypt
            | Scheme::Sha256Crypt
            | Scheme::BlfCrypt
            | Scheme::Md5Crypt
            | Scheme::Argon2i
            | Scheme::Argon2id
            | Scheme::Pbkdf2
            | Scheme::ScramSha1
            | Scheme::ScramSha256 => true,
            Scheme::Plain
            | Scheme::Ssha
            | Scheme::Ssha256
            | Scheme::Ssha512
            | Scheme::Sha
            | Scheme::Sha256
            | Scheme::Sha512
            | Scheme::PlainMd5
            | Scheme::CramMd5 => false,
        }
    }
}

impl FromStr for Scheme {
    type Err = SchemeError;

    fn from_str(name: &str) -> Result<Scheme, SchemeError> {
        Scheme::from_name(name).ok_or_else(|| SchemeError::unknown(name))
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Hashes `password` as `scheme` with a fresh random salt, returning "{SCHEME}…" exactly as
/// `doveadm pw -s SCHEME` would print it.
///
/// Default costs are doveadm's: BLF-CRYPT and CRYPT cost 5; SHA256/512-CRYPT 5000 rounds,
/// written without a `rounds=` field; PBKDF2 5000; SCRAM 4096; ARGON2ID m=65536,t=3,p=1;
/// ARGON2I m=32768,t=4,p=1. `rounds` overrides the cost where the scheme has one: the bcrypt
/// cost (4–31), the SHA-crypt rounds (1000–999999999), the PBKDF2 and SCRAM iterations
/// (≥1, ≥4096) and libsodium's `opslimit` for Argon2, which also picks the memory as doveadm
/// does. Used by `postward-authd pw`.
///
/// Design note: doveadm silently clamps an out-of-range `-r` and ignores it for schemes
/// without a cost; here both are errors, so `pw` never prints something else than was asked.
///
/// # Errors
/// [`SchemeError::RoundsOutOfRange`] or [`SchemeError::NoRounds`] for an unusable `rounds`,
/// [`SchemeError::Password`] for a password the scheme cannot carry (a NUL byte anywhere, or
/// non-UTF-8 text for PLAIN), [`SchemeError::Random`] when the OS has no randomness for a salt.
pub fn hash(scheme: Scheme, password: &[u8], rounds: Option<u32>) -> Result<String, SchemeError> {
    hash_with(scheme, password, rounds, Rng::Os)
}

/// `{CRYPT}$y$…`: yescrypt with the parameters libxcrypt uses by default (`$y$j9T$`), for
/// `postward-authd pw -s YESCRYPT`. It verifies under CRYPT, as Dovecot's does.
///
/// # Errors
/// As [`hash`] for CRYPT.
pub fn hash_yescrypt(password: &[u8]) -> Result<String, SchemeError> {
    if password.contains(&0) {
        return Err(SchemeError::Password { scheme: Scheme::Crypt, what: "it contains a NUL byte" });
    }
    Ok(format!("{{{}}}{}", Scheme::Crypt.name(), crypt::hash_yescrypt(password, Rng::Os)?))
}

/// [`hash`], with the salts from `rng`.
fn hash_with(scheme: Scheme, password: &[u8], rounds: Option<u32>, rng: Rng) -> Result<String, SchemeError> {
    if password.contains(&0) {
        return Err(SchemeError::Password { scheme, what: "it contains a NUL byte" });
    }
    let data = match scheme {
        Scheme::Plain => {
            no_rounds(scheme, rounds)?;
            std::str::from_utf8(password)
                .map_err(|_| SchemeError::Password { scheme, what: "PLAIN output must be UTF-8 text" })?
                .to_owned()
        }
        Scheme::Crypt | Scheme::BlfCrypt => crypt::hash_bcrypt(scheme, password, rounds, rng)?,
        Scheme::Sha512Crypt | Scheme::Sha256Crypt => crypt::hash_sha(scheme, password, rounds, rng)?,
        Scheme::Md5Crypt => {
            no_rounds(scheme, rounds)?;
            md5_crypt::hash(password, &rng.crypt_salt(md5_crypt::SALT_LEN)?)
        }
        Scheme::Argon2i | Scheme::Argon2id => argon2::hash(scheme, password, rounds, rng)?,
        Scheme::Pbkdf2 => pbkdf2::hash(password, rounds, rng)?,
        Scheme::Ssha
        | Scheme::Ssha256
        | Scheme::Ssha512
        | Scheme::Sha
        | Scheme::Sha256
        | Scheme::Sha512
        | Scheme::PlainMd5 => {
            no_rounds(scheme, rounds)?;
            digest::hash(scheme, password, rng)?
        }
        Scheme::CramMd5 => {
            no_rounds(scheme, rounds)?;
            encoding::hex(&CramMd5Key::from_password(password).to_stored())
        }
        Scheme::ScramSha1 | Scheme::ScramSha256 => scram::hash(scheme, password, rounds, rng)?,
    };
    Ok(format!("{{{}}}{data}", scheme.name()))
}

fn no_rounds(scheme: Scheme, rounds: Option<u32>) -> Result<(), SchemeError> {
    match rounds {
        Some(_) => Err(SchemeError::NoRounds { scheme }),
        None => Ok(()),
    }
}

/// A stored credential of `scheme` for a password nobody knows, built once (random password):
/// the service verifies unknown users against it so an unknown user costs the same time as a
/// wrong password.
///
/// The cost is doveadm's default for the scheme, so it matches real entries made with
/// `doveadm pw` or `postward-authd pw` without `-r`.
pub fn decoy(scheme: Scheme) -> Stored {
    // Hex keeps the password valid text for PLAIN; 32 random bytes are unguessable either way.
    let mut secret = [0u8; 32];
    random::fill_with_fallback(&mut secret);
    let password = zeroize::Zeroizing::new(encoding::hex(&secret));
    secret.zeroize();
    let text = hash_with(scheme, password.as_bytes(), None, Rng::WithFallback)
        .expect("hashing a NUL-free hex password with default costs and a fallback salt cannot fail");
    Stored::parse(&text, scheme).expect("hash() output parses as its own scheme")
}
