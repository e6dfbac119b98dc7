//! Dovecot's own PBKDF2 scheme: `$1$<salt>$<rounds>$<hex>`, PBKDF2-HMAC-SHA1 with a 20-byte
//! key, where the salt is used as its ASCII text, not decoded (`password-scheme-pbkdf2.c`).
//! It shares nothing with other tools' PBKDF2 strings.

use sha1::Sha1;
use zeroize::Zeroizing;

use super::encoding::{ct_eq, hex, unhex};
use super::random::Rng;
use super::{Scheme, SchemeError};

const SCHEME: Scheme = Scheme::Pbkdf2;
/// doveadm's rounds when `-r` is not given.
const DEFAULT_ROUNDS: u32 = 5000;
/// Salt characters doveadm writes.
const SALT_LEN: usize = 16;
/// PBKDF2-HMAC-SHA1 output length Dovecot uses.
const KEY_LEN: usize = 20;

/// A parsed `{PBKDF2}` value.
#[derive(Clone)]
pub(super) struct Pbkdf2Hash {
    salt: Zeroizing<String>,
    rounds: u32,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl Pbkdf2Hash {
    pub(super) fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Parses `$1$salt$rounds$hex`: a non-empty salt, rounds ≥ 1 and 40 hex digits.
    pub(super) fn parse(text: &str) -> Result<Pbkdf2Hash, SchemeError> {
        let malformed = |what| SchemeError::Malformed { scheme: SCHEME, what };
        let rest = text.strip_prefix("$1$").ok_or(malformed("does not start with $1$"))?;
        let mut fields = rest.split('$');
        let (Some(salt), Some(rounds), Some(key), None) = (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(malformed("not $1$salt$rounds$hash"));
        };
        if salt.is_empty() {
            return Err(malformed("empty salt"));
        }
        if rounds.is_empty() || !rounds.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed("rounds is not a number"));
        }
        let rounds: u32 = rounds.parse().map_err(|_| malformed("rounds is too large"))?;
        if rounds == 0 {
            return Err(SchemeError::RoundsOutOfRange { scheme: SCHEME, rounds, min: 1, max: u32::MAX });
        }
        let key: [u8; KEY_LEN] =
            unhex(key).and_then(|k| k.try_into().ok()).ok_or(malformed("hash is not 40 hex digits"))?;
        Ok(Pbkdf2Hash { salt: Zeroizing::new(salt.to_owned()), rounds, key: Zeroizing::new(key) })
    }

    /// Whether `password` derives the stored key. Blocking: `rounds` HMAC-SHA1 iterations.
    pub(super) fn verify(&self, password: &[u8]) -> bool {
        ct_eq(&derive(password, &self.salt, self.rounds)[..], &self.key[..])
    }
}

fn derive(password: &[u8], salt: &str, rounds: u32) -> Zeroizing<[u8; KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    ::pbkdf2::pbkdf2_hmac::<Sha1>(password, salt.as_bytes(), rounds, &mut key[..]);
    key
}

/// `$1$salt$rounds$hex` with a fresh 16-character salt; `rounds` ≥ 1 (doveadm's range).
pub(super) fn hash(password: &[u8], rounds: Option<u32>, rng: Rng) -> Result<String, SchemeError> {
    let rounds = rounds.unwrap_or(DEFAULT_ROUNDS);
    if rounds == 0 {
        return Err(SchemeError::RoundsOutOfRange { scheme: SCHEME, rounds, min: 1, max: u32::MAX });
    }
    let salt = rng.crypt_salt(SALT_LEN)?;
    Ok(format!("$1${salt}${rounds}${}", hex(&derive(password, &salt, rounds)[..])))
}
