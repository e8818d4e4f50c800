//! Ed25519 with domain separation: every signature covers
//! `label || 0x00 || message`, where the label names what is being signed
//! (see [`domain`]). A signature made for one purpose can never be replayed
//! as another. Verification is strict (`verify_strict`: canonical S, no
//! small-order R or A) and weak public keys are refused at parse time.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// Every signing label kaibiao uses. Adding one is a protocol change
/// (`docs/PROTOCOL.md` lists them).
pub mod domain {
    /// Proof of possession of a key being registered.
    pub const KEY_PROOF: &str = "kaibiao/key-proof/v1";
    /// A custodian's per-section X25519 key, signed with its identity key.
    pub const SECTION_KEY: &str = "kaibiao/custodian-section-key/v1";
    /// A trading centre's registration (its public file), signed by itself.
    pub const CENTRE_REGISTRATION: &str = "kaibiao/centre-registration/v1";
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("a public key is 32 bytes written as 64 lower-case hex digits")]
    Encoding,
    #[error("not a valid Ed25519 point")]
    NotAPoint,
    #[error("weak key (small-order point) refused")]
    Weak,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("signature does not verify")]
pub struct BadSignature;

/// Parses a registered Ed25519 public key, refusing weak ones.
pub fn parse_public(hex_key: &str) -> Result<VerifyingKey, KeyError> {
    let bytes: [u8; 32] = super::hex_array(hex_key).ok_or(KeyError::Encoding)?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::NotAPoint)?;
    if key.is_weak() {
        return Err(KeyError::Weak);
    }
    Ok(key)
}

fn framed(label: &str, msg: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(label.len() + 1 + msg.len());
    m.extend_from_slice(label.as_bytes());
    m.push(0);
    m.extend_from_slice(msg);
    m
}

pub fn sign(key: &SigningKey, label: &str, msg: &[u8]) -> [u8; 64] {
    key.sign(&framed(label, msg)).to_bytes()
}

pub fn verify(key: &VerifyingKey, label: &str, msg: &[u8], sig: &[u8]) -> Result<(), BadSignature> {
    let sig: [u8; 64] = sig.try_into().map_err(|_| BadSignature)?;
    key.verify_strict(&framed(label, msg), &Signature::from_bytes(&sig))
        .map_err(|_| BadSignature)
}

/// Verifies a hex signature against a hex public key.
pub fn verify_hex(
    public_hex: &str,
    label: &str,
    msg: &[u8],
    sig_hex: &str,
) -> Result<(), BadSignature> {
    let key = parse_public(public_hex).map_err(|_| BadSignature)?;
    let sig = super::from_hex(sig_hex).ok_or(BadSignature)?;
    verify(&key, label, msg, &sig)
}

pub fn generate() -> SigningKey {
    SigningKey::from_bytes(&super::random_bytes::<32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_separate_purposes() {
        let k = generate();
        let sig = sign(&k, domain::KEY_PROOF, b"m");
        assert!(verify(&k.verifying_key(), domain::KEY_PROOF, b"m", &sig).is_ok());
        assert!(verify(&k.verifying_key(), domain::SECTION_KEY, b"m", &sig).is_err());
        assert!(verify(&k.verifying_key(), domain::KEY_PROOF, b"n", &sig).is_err());
    }

    #[test]
    fn weak_and_malformed_keys_are_refused() {
        // The identity point (small order) encodes as 0x01 followed by zeros.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(parse_public(&hex::encode(identity)), Err(KeyError::Weak));
        assert_eq!(parse_public("abcd"), Err(KeyError::Encoding));
        let k = generate();
        assert!(parse_public(&hex::encode(k.verifying_key().to_bytes())).is_ok());
    }
}
