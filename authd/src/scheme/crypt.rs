//! The crypt(3) family: SHA512-CRYPT `$6$`, SHA256-CRYPT `$5$`, bcrypt `$2a$`/`$2b$`/`$2y$`,
//! MD5-CRYPT `$1$` and yescrypt `$y$` (the Debian 11+ shadow default).
//!
//! Dovecot hands these strings to libc `crypt()`, which picks the algorithm from the string's
//! own `$id$`, whatever `{SCHEME}` named it; so do we. Each string is validated completely at
//! parse time, so a tampered store gives a parse error instead of reaching a verifier's
//! corner cases (RUSTSEC-2026-0199: bcrypt's verify panicked on 60 bytes of multi-byte UTF-8).
//!
//! Design note: traditional 13-character DES crypt, BSDi `_` crypt, scrypt `$7$` and
//! gost-yescrypt `$gy$` are refused with an "unsupported" error. No maintained Rust crate
//! implements them and DES crypt reads only the first 8 password bytes; an operator still
//! holding such hashes must rehash, which the error says plainly.

use std::str::FromStr;

use sha_crypt::{Algorithm, CustomizedPasswordHasher, PasswordVerifier, ShaCrypt};
use zeroize::Zeroizing;

use super::encoding::{CRYPT_ALPHABET, is_crypt_text};
use super::random::Rng;
use super::{MAX_MEMORY_BYTES, Scheme, SchemeError, md5_crypt};

/// Which algorithm a crypt string's `$id$` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Md5,
    Sha256,
    Sha512,
    Bcrypt,
    Yescrypt,
}

impl Kind {
    /// The algorithm of a crypt string by its prefix, for the ones this build verifies.
    pub(super) fn detect(text: &str) -> Option<Kind> {
        const PREFIXES: &[(&str, Kind)] = &[
            ("$1$", Kind::Md5),
            ("$5$", Kind::Sha256),
            ("$6$", Kind::Sha512),
            ("$2a$", Kind::Bcrypt),
            ("$2b$", Kind::Bcrypt),
            ("$2y$", Kind::Bcrypt),
            ("$y$", Kind::Yescrypt),
        ];
        PREFIXES.iter().find(|(prefix, _)| text.starts_with(prefix)).map(|&(_, kind)| kind)
    }
}

/// A validated crypt(3) string.
#[derive(Clone)]
pub(super) struct CryptHash {
    kind: Kind,
    text: Zeroizing<String>,
}

impl CryptHash {
    /// Validates `text` as a crypt string this build can verify, as stored under `scheme`.
    pub(super) fn parse(scheme: Scheme, text: &str) -> Result<CryptHash, SchemeError> {
        let malformed = |what| SchemeError::Malformed { scheme, what };
        let unsupported = |what| SchemeError::Unsupported { scheme, what };
        let Some(kind) = Kind::detect(text) else {
            return Err(if text.len() == 13 && is_crypt_text(text) {
                unsupported("traditional DES crypt; rehash the password")
            } else if text.starts_with("$2x$") {
                unsupported("bcrypt $2x$ (the pre-2011 sign-extension bug); rehash the password")
            } else if text.starts_with('_') || text.starts_with("$7$") || text.starts_with("$gy$") {
                unsupported("this crypt(3) algorithm; rehash the password")
            } else {
                malformed("not a crypt(3) string this build verifies ($1$, $5$, $6$, $2a$/$2b$/$2y$, $y$)")
            });
        };
        match kind {
            Kind::Md5 => check_md5(text).map_err(malformed)?,
            Kind::Sha256 | Kind::Sha512 => check_sha(kind, text).map_err(|e| e.with_scheme(scheme))?,
            Kind::Bcrypt => check_bcrypt(text).map_err(malformed)?,
            Kind::Yescrypt => check_yescrypt(text).map_err(malformed)?,
        }
        Ok(CryptHash { kind, text: Zeroizing::new(text.to_owned()) })
    }

    /// The algorithm and its cost field: `$6$rounds=N`, `$2b$12`, `$y$j9T`, `$1`.
    pub(super) fn cost_class(&self) -> String {
        let mut fields = self.text.split('$').skip(1);
        let id = fields.next().unwrap_or_default();
        let cost = fields.next().unwrap_or_default();
        match self.kind {
            Kind::Md5 => "$1".to_owned(),
            Kind::Sha256 | Kind::Sha512 if cost.starts_with("rounds=") => format!("${id}${cost}"),
            Kind::Sha256 | Kind::Sha512 => format!("${id}"),
            Kind::Bcrypt | Kind::Yescrypt => format!("${id}${cost}"),
        }
    }

