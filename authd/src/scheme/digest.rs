//! Unsalted and salted plain digests: PLAIN-MD5, SHA, SHA256, SHA512, SSHA, SSHA256, SSHA512.
//!
//! Salted forms store `H(password ‖ salt) ‖ salt`, the salt being whatever follows the digest
//! (doveadm writes 4 bytes; other tools more). These are fast hashes: they run inline.

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use super::encoding::{Encoding, ct_eq};
use super::random::Rng;
use super::{Scheme, SchemeError};

/// Salt bytes doveadm appends for SSHA*.
const SALT_LEN: usize = 4;

/// A hash function behind one of these schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algo {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl Algo {
    fn output_len(self) -> usize {
        match self {
            Algo::Md5 => 16,
            Algo::Sha1 => 20,
            Algo::Sha256 => 32,
            Algo::Sha512 => 64,
        }
    }

    /// H(password ‖ salt).
    fn digest(self, password: &[u8], salt: &[u8]) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match self {
            Algo::Md5 => Md5::new().chain_update(password).chain_update(salt).finalize().to_vec(),
            Algo::Sha1 => Sha1::new().chain_update(password).chain_update(salt).finalize().to_vec(),
            Algo::Sha256 => Sha256::new().chain_update(password).chain_update(salt).finalize().to_vec(),
            Algo::Sha512 => Sha512::new().chain_update(password).chain_update(salt).finalize().to_vec(),
        })
    }
}

/// The algorithm of a digest scheme and whether it is salted; `None` for other schemes.
fn algo_of(scheme: Scheme) -> Option<(Algo, bool)> {
    Some(match scheme {
        Scheme::PlainMd5 => (Algo::Md5, false),
        Scheme::Sha => (Algo::Sha1, false),
        Scheme::Sha256 => (Algo::Sha256, false),
        Scheme::Sha512 => (Algo::Sha512, false),
        Scheme::Ssha => (Algo::Sha1, true),
        Scheme::Ssha256 => (Algo::Sha256, true),
        Scheme::Ssha512 => (Algo::Sha512, true),
        _ => return None,
    })
}

/// A decoded digest credential: the digest, then the salt for salted schemes.
#[derive(Clone)]
pub(super) struct DigestHash {
    algo: Algo,
    raw: Zeroizing<Vec<u8>>,
}

impl DigestHash {
    /// Checks the decoded bytes' length for `scheme`: exactly the digest, or (salted) the
    /// digest and at least one salt byte, as Dovecot requires.
    pub(super) fn from_raw(scheme: Scheme, raw: Zeroizing<Vec<u8>>) -> Result<DigestHash, SchemeError> {
        let Some((algo, salted)) = algo_of(scheme) else {
            return Err(SchemeError::Malformed { scheme, what: "not a digest scheme" });
        };
        let ok = if salted { raw.len() > algo.output_len() } else { raw.len() == algo.output_len() };
        if !ok {
            let what = if salted { "shorter than the digest plus a salt" } else { "not the digest's length" };
            return Err(SchemeError::Malformed { scheme, what });
        }
        Ok(DigestHash { algo, raw })
    }

    /// Whether `password` hashes (with the stored salt) to the stored digest.
    pub(super) fn verify(&self, password: &[u8]) -> bool {
        let (digest, salt) = self.raw.split_at(self.algo.output_len());
        ct_eq(&self.algo.digest(password, salt), digest)
    }
}

/// The data part of `{SCHEME}data` for a digest scheme, in its default encoding.
pub(super) fn hash(scheme: Scheme, password: &[u8], rng: Rng) -> Result<String, SchemeError> {
    let Some((algo, salted)) = algo_of(scheme) else {
        return Err(SchemeError::Hash { scheme, what: "not a digest scheme".to_owned() });
    };
    let mut salt = [0u8; SALT_LEN];
    let salt: &[u8] = if salted {
        rng.fill(&mut salt)?;
        &salt
    } else {
        &[]
    };
    let mut raw = algo.digest(password, salt);
    raw.extend_from_slice(salt);
    let encoding = if scheme == Scheme::PlainMd5 { Encoding::Hex } else { Encoding::Base64 };
    Ok(encoding.encode(&raw))
}
