//! MD5-crypt (`$1$`), Poul-Henning Kamp's FreeBSD algorithm, as glibc and Dovecot's
//! `password-scheme-md5crypt.c` compute it.
//!
//! Written here over the `md-5` crate because RustCrypto has no md5-crypt crate and the crates
//! that do (`pwhash` and its forks) are unmaintained. The algorithm is short and fixed:
//! 1. `alt = MD5(password ‖ salt ‖ password)`;
//! 2. `ctx = MD5(password ‖ "$1$" ‖ salt ‖ alt repeated to the password's length ‖ for each bit
//!    of the password length from the low end: a NUL byte if set, else the password's first byte)`;
//! 3. 1000 rounds, each hashing the password or the previous result first and last, with the
//!    salt when the round is not a multiple of 3 and the password when not a multiple of 7;
//! 4. the 16 bytes are written in a permuted order as 22 crypt(3) base64 characters.

use md5::{Digest, Md5};

use super::encoding::CRYPT_ALPHABET;

/// The prefix of an MD5-crypt string.
pub(super) const MAGIC: &str = "$1$";
/// Salt characters glibc reads (and `doveadm pw` writes); longer salts are cut there.
pub(super) const SALT_LEN: usize = 8;
/// Length of the encoded hash after the salt.
pub(super) const HASH_LEN: usize = 22;

/// The 22-character hash part of `$1$salt$hash` for `password` and `salt` (at most
/// [`SALT_LEN`] characters, no `$`).
pub(super) fn hash_part(password: &[u8], salt: &str) -> String {
    let salt = salt.as_bytes();
    let alt = Md5::new().chain_update(password).chain_update(salt).chain_update(password).finalize();

    let mut ctx = Md5::new().chain_update(password).chain_update(MAGIC).chain_update(salt);
    let mut left = password.len();
    while left > 0 {
        let take = left.min(alt.len());
        ctx.update(&alt[..take]);
        left -= take;
    }
    let mut bits = password.len();
    while bits > 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut result = ctx.finalize();

    for round in 0..1000 {
        let mut ctx = Md5::new();
        if round % 2 == 1 {
            ctx.update(password);
        } else {
            ctx.update(result);
        }
        if round % 3 != 0 {
            ctx.update(salt);
        }
        if round % 7 != 0 {
            ctx.update(password);
        }
        if round % 2 == 1 {
            ctx.update(result);
        } else {
            ctx.update(password);
        }
        result = ctx.finalize();
    }

    // Groups of three bytes, each written low 6 bits first; the last byte alone.
    const GROUPS: [[usize; 3]; 5] = [[0, 6, 12], [1, 7, 13], [2, 8, 14], [3, 9, 15], [4, 10, 5]];
    let mut out = String::with_capacity(HASH_LEN);
    for [a, b, c] in GROUPS {
        let word = u32::from(result[a]) << 16 | u32::from(result[b]) << 8 | u32::from(result[c]);
        push_crypt64(&mut out, word, 4);
    }
    push_crypt64(&mut out, u32::from(result[11]), 2);
    out
}

/// The whole `$1$salt$hash` string.
pub(super) fn hash(password: &[u8], salt: &str) -> String {
    format!("{MAGIC}{salt}${}", hash_part(password, salt))
}

/// Appends the low `chars * 6` bits of `word`, least significant six first.
fn push_crypt64(out: &mut String, mut word: u32, chars: usize) {
    for _ in 0..chars {
        out.push(char::from(CRYPT_ALPHABET[(word & 0x3f) as usize]));
        word >>= 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from `mkpasswd -m md5crypt` (libxcrypt 4.4.33) and `doveadm pw -s MD5-CRYPT`.
    #[test]
    fn known_answers() {
        let cases: &[(&[u8], &str, &str)] = &[
            (b"secret", "C4DRkHgL", "NI9IZRlnnP/A.7xUAwssy1"),
            ("pässwörd with spaces".as_bytes(), "NmhHoL3R", "umvf9gbqrK8fX53/9qY4G0"),
            (
                b"a much longer password that exceeds sixteen and more bytes of text 1234567890",
                "4/fq0OiC",
                "4zpWQ5/URtq6LPLzwH54c.",
            ),
        ];
        for (password, salt, want) in cases {
            assert_eq!(hash_part(password, salt), *want, "salt {salt}");
        }
    }

    #[test]
    fn empty_password_and_salt_do_not_panic() {
        assert_eq!(hash_part(b"", "").len(), HASH_LEN);
        assert_eq!(hash(b"x", "ab"), format!("$1$ab${}", hash_part(b"x", "ab")));
    }
}