    /// Whether `password` hashes to this string. Blocking: a deliberate key stretch.
    pub(super) fn verify(&self, password: &[u8]) -> bool {
        let text = self.text.as_str();
        match self.kind {
            Kind::Md5 => {
                // Validated: "$1$" salt "$" hash, salt without '$'.
                let Some((salt, stored)) = text[md5_crypt::MAGIC.len()..].split_once('$') else { return false };
                super::encoding::ct_eq(md5_crypt::hash_part(password, salt).as_bytes(), stored.as_bytes())
            }
            Kind::Sha256 | Kind::Sha512 => ShaCrypt::default().verify_password(password, text).is_ok(),
            // `verify` reports Ok(false) for a wrong password, Err only for a malformed hash,
            // which parse ruled out; both are a failed verification here.
            Kind::Bcrypt => bcrypt::verify(password, text).unwrap_or(false),
            Kind::Yescrypt => yescrypt::Yescrypt::default().verify_password(password, text).is_ok(),
        }
    }
}

/// `$1$salt$hash`: salt of 0–8 characters without `$`, hash of 22 crypt characters.
fn check_md5(text: &str) -> Result<(), &'static str> {
    let rest = &text[md5_crypt::MAGIC.len()..];
    let (salt, hash) = rest.split_once('$').ok_or("no '$' after the salt")?;
    if salt.len() > md5_crypt::SALT_LEN {
        return Err("salt longer than 8 characters");
    }
    if !salt.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("salt is not printable ASCII");
    }
    if hash.len() != md5_crypt::HASH_LEN || !is_crypt_text(hash) {
        return Err("hash is not 22 crypt(3) base64 characters");
    }
    // The last character carries only the top 2 bits of a byte.
    if !last_char_within(hash, 4) {
        return Err("hash has stray bits in its last character");
    }
    Ok(())
}

/// An error from [`check_sha`], which can also be about rounds.
enum ShaError {
    Malformed(&'static str),
    Rounds(u32),
}

impl ShaError {
    fn with_scheme(self, scheme: Scheme) -> SchemeError {
        match self {
            ShaError::Malformed(what) => SchemeError::Malformed { scheme, what },
            ShaError::Rounds(rounds) => {
                SchemeError::RoundsOutOfRange { scheme, rounds, min: SHA_ROUNDS.0, max: SHA_ROUNDS.1 }
            }
        }
    }
}

/// SHA-crypt rounds glibc honours without clamping (and doveadm accepts for `-r`).
const SHA_ROUNDS: (u32, u32) = (1000, 999_999_999);
/// SHA-crypt's default rounds, written without a `rounds=` field.
const SHA_DEFAULT_ROUNDS: u32 = 5000;

/// `$5$[rounds=N$]salt$hash` or the same with `$6$`: a salt of 1–16 crypt characters and a
/// hash of 43 (SHA-256) or 86 (SHA-512) crypt characters.
///
/// glibc clamps rounds outside 1000–999999999 when hashing and writes the clamped value, so a
/// stored string with other rounds was not made by crypt(3): refused rather than guessed at.
fn check_sha(kind: Kind, text: &str) -> Result<(), ShaError> {
    let mut fields = text[3..].split('$');
    let mut salt = fields.next().unwrap_or_default();
    if let Some(rounds) = salt.strip_prefix("rounds=") {
        if rounds.is_empty() || !rounds.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ShaError::Malformed("rounds= is not a number"));
        }
        let rounds: u32 = rounds.parse().map_err(|_| ShaError::Malformed("rounds= is too large"))?;
        if !(SHA_ROUNDS.0..=SHA_ROUNDS.1).contains(&rounds) {
            return Err(ShaError::Rounds(rounds));
        }
        salt = fields.next().unwrap_or_default();
    }
    let hash = fields.next().ok_or(ShaError::Malformed("no '$' after the salt"))?;
    if fields.next().is_some() {
        return Err(ShaError::Malformed("too many '$' fields"));
    }
    if salt.is_empty() || salt.len() > 16 || !is_crypt_text(salt) {
        return Err(ShaError::Malformed("salt is not 1-16 crypt(3) base64 characters"));
    }
    // The last character holds 4 bits (SHA-256, 32 bytes) or 2 bits (SHA-512, 64 bytes).
    let (len, last_bits) = if kind == Kind::Sha256 { (43, 4) } else { (86, 2) };
    if hash.len() != len || !is_crypt_text(hash) {
        return Err(ShaError::Malformed("hash has the wrong length or characters"));
    }
    if !last_char_within(hash, last_bits) {
        return Err(ShaError::Malformed("hash has stray bits in its last character"));
    }
    Ok(())
}

