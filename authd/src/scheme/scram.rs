//! SCRAM server keys (RFC 5802 §3, RFC 7677) and Dovecot's stored form of them,
//! `iterations,base64(salt),base64(StoredKey),base64(ServerKey)` (`password-scheme-scram.c`).
//!
//! SaltedPassword = PBKDF2-HMAC-H(password, salt, i), ClientKey = HMAC(SaltedPassword,
//! "Client Key"), StoredKey = H(ClientKey), ServerKey = HMAC(SaltedPassword, "Server Key").
//! Like Dovecot, the password is used as given, without SASLprep.

use std::fmt;

use hmac::{EagerHash, Hmac, KeyInit, Mac};
use zeroize::{Zeroize, Zeroizing};

use super::encoding::{base64, ct_eq, unbase64};
use super::random::Rng;
use super::{Scheme, SchemeError};

/// Dovecot refuses stored SCRAM credentials with fewer iterations (and RFC 7677 §4 asks for at
/// least 4096); it is also what doveadm writes.
pub const MIN_ITERATIONS: u32 = 4096;
/// Salt bytes doveadm writes, and what keys derived from PLAIN use.
pub const SALT_LEN: usize = 16;

/// SCRAM-SHA-256 server keys for one account.
#[derive(Clone)]
pub struct ScramKeys {
    /// The `i=` the server announces.
    pub iterations: u32,
    /// The `s=` the server announces (raw bytes, base64 on the wire).
    pub salt: Vec<u8>,
    /// H(ClientKey): checks the client's proof.
    pub stored_key: [u8; 32],
    /// Signs the server-final message.
    pub server_key: [u8; 32],
}

/// SCRAM-SHA-1 server keys for one account (see [`ScramKeys`]).
#[derive(Clone)]
pub struct ScramSha1Keys {
    /// The `i=` the server announces.
    pub iterations: u32,
    /// The `s=` the server announces.
    pub salt: Vec<u8>,
    /// H(ClientKey).
    pub stored_key: [u8; 20],
    /// Signs the server-final message.
    pub server_key: [u8; 20],
}

impl ScramKeys {
    /// Derive from a password: SaltedPassword = PBKDF2-HMAC-SHA256(pw, salt, i), ClientKey =
    /// HMAC(SP,"Client Key"), StoredKey = SHA256(ClientKey), ServerKey = HMAC(SP,"Server Key")
    /// (RFC 5802/7677). Blocking: `iterations` HMAC rounds.
    pub fn derive(password: &[u8], salt: &[u8], iterations: u32) -> ScramKeys {
        let (stored_key, server_key) = derive::<sha2::Sha256, 32>(password, salt, iterations);
        ScramKeys { iterations, salt: salt.to_vec(), stored_key, server_key }
    }

    /// Whether `password` derives these keys (only StoredKey is compared, as Dovecot does).
    pub(super) fn verify(&self, password: &[u8]) -> bool {
        let mut derived = ScramKeys::derive(password, &self.salt, self.iterations);
        let ok = ct_eq(&derived.stored_key, &self.stored_key);
        derived.server_key.zeroize();
        ok
    }

    /// Parses Dovecot's stored form.
    pub(super) fn parse(text: &str) -> Result<ScramKeys, SchemeError> {
        let (iterations, salt, stored_key, server_key) = parse_fields(Scheme::ScramSha256, text)?;
        Ok(ScramKeys { iterations, salt, stored_key, server_key })
    }

    /// Dovecot's stored form.
    fn to_stored(&self) -> String {
        stored_form(self.iterations, &self.salt, &self.stored_key, &self.server_key)
    }
}

impl ScramSha1Keys {
    /// [`ScramKeys::derive`] with SHA-1.
    pub fn derive(password: &[u8], salt: &[u8], iterations: u32) -> ScramSha1Keys {
        let (stored_key, server_key) = derive::<sha1::Sha1, 20>(password, salt, iterations);
        ScramSha1Keys { iterations, salt: salt.to_vec(), stored_key, server_key }
    }

    /// Whether `password` derives these keys (StoredKey compared).
    pub(super) fn verify(&self, password: &[u8]) -> bool {
        let mut derived = ScramSha1Keys::derive(password, &self.salt, self.iterations);
        let ok = ct_eq(&derived.stored_key, &self.stored_key);
        derived.server_key.zeroize();
        ok
    }

    /// Parses Dovecot's stored form.
    pub(super) fn parse(text: &str) -> Result<ScramSha1Keys, SchemeError> {
        let (iterations, salt, stored_key, server_key) = parse_fields(Scheme::ScramSha1, text)?;
        Ok(ScramSha1Keys { iterations, salt, stored_key, server_key })
    }

    fn to_stored(&self) -> String {
        stored_form(self.iterations, &self.salt, &self.stored_key, &self.server_key)
    }
}

impl Drop for ScramKeys {
    fn drop(&mut self) {
        self.stored_key.zeroize();
        self.server_key.zeroize();
    }
}

impl Drop for ScramSha1Keys {
    fn drop(&mut self) {
        self.stored_key.zeroize();
        self.server_key.zeroize();
    }
}

impl fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramKeys").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

impl fmt::Debug for ScramSha1Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramSha1Keys").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

/// (StoredKey, ServerKey) for hash `D`, whose output is `N` bytes.
fn derive<D: EagerHash, const N: usize>(password: &[u8], salt: &[u8], iterations: u32) -> ([u8; N], [u8; N]) {
    let mut salted = Zeroizing::new([0u8; N]);
    ::pbkdf2::pbkdf2_hmac::<D>(password, salt, iterations, &mut salted[..]);
    let mut client_key = hmac::<D, N>(&salted[..], b"Client Key");
    let mut stored_key = [0u8; N];
    stored_key.copy_from_slice(&D::digest(client_key));
    client_key.zeroize();
    (stored_key, hmac::<D, N>(&salted[..], b"Server Key"))
}

