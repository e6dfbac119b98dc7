//! The text encodings of stored credentials: Dovecot's base64 and hex (and the `.b64`, `.base64`,
//! `.hex` suffixes that override a scheme's default), the crypt(3) alphabet, and the
//! constant-time comparison every verifier ends with.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use subtle::ConstantTimeEq;

/// crypt(3)'s base64 alphabet (`itoa64`), in value order.
pub(super) const CRYPT_ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Standard base64, padded on output as doveadm writes it; on input padding is optional, since
/// LDAP exports and hand-made entries drop it.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How a scheme's raw bytes are written as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    Base64,
    Hex,
}

impl Encoding {
    /// The encoding named by a `{SCHEME.suffix}` suffix (case-insensitive).
    pub(super) fn from_suffix(suffix: &str) -> Option<Encoding> {
        if suffix.eq_ignore_ascii_case("b64") || suffix.eq_ignore_ascii_case("base64") {
            Some(Encoding::Base64)
        } else if suffix.eq_ignore_ascii_case("hex") {
            Some(Encoding::Hex)
        } else {
            None
        }
    }

    /// Decodes `text`; `None` when it is not valid in this encoding.
    pub(super) fn decode(self, text: &str) -> Option<Vec<u8>> {
        match self {
            Encoding::Base64 => BASE64.decode(text).ok(),
            Encoding::Hex => unhex(text),
        }
    }

    /// Encodes `bytes` as doveadm prints them (padded base64, lowercase hex).
    pub(super) fn encode(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Base64 => BASE64.encode(bytes),
            Encoding::Hex => hex(bytes),
        }
    }
}

/// Lowercase hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Hex of either case; `None` for an odd length or a non-hex character.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes.chunks_exact(2).map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?)).collect()
}

/// Decodes standard base64 (padding optional).
pub(super) fn unbase64(text: &str) -> Option<Vec<u8>> {
    Encoding::Base64.decode(text)
}

/// Standard padded base64.
pub(super) fn base64(bytes: &[u8]) -> String {
    Encoding::Base64.encode(bytes)
}

/// True when every byte of `text` is in the crypt(3) alphabet.
pub(super) fn is_crypt_text(text: &str) -> bool {
    text.bytes().all(|b| CRYPT_ALPHABET.contains(&b))
}

/// Compares two secrets in time independent of where they differ (a length difference may
/// show: lengths are public properties of a scheme).
pub(super) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00ABff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("é1"), None);
    }

    #[test]
    fn base64_padding_is_optional_on_input_only() {
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(unbase64("YWI="), Some(b"ab".to_vec()));
        assert_eq!(unbase64("YWI"), Some(b"ab".to_vec()));
        assert_eq!(unbase64("YW$="), None);
    }

    #[test]
    fn suffixes() {
        assert_eq!(Encoding::from_suffix("B64"), Some(Encoding::Base64));
        assert_eq!(Encoding::from_suffix("base64"), Some(Encoding::Base64));
        assert_eq!(Encoding::from_suffix("HEX"), Some(Encoding::Hex));
        assert_eq!(Encoding::from_suffix("b32"), None);
    }

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