/// `$2a$NN$` + 53 characters: validated by the bcrypt crate's own parser, after checking the
/// length and ASCII ourselves (RUSTSEC-2026-0199).
fn check_bcrypt(text: &str) -> Result<(), &'static str> {
    if text.len() != 60 || !text.is_ascii() {
        return Err("not 60 ASCII characters");
    }
    let cost = &text[4..6];
    if &text[6..7] != "$" || !cost.bytes().all(|b| b.is_ascii_digit()) {
        return Err("no two-digit cost");
    }
    let cost: u32 = cost.parse().map_err(|_| "no two-digit cost")?;
    if !(BCRYPT_COST.0..=BCRYPT_COST.1).contains(&cost) {
        return Err("cost outside 04-31");
    }
    if !text[7..].bytes().all(|b| CRYPT_ALPHABET.contains(&b)) {
        return Err("salt and hash are not bcrypt base64");
    }
    bcrypt::HashParts::from_str(text).map(|_| ()).map_err(|_| "salt or hash has stray bits")
}

/// bcrypt costs (log2 rounds) crypt_blowfish and doveadm accept.
const BCRYPT_COST: (u32, u32) = (4, 31);
/// doveadm's bcrypt cost.
const BCRYPT_DEFAULT_COST: u32 = 5;

/// `$y$params$salt$hash` as libxcrypt writes it, with its memory bounded.
fn check_yescrypt(text: &str) -> Result<(), &'static str> {
    let mut fields = text[3..].split('$');
    let params = fields.next().unwrap_or_default();
    let salt = fields.next().ok_or("no salt")?;
    let hash = fields.next().ok_or("no hash")?;
    if fields.next().is_some() {
        return Err("too many '$' fields");
    }
    if params.is_empty() || params.len() > 48 || !is_crypt_text(params) {
        return Err("parameters are not crypt(3) base64");
    }
    let params = yescrypt::Params::from_str(params).map_err(|_| "unusable parameters")?;
    // V takes 128·r·N bytes; the per-thread blocks 128·r·p more.
    let memory =
        128u64.saturating_mul(u64::from(params.r())).saturating_mul(params.n().saturating_add(u64::from(params.p())));
    if memory > MAX_MEMORY_BYTES {
        return Err("parameters ask for more than 4 GiB of memory");
    }
    if salt.is_empty() || salt.len() > 86 || !is_crypt_text(salt) {
        return Err("salt is not crypt(3) base64");
    }
    if hash.len() != 43 || !is_crypt_text(hash) {
        return Err("hash is not 43 crypt(3) base64 characters");
    }
    Ok(())
}

/// Whether the last character of crypt-base64 `text` encodes a value below `2^bits`: the
/// decoders in the crates we call refuse stray high bits, so parse refuses them first.
fn last_char_within(text: &str, bits: u32) -> bool {
    let last = text.bytes().last().and_then(|c| CRYPT_ALPHABET.iter().position(|&a| a == c));
    last.is_some_and(|v| v < 1 << bits)
}

/// `$2y$NN$…` with a fresh salt: BLF-CRYPT, and CRYPT, which doveadm hashes the same way.
pub(super) fn hash_bcrypt(
    scheme: Scheme,
    password: &[u8],
    rounds: Option<u32>,
    rng: Rng,
) -> Result<String, SchemeError> {
    let cost = rounds.unwrap_or(BCRYPT_DEFAULT_COST);
    if !(BCRYPT_COST.0..=BCRYPT_COST.1).contains(&cost) {
        return Err(SchemeError::RoundsOutOfRange { scheme, rounds: cost, min: BCRYPT_COST.0, max: BCRYPT_COST.1 });
    }
    let mut salt = [0u8; 16];
    rng.fill(&mut salt)?;
    // Like crypt_blowfish, the crate reads at most 72 password bytes.
    let parts =
        bcrypt::hash_with_salt(password, cost, salt).map_err(|e| SchemeError::Hash { scheme, what: e.to_string() })?;
    Ok(parts.format_for_version(bcrypt::Version::TwoY))
}

