//! Confidentiality at rest for what the law keeps secret before the
//! opening: *who* has bid in *which* section, and how many.
//!
//! Before a section's deadline its submissions and bidder registrations are
//! stored with keyed blind indexes instead of names (`HMAC-SHA256` tags of
//! section, bidder, owner) and with the records themselves encrypted
//! (AES-256-GCM). The key lives in the data directory, not in the database,
//! so a database administrator — or a stolen dump — learns neither which
//! bidders nor which sections. At the deadline the chronograph opens the
//! section's records into ordinary tables for the opening.

use base64::Engine;
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use zeroize::Zeroizing;

use super::hkdf;

#[derive(Clone)]
pub struct AtRest {
    index_key: Zeroizing<Vec<u8>>,
    seal_key: Zeroizing<Vec<u8>>,
    chain_key: Zeroizing<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
#[error("a sealed record does not open with this deployment's key")]
pub struct OpenFailed;

impl AtRest {
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        let prk = hkdf::extract(b"kaibiao/at-rest/v1", secret);
        Self {
            index_key: hkdf::expand(prk.as_slice(), b"blind-index", 32),
            seal_key: hkdf::expand(prk.as_slice(), b"record-encryption", 32),
            chain_key: hkdf::expand(prk.as_slice(), b"log-chain", 32),
        }
    }

    /// A section's log chain key (ADR 8): it keys the tags that chain the
    /// section's leaves; secret until the section is sealed, when the
    /// manifest publishes it. Revealing one section's key says nothing of
    /// another's, or of the other keys derived here.
    pub fn chain_key(&self, section_id: &str) -> [u8; 32] {
        let label = b"kaibiao/log-chain-key/v1";
        let mut m = Vec::new();
        m.extend_from_slice(&(label.len() as u32).to_be_bytes());
        m.extend_from_slice(label);
        m.extend_from_slice(section_id.as_bytes());
        super::hmac_sha256(&self.chain_key, &m)
    }

    /// A blind index: stable for the same inputs, meaningless without the key.
    pub fn tag(&self, kind: &str, parts: &[&str]) -> String {
        let mut m = Vec::new();
        for p in std::iter::once(kind).chain(parts.iter().copied()) {
            m.extend_from_slice(&(p.len() as u32).to_be_bytes());
            m.extend_from_slice(p.as_bytes());
        }
        hex::encode(super::hmac_sha256(&self.index_key, &m))
    }

    /// Encrypts a record; `aad` binds it to its row (e.g. the row id).
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> String {
        let nonce = super::random_bytes::<12>();
        let mut tag = [0u8; 16];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.seal_key,
            Some(&nonce),
            aad.as_bytes(),
            plaintext,
            &mut tag,
        )
        .expect("AES-256-GCM");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    pub fn open(&self, aad: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, OpenFailed> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| OpenFailed)?;
        if raw.len() < 28 {
            return Err(OpenFailed);
        }
        let (nonce, rest) = raw.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.seal_key,
            Some(nonce),
            aad.as_bytes(),
            ct,
            tag,
        )
        .map(Zeroizing::new)
        .map_err(|_| OpenFailed)
    }

    pub fn seal_json<T: serde::Serialize>(&self, aad: &str, v: &T) -> String {
        self.seal(
            aad,
            &Zeroizing::new(serde_json::to_vec(v).expect("serialisable")),
        )
    }

    pub fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        aad: &str,
        sealed: &str,
    ) -> Result<T, OpenFailed> {
        serde_json::from_slice(&self.open(aad, sealed)?).map_err(|_| OpenFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_keyed_and_records_bound_to_their_row() {
        let a = AtRest::from_secret(&[1u8; 32]);
        let b = AtRest::from_secret(&[2u8; 32]);
        assert_eq!(
            a.tag("bidder", &["sec_1", "org_1"]),
            a.tag("bidder", &["sec_1", "org_1"])
        );
        assert_ne!(
            a.tag("bidder", &["sec_1", "org_1"]),
            b.tag("bidder", &["sec_1", "org_1"])
        );
        // Length prefixes: ("ab","c") and ("a","bc") differ.
        assert_ne!(a.tag("k", &["ab", "c"]), a.tag("k", &["a", "bc"]));
        let s = a.seal("row-1", b"secret");
        assert_eq!(a.open("row-1", &s).unwrap().as_slice(), b"secret");
        assert!(a.open("row-2", &s).is_err());
        assert!(b.open("row-1", &s).is_err());
    }
}
