//! ARGON2I and ARGON2ID: the PHC strings libsodium writes for Dovecot
//! (`$argon2id$v=19$m=65536,t=3,p=1$salt$hash`), verified with RustCrypto's `argon2`.
//!
//! doveadm's `-r` is libsodium's `opslimit`; Dovecot picks the memory from it in steps
//! (`password-scheme-sodium.c`). The table below was read off `doveadm pw -r N` 2.3.19.1.

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use zeroize::Zeroizing;

use super::random::Rng;
use super::{MAX_MEMORY_BYTES, Scheme, SchemeError};

/// Salt bytes libsodium uses.
const SALT_LEN: usize = 16;
/// Hash bytes libsodium writes.
const OUTPUT_LEN: usize = 32;

/// A validated Argon2 PHC string.
#[derive(Clone)]
pub(super) struct Argon2Hash {
    text: Zeroizing<String>,
}

impl Argon2Hash {
    /// Validates `text` as a PHC string of `scheme`'s variant whose parameters the `argon2` crate
    /// accepts and whose memory stays under [`MAX_MEMORY_BYTES`].
    pub(super) fn parse(scheme: Scheme, text: &str) -> Result<Argon2Hash, SchemeError> {
        let malformed = |what| SchemeError::Malformed { scheme, what };
        let prefix = if scheme == Scheme::Argon2i { "$argon2i$" } else { "$argon2id$" };
        if !text.starts_with(prefix) {
            return Err(malformed("not a PHC string of this Argon2 variant"));
        }
        let hash = PasswordHash::new(text).map_err(|_| malformed("not a valid PHC string"))?;
        if hash.salt.is_none() || hash.hash.is_none() {
            return Err(malformed("no salt or no hash"));
        }
        if let Some(version) = hash.version {
            Version::try_from(version).map_err(|_| malformed("unknown Argon2 version"))?;
        }
        let params = Params::try_from(&hash).map_err(|_| malformed("unusable Argon2 parameters"))?;
        if u64::from(params.m_cost()) * 1024 > MAX_MEMORY_BYTES {
            return Err(malformed("parameters ask for more than 4 GiB of memory"));
        }
        Ok(Argon2Hash { text: Zeroizing::new(text.to_owned()) })
    }

    /// The variant, version and parameters: `$argon2id$v=19$m=65536,t=3,p=1`.
    pub(super) fn cost_class(&self) -> String {
        self.text.split('$').take(4).collect::<Vec<_>>().join("$")
    }

    /// Whether `password` hashes to this string. Blocking: memory-hard, tens of milliseconds
    /// and `m` KiB at doveadm's defaults.
    pub(super) fn verify(&self, password: &[u8]) -> bool {
        // Parsed again: cheap next to the hash, and the parsed form cannot be zeroized.
        match PasswordHash::new(&self.text) {
            Ok(hash) => Argon2::default().verify_password(password, &hash).is_ok(),
            Err(_) => false,
        }
    }
}

/// (memory KiB, passes) doveadm 2.3.19.1 uses for `-r rounds` (`None`: no `-r`).
///
/// Design note: for ARGON2ID libsodium never writes fewer than 3 passes, so `-r 1`, `-r 2` and
/// the default all give t=3; ARGON2I refuses fewer than 3.
fn costs(scheme: Scheme, rounds: Option<u32>) -> Result<(u32, u32), SchemeError> {
    const MIB: u32 = 1024;
    if scheme == Scheme::Argon2i {
        let rounds = rounds.unwrap_or(4);
        if rounds < 3 {
            return Err(SchemeError::RoundsOutOfRange { scheme, rounds, min: 3, max: u32::MAX });
        }
        let memory = match rounds {
            8.. => 512 * MIB,
            6..=7 => 128 * MIB,
            _ => 32 * MIB,
        };
        Ok((memory, rounds))
    } else {
        let rounds = rounds.unwrap_or(2);
        if rounds < 1 {
            return Err(SchemeError::RoundsOutOfRange { scheme, rounds, min: 1, max: u32::MAX });
        }
        let memory = match rounds {
            4.. => 1024 * MIB,
            3 => 256 * MIB,
            _ => 64 * MIB,
        };
        Ok((memory, rounds.max(3)))
    }
}

/// `$argon2…$v=19$m=…,t=…,p=1$salt$hash` with a fresh 16-byte salt and doveadm's costs.
pub(super) fn hash(scheme: Scheme, password: &[u8], rounds: Option<u32>, rng: Rng) -> Result<String, SchemeError> {
    let (memory, passes) = costs(scheme, rounds)?;
    let failed = |e: &dyn std::fmt::Display| SchemeError::Hash { scheme, what: e.to_string() };
    let params = Params::new(memory, passes, 1, Some(OUTPUT_LEN)).map_err(|e| failed(&e))?;
    let algorithm = if scheme == Scheme::Argon2i { Algorithm::Argon2i } else { Algorithm::Argon2id };
    let mut salt = [0u8; SALT_LEN];
    rng.fill(&mut salt)?;
    let hashed = Argon2::new(algorithm, Version::V0x13, params)
        .hash_password_with_salt(password, &salt)
        .map_err(|e| failed(&e))?;
    Ok(hashed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read off `doveadm pw -s ARGON2I/ARGON2ID -r N` 2.3.19.1.
    #[test]
    fn doveadm_cost_table() {
        let id = |r| costs(Scheme::Argon2id, r).ok();
        assert_eq!(id(None), Some((65536, 3)));
        assert_eq!(id(Some(1)), Some((65536, 3)));
        assert_eq!(id(Some(3)), Some((262144, 3)));
        assert_eq!(id(Some(5)), Some((1048576, 5)));
        assert!(id(Some(0)).is_none());
        let i = |r| costs(Scheme::Argon2i, r).ok();
        assert_eq!(i(None), Some((32768, 4)));
        assert_eq!(i(Some(3)), Some((32768, 3)));
        assert_eq!(i(Some(6)), Some((131072, 6)));
        assert_eq!(i(Some(9)), Some((524288, 9)));
        assert!(i(Some(2)).is_none());
    }
}
