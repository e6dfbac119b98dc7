//! Salts and secrets from the OS random source, with a fallback for the two callers that must
//! not fail: the decoy credential and SCRAM keys derived on the fly from a PLAIN password.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::SchemeError;
use super::encoding::CRYPT_ALPHABET;

/// Where a salt comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rng {
    /// The OS random source; its failure is an error (`hash`, i.e. `pw`).
    Os,
    /// The OS random source, else [`fill_with_fallback`]'s bytes (decoys, derived SCRAM keys).
    WithFallback,
}

impl Rng {
    /// Fills `buf` with random bytes.
    pub(super) fn fill(self, buf: &mut [u8]) -> Result<(), SchemeError> {
        match self {
            Rng::Os => getrandom::fill(buf).map_err(SchemeError::Random),
            Rng::WithFallback => {
                fill_with_fallback(buf);
                Ok(())
            }
        }
    }

    /// `len` random characters of the crypt(3) alphabet `./0-9A-Za-z`, the salt text that
    /// `doveadm pw` writes for MD5-CRYPT and PBKDF2.
    pub(super) fn crypt_salt(self, len: usize) -> Result<String, SchemeError> {
        let mut bytes = vec![0u8; len];
        self.fill(&mut bytes)?;
        Ok(bytes.iter().map(|b| char::from(CRYPT_ALPHABET[usize::from(b & 0x3f)])).collect())
    }
}

/// Fills `buf` from the OS random source, or, should that fail, from std's per-process random
/// hasher keys mixed with a counter and the time.
///
/// Design note: the fallback is not a CSPRNG. It is good enough for what it serves: salts need
/// only be unique, and a decoy password need only be unknown to a remote client. std seeds
/// [`RandomState`] from the OS once per thread, so it usually still holds real entropy.
pub(super) fn fill_with_fallback(buf: &mut [u8]) {
    if getrandom::fill(buf).is_ok() {
        return;
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for chunk in buf.chunks_mut(8) {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let word = RandomState::new().hash_one((n, SystemTime::now(), std::process::id())).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypt_salts_use_the_crypt_alphabet() {
        let salt = Rng::Os.crypt_salt(64).unwrap_or_default();
        assert_eq!(salt.len(), 64);
        assert!(salt.bytes().all(|b| CRYPT_ALPHABET.contains(&b)));
    }

    #[test]
    fn fallback_fills_every_byte() {
        let mut a = [0u8; 37];
        let mut b = [0u8; 37];
        fill_with_fallback(&mut a);
        fill_with_fallback(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 37]);
    }
}
