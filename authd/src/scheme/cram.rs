//! CRAM-MD5 keys (RFC 2195): HMAC-MD5 keyed with the password, kept as the two MD5 states
//! after the key's inner and outer pad blocks.
//!
//! That is exactly what Dovecot stores as `{CRAM-MD5}`: 32 bytes, the outer state's a, b, c, d
//! then the inner state's, each a little-endian u32 (`src/lib/hmac-cram-md5.c`). Finishing an
//! HMAC from such a state needs MD5 compression from a custom IV, which the `md-5` crate exposes
//! as `block_api::compress`; the padding around it is done here.

use std::fmt;

use md5::block_api::compress;
use md5::{Digest, Md5};
use zeroize::Zeroize;

use super::encoding::ct_eq;

/// MD5's initial state (RFC 1321 §3.3).
const MD5_IV: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
/// MD5 and HMAC-MD5 block size.
const BLOCK: usize = 64;
/// Length of a stored `{CRAM-MD5}` state.
pub(super) const STORED_LEN: usize = 32;

/// A CRAM-MD5 key: enough to answer any challenge, not enough to recover the password.
#[derive(Clone)]
pub struct CramMd5Key {
    /// MD5 state after the block `key ⊕ 0x36…` (HMAC's inner hash).
    inner: [u32; 4],
    /// MD5 state after the block `key ⊕ 0x5c…` (HMAC's outer hash).
    outer: [u32; 4],
}

impl CramMd5Key {
    /// The key for `password` (RFC 2104: a key longer than a block is hashed first).
    pub(super) fn from_password(password: &[u8]) -> CramMd5Key {
        let mut key = [0u8; BLOCK];
        if password.len() > BLOCK {
            key[..16].copy_from_slice(&Md5::digest(password));
        } else {
            key[..password.len()].copy_from_slice(password);
        }
        let state_after = |pad: u8| {
            let mut block = [0u8; BLOCK];
            for (b, k) in block.iter_mut().zip(key.iter()) {
                *b = k ^ pad;
            }
            let mut state = MD5_IV;
            compress(&mut state, &[block]);
            block.zeroize();
            state
        };
        let inner = state_after(0x36);
        let outer = state_after(0x5c);
        key.zeroize();
        CramMd5Key { inner, outer }
    }

    /// The key from Dovecot's stored layout: outer a, b, c, d, then inner, little-endian.
    pub(super) fn from_stored(raw: &[u8; STORED_LEN]) -> CramMd5Key {
        let word = |i: usize| u32::from_le_bytes([raw[4 * i], raw[4 * i + 1], raw[4 * i + 2], raw[4 * i + 3]]);
        CramMd5Key { outer: [word(0), word(1), word(2), word(3)], inner: [word(4), word(5), word(6), word(7)] }
    }

    /// Dovecot's stored layout (see [`CramMd5Key::from_stored`]).
    pub(super) fn to_stored(&self) -> [u8; STORED_LEN] {
        let mut out = [0u8; STORED_LEN];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.outer.iter().chain(self.inner.iter())) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    /// Whether two keys are the same, in constant time.
    pub(super) fn matches(&self, other: &CramMd5Key) -> bool {
        ct_eq(&self.to_stored(), &other.to_stored())
    }

    /// HMAC-MD5(password, challenge), from the precomputed inner/outer MD5 states when stored
    /// as {CRAM-MD5}. The client's CRAM-MD5 response is this, in lowercase hex.
    pub fn hmac(&self, challenge: &[u8]) -> [u8; 16] {
        let inner = finish_md5(self.inner, challenge);
        finish_md5(self.outer, &inner)
    }
}

impl Drop for CramMd5Key {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

impl fmt::Debug for CramMd5Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CramMd5Key").finish_non_exhaustive()
    }
}

/// MD5 of (one block already absorbed into `state`) ‖ `data`: compresses `data` and MD5's
/// padding (RFC 1321 §3.1-3.2: 0x80, zeros, the bit length little-endian).
fn finish_md5(mut state: [u32; 4], data: &[u8]) -> [u8; 16] {
    let mut blocks = data.chunks_exact(BLOCK);
    for block in blocks.by_ref() {
        let mut b = [0u8; BLOCK];
        b.copy_from_slice(block);
        compress(&mut state, &[b]);
    }
    let tail = blocks.remainder();
    let bits = ((BLOCK + data.len()) as u64).wrapping_mul(8);
    // The tail, 0x80 and the 8-byte length fit in one block or spill into a second.
    let mut last = [0u8; 2 * BLOCK];
    last[..tail.len()].copy_from_slice(tail);
    last[tail.len()] = 0x80;
    let end = if tail.len() + 1 + 8 <= BLOCK { BLOCK } else { 2 * BLOCK };
    last[end - 8..end].copy_from_slice(&bits.to_le_bytes());
    for block in last[..end].chunks_exact(BLOCK) {
        let mut b = [0u8; BLOCK];
        b.copy_from_slice(block);
        compress(&mut state, &[b]);
    }
    last.zeroize();
    let mut out = [0u8; 16];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state.iter()) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    state.zeroize();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, KeyInit, Mac};

    fn reference(key: &[u8], data: &[u8]) -> [u8; 16] {
        let mut mac = <Hmac<Md5> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// The hand-made padding against the hmac crate, across the one/two block boundary and for
    /// keys longer than a block.
    #[test]
    fn matches_hmac_md5_for_every_tail_length() {
        let data: Vec<u8> = (0..=200u8).collect();
        for key in [&b"tanstaaftanstaaf"[..], &[7u8; 64], &[9u8; 65], b""] {
            let cram = CramMd5Key::from_password(key);
            for len in 0..data.len() {
                assert_eq!(cram.hmac(&data[..len]), reference(key, &data[..len]), "key {} len {len}", key.len());
            }
        }
    }

    #[test]
    fn stored_layout_round_trips() {
        let key = CramMd5Key::from_password(b"secret");
        let again = CramMd5Key::from_stored(&key.to_stored());
        assert!(key.matches(&again));
        assert!(!key.matches(&CramMd5Key::from_password(b"secreT")));
        assert_eq!(format!("{key:?}"), "CramMd5Key { .. }");
    }
}