/// `$y$j9T$salt$hash`: yescrypt with the crate's default parameters (libxcrypt's default
/// cost, N = 4096, r = 32, p = 1) and a 16-byte salt.
pub(super) fn hash_yescrypt(password: &[u8], rng: Rng) -> Result<String, SchemeError> {
    use yescrypt::PasswordHasher as _;
    let mut salt = [0u8; 16];
    rng.fill(&mut salt)?;
    let hashed = yescrypt::Yescrypt::default()
        .hash_password_with_salt(password, &salt)
        .map_err(|e| SchemeError::Hash { scheme: Scheme::Crypt, what: e.to_string() })?;
    Ok(hashed.to_string())
}

/// `$6$[rounds=N$]salt$hash` (or `$5$`) with a 16-character salt, as doveadm writes it.
pub(super) fn hash_sha(scheme: Scheme, password: &[u8], rounds: Option<u32>, rng: Rng) -> Result<String, SchemeError> {
    let rounds = rounds.unwrap_or(SHA_DEFAULT_ROUNDS);
    let out_of_range = || SchemeError::RoundsOutOfRange { scheme, rounds, min: SHA_ROUNDS.0, max: SHA_ROUNDS.1 };
    if !(SHA_ROUNDS.0..=SHA_ROUNDS.1).contains(&rounds) {
        return Err(out_of_range());
    }
    let params = sha_crypt::Params::new(rounds).map_err(|_| out_of_range())?;
    let algorithm = if scheme == Scheme::Sha256Crypt { Algorithm::Sha256Crypt } else { Algorithm::Sha512Crypt };
    // 12 random bytes are 16 salt characters once the crate encodes them.
    let mut salt = [0u8; 12];
    rng.fill(&mut salt)?;
    let hashed = ShaCrypt::new(algorithm, params)
        .hash_password_customized(password, &salt, None, None, params)
        .map_err(|e| SchemeError::Hash { scheme, what: e.to_string() })?;
    let text = hashed.as_str();
    // The crate always writes `rounds=`; crypt(3) and doveadm leave the default out, and the
    // field does not enter the computation, so dropping it gives doveadm's exact string.
    Ok(if rounds == SHA_DEFAULT_ROUNDS {
        text.replacen(&format!("$rounds={SHA_DEFAULT_ROUNDS}$"), "$", 1)
    } else {
        text.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_prefix() {
        assert_eq!(Kind::detect("$1$ab$x"), Some(Kind::Md5));
        assert_eq!(Kind::detect("$2b$05$x"), Some(Kind::Bcrypt));
        assert_eq!(Kind::detect("$y$j9T$a$b"), Some(Kind::Yescrypt));
        assert_eq!(Kind::detect("$7$x"), None);
        assert_eq!(Kind::detect("plain"), None);
    }

    #[test]
    fn default_rounds_field_is_left_out() {
        let text = hash_sha(Scheme::Sha512Crypt, b"x", None, Rng::Os).unwrap_or_default();
        assert!(text.starts_with("$6$") && !text.contains("rounds="), "{text}");
        assert_eq!(text.split('$').map(str::len).collect::<Vec<_>>(), [0, 1, 16, 86]);
        let text = hash_sha(Scheme::Sha256Crypt, b"x", Some(1000), Rng::Os).unwrap_or_default();
        assert!(text.starts_with("$5$rounds=1000$"), "{text}");
        assert!(CryptHash::parse(Scheme::Sha256Crypt, &text).is_ok_and(|h| h.verify(b"x") && !h.verify(b"y")));
    }

    #[test]
    fn last_character_bits() {
        assert!(last_char_within("abc.", 2));
        assert!(last_char_within("abc1", 2));
        assert!(!last_char_within("abc2", 2));
        assert!(!last_char_within("", 2));
    }
}
