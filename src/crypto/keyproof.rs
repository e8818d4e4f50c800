//! Proof of possession for key registration (shared by server and client).
//!
//! The server issues a challenge (`id`, 32 random bytes `nonce`, and for
//! X25519 keys an ephemeral server public key). The statement is the JCS
//! object
//!
//! ```json
//! {"challenge":"<nonce hex>","challenge_id":"chl_…","owner":"org_…|usr_…",
//!  "public_key":"<hex>","purpose":"bidder_signing"}
//! ```
//!
//! - Ed25519 keys sign it: `Ed25519(label "kaibiao/key-proof/v1" || 0x00 || statement)`.
//! - X25519 keys cannot sign, so they answer with
//!   `HMAC-SHA256(X25519(sk, server_ephemeral), label || 0x00 || statement)`.

use serde::Serialize;

use super::{jcs, sign, x25519};

#[derive(Debug, Serialize)]
pub struct Statement<'a> {
    pub challenge: &'a str,
    pub challenge_id: &'a str,
    pub owner: &'a str,
    pub public_key: &'a str,
    pub purpose: &'a str,
}

impl Statement<'_> {
    pub fn canonical(&self) -> Vec<u8> {
        jcs::to_vec(self).expect("plain strings canonicalise")
    }

    fn framed(&self) -> Vec<u8> {
        let mut m = sign::domain::KEY_PROOF.as_bytes().to_vec();
        m.push(0);
        m.extend_from_slice(&self.canonical());
        m
    }

    pub fn sign_ed25519(&self, key: &ed25519_dalek::SigningKey) -> String {
        hex::encode(sign::sign(key, sign::domain::KEY_PROOF, &self.canonical()))
    }

    pub fn verify_ed25519(&self, key: &ed25519_dalek::VerifyingKey, proof_hex: &str) -> bool {
        super::from_hex(proof_hex).is_some_and(|sig| {
            sign::verify(key, sign::domain::KEY_PROOF, &self.canonical(), &sig).is_ok()
        })
    }

    /// The client's answer for an X25519 key.
    pub fn mac_x25519(&self, sk: &x25519::SecretKey, server_public: &[u8; 32]) -> Option<String> {
        let shared = sk.diffie_hellman(server_public).ok()?;
        Some(hex::encode(super::hmac_sha256(
            shared.as_slice(),
            &self.framed(),
        )))
    }

    /// The server's check, with its ephemeral secret and the client's public key.
    pub fn verify_x25519(
        &self,
        server_secret: &x25519::SecretKey,
        client_public: &[u8; 32],
        proof_hex: &str,
    ) -> bool {
        let Ok(shared) = server_secret.diffie_hellman(client_public) else {
            return false;
        };
        let expected = super::hmac_sha256(shared.as_slice(), &self.framed());
        super::from_hex(proof_hex).is_some_and(|p| super::ct_eq(&p, &expected))
    }
}

/// The statement a custodian signs to register its per-section X25519 key:
/// `Ed25519(identity, "kaibiao/custodian-section-key/v1" || 0x00 || JCS(this))`.
#[derive(Debug, Serialize)]
pub struct SectionKeyStatement<'a> {
    pub custodian: &'a str,
    pub identity_key: &'a str,
    pub public_key: &'a str,
    pub section_id: &'a str,
}

impl SectionKeyStatement<'_> {
    pub fn canonical(&self) -> Vec<u8> {
        jcs::to_vec(self).expect("plain strings canonicalise")
    }
    pub fn sign(&self, identity: &ed25519_dalek::SigningKey) -> String {
        hex::encode(sign::sign(
            identity,
            sign::domain::SECTION_KEY,
            &self.canonical(),
        ))
    }
    pub fn verify(&self, signature_hex: &str) -> bool {
        sign::verify_hex(
            self.identity_key,
            sign::domain::SECTION_KEY,
            &self.canonical(),
            signature_hex,
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st<'a>(pk: &'a str) -> Statement<'a> {
        Statement {
            challenge: "00ff",
            challenge_id: "chl_1",
            owner: "org_1",
            public_key: pk,
            purpose: "bidder_signing",
        }
    }

    #[test]
    fn ed25519_proof_binds_every_field() {
        let k = sign::generate();
        let pk = hex::encode(k.verifying_key().to_bytes());
        let proof = st(&pk).sign_ed25519(&k);
        assert!(st(&pk).verify_ed25519(&k.verifying_key(), &proof));
        let mut other = st(&pk);
        other.owner = "org_2";
        assert!(!other.verify_ed25519(&k.verifying_key(), &proof));
    }

    #[test]
    fn x25519_proof_needs_the_secret() {
        let client = x25519::SecretKey::generate();
        let server = x25519::SecretKey::generate();
        let pk = hex::encode(client.public_key());
        let proof = st(&pk).mac_x25519(&client, &server.public_key()).unwrap();
        assert!(st(&pk).verify_x25519(&server, &client.public_key(), &proof));
        let imposter = x25519::SecretKey::generate();
        let forged = st(&pk).mac_x25519(&imposter, &server.public_key()).unwrap();
        assert!(!st(&pk).verify_x25519(&server, &client.public_key(), &forged));
    }
}
