//! Cryptography: canonical JSON (JCS), domain-separated Ed25519, X25519,
//! HKDF, HPKE, Shamir over GF(256), chunked AES-256-GCM, the `sealed-bid/1`
//! envelopes, RFC 9162 Merkle trees and the transparency log's formats, key
//! proofs, key files and confidentiality at rest.
//!
//! Ed25519 comes from ed25519-dalek; X25519, HKDF, AES-GCM, HMAC and SHA-256
//! from OpenSSL. Every byte layout is specified in `docs/PROTOCOL.md`.

pub mod atrest;
pub mod envelope;
pub mod hkdf;
pub mod hpke;
pub mod jcs;
pub mod keyfile;
pub mod keyproof;
pub mod merkle;
pub mod opening;
pub mod shamir;
pub mod sign;
pub mod stream;
pub mod translog;
pub mod x25519;

use base64::Engine;

pub fn sha256(data: &[u8]) -> [u8; 32] {
    openssl::sha::sha256(data)
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha256(data))
}

/// `N` bytes from the operating system's CSPRNG (via OpenSSL).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    openssl::rand::rand_bytes(&mut b).expect("the OS random generator is available");
    b
}

/// A bearer secret for a person (session, e-mail link): 32 random bytes,
/// base64url, with a readable prefix. Only its SHA-256 is ever stored.
pub fn new_token(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}

/// How a token is stored: SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use openssl::{hash::MessageDigest, pkey::PKey, sign::Signer};
    let k = PKey::hmac(key).expect("HMAC key");
    let mut s = Signer::new(MessageDigest::sha256(), &k).expect("HMAC-SHA256");
    s.update(msg).expect("HMAC update");
    let mut out = [0u8; 32];
    s.sign(&mut out).expect("HMAC final");
    out
}

/// Constant-time equality for secrets and MACs.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

/// Decodes hex the way every kaibiao format writes it (PROTOCOL §1):
/// lower-case digits only, an even number of them. Upper-case hex is
/// refused, so that each value has exactly one spelling and a hash compared
/// as text is the hash compared as bytes.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    hex::decode(s).ok()
}

/// Decodes exactly `N` bytes of lower-case hex ([`from_hex`]).
pub fn hex_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    from_hex(s)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hmac_rfc4231_case_2() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hex_has_one_spelling() {
        assert_eq!(from_hex("00ff7a"), Some(vec![0, 255, 0x7a]));
        assert_eq!(from_hex(""), Some(vec![]));
        for bad in ["00FF7A", "00fF", "0", "0g", " 00", "00 ", "+0"] {
            assert_eq!(from_hex(bad), None, "{bad:?}");
        }
        assert_eq!(hex_array::<2>("abcd"), Some([0xab, 0xcd]));
        assert_eq!(hex_array::<2>("ABCD"), None);
        assert_eq!(hex_array::<2>("abcdef"), None);
    }

    #[test]
    fn tokens_are_unique_and_only_hashed() {
        let a = new_token("kbs");
        assert!(a.starts_with("kbs_") && a.len() == 4 + 43);
        assert_ne!(a, new_token("kbs"));
        assert_eq!(token_hash(&a).len(), 64);
    }
}