fn hmac<D: EagerHash, const N: usize>(key: &[u8], data: &[u8]) -> [u8; N] {
    // HMAC takes keys of any length: this cannot fail.
    let Ok(mut mac) = <Hmac<D> as KeyInit>::new_from_slice(key) else { unreachable!("HMAC accepts any key length") };
    mac.update(data);
    let mut out = [0u8; N];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

fn stored_form(iterations: u32, salt: &[u8], stored_key: &[u8], server_key: &[u8]) -> String {
    format!("{iterations},{},{},{}", base64(salt), base64(stored_key), base64(server_key))
}

/// `iter,salt,stored,server` with iter ≥ [`MIN_ITERATIONS`], a non-empty salt and keys of
/// exactly `N` bytes.
/// Iterations, salt, StoredKey and ServerKey.
type Fields<const N: usize> = (u32, Vec<u8>, [u8; N], [u8; N]);

fn parse_fields<const N: usize>(scheme: Scheme, text: &str) -> Result<Fields<N>, SchemeError> {
    let malformed = |what| SchemeError::Malformed { scheme, what };
    let mut fields = text.split(',');
    let (Some(iterations), Some(salt), Some(stored), Some(server), None) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(malformed("not iterations,salt,StoredKey,ServerKey"));
    };
    if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("iterations is not a number"));
    }
    let iterations: u32 = iterations.parse().map_err(|_| malformed("iterations is too large"))?;
    if iterations < MIN_ITERATIONS {
        return Err(SchemeError::RoundsOutOfRange { scheme, rounds: iterations, min: MIN_ITERATIONS, max: u32::MAX });
    }
    let salt = unbase64(salt).filter(|s| !s.is_empty()).ok_or(malformed("salt is not base64"))?;
    let key = |text: &str| -> Result<[u8; N], SchemeError> {
        let bytes = Zeroizing::new(unbase64(text).ok_or(malformed("key is not base64"))?);
        bytes[..].try_into().map_err(|_| malformed("key has the wrong length"))
    };
    Ok((iterations, salt, key(stored)?, key(server)?))
}

/// The data part of `{SCRAM-SHA-…}data` with a fresh salt; `rounds` ≥ 4096 (doveadm 2.3 always
/// writes 4096 and ignores `-r`; accepting more is harmless, since Dovecot reads any count).
pub(super) fn hash(scheme: Scheme, password: &[u8], rounds: Option<u32>, rng: Rng) -> Result<String, SchemeError> {
    let iterations = rounds.unwrap_or(MIN_ITERATIONS);
    if iterations < MIN_ITERATIONS {
        return Err(SchemeError::RoundsOutOfRange { scheme, rounds: iterations, min: MIN_ITERATIONS, max: u32::MAX });
    }
    let mut salt = [0u8; SALT_LEN];
    rng.fill(&mut salt)?;
    Ok(if scheme == Scheme::ScramSha1 {
        ScramSha1Keys::derive(password, &salt, iterations).to_stored()
    } else {
        ScramKeys::derive(password, &salt, iterations).to_stored()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3: user "user", password "pencil". The server checks the client's proof
    /// against StoredKey and signs with ServerKey; both must reproduce the RFC's messages.
    #[test]
    fn rfc7677_vector() {
        let salt = unbase64("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap_or_default();
        let keys = ScramKeys::derive(b"pencil", &salt, 4096);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let proof = unbase64("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=").unwrap_or_default();
        let signature: [u8; 32] = hmac::<sha2::Sha256, 32>(&keys.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(signature.iter()).map(|(p, s)| p ^ s).collect();
        assert_eq!(<sha2::Sha256 as sha2::Digest>::digest(&client_key)[..], keys.stored_key[..]);
        let server_signature = hmac::<sha2::Sha256, 32>(&keys.server_key, auth_message.as_bytes());
        assert_eq!(base64(&server_signature), "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        // Another password gives keys the same proof does not satisfy.
        let other = ScramKeys::derive(b"pencil!", &salt, 4096);
        assert_ne!(other.stored_key, keys.stored_key);
    }

    /// RFC 5802 §5 (SCRAM-SHA-1): user "user", password "pencil".
    #[test]
    fn rfc5802_vector() {
        let salt = unbase64("QSXCR+Q6sek8bf92").unwrap_or_default();
        let keys = ScramSha1Keys::derive(b"pencil", &salt, 4096);
        let auth_message = "n=user,r=fyko+d2lbbFgONRv9qkxdawL,\
            r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,\
            c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";
        let proof = unbase64("v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=").unwrap_or_default();
        let signature: [u8; 20] = hmac::<sha1::Sha1, 20>(&keys.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(signature.iter()).map(|(p, s)| p ^ s).collect();
        assert_eq!(<sha1::Sha1 as sha2::Digest>::digest(&client_key)[..], keys.stored_key[..]);
        let server_signature = hmac::<sha1::Sha1, 20>(&keys.server_key, auth_message.as_bytes());
        assert_eq!(base64(&server_signature), "rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    }

    #[test]
    fn stored_form_round_trips_and_debug_hides_keys() {
        let keys = ScramKeys::derive(b"pw", b"0123456789abcdef", 4096);
        let parsed = ScramKeys::parse(&keys.to_stored()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((parsed.iterations, &parsed.salt, parsed.stored_key), (4096, &keys.salt, keys.stored_key));
        assert_eq!(parsed.server_key, keys.server_key);
        assert_eq!(format!("{keys:?}"), "ScramKeys { iterations: 4096, .. }");
    }
}
