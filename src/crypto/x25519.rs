//! X25519 over OpenSSL: key generation and Diffie-Hellman, refusing peer keys
//! that give an all-zero shared secret (small-order points).

use openssl::derive::Deriver;
use openssl::pkey::{Id, PKey, Private, Public};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum X25519Error {
    #[error("an X25519 key is 32 bytes written as 64 lower-case hex digits")]
    Encoding,
    #[error("X25519 key refused (small-order point)")]
    LowOrder,
}

#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; 32]>);

impl SecretKey {
    pub fn generate() -> Self {
        let k = PKey::generate_x25519().expect("X25519 key generation");
        let raw = k.raw_private_key().expect("raw X25519 key");
        Self::from_bytes(raw.as_slice().try_into().expect("32 bytes"))
    }
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(Zeroizing::new(b))
    }
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.0.clone()
    }
    fn pkey(&self) -> PKey<Private> {
        PKey::private_key_from_raw_bytes(self.0.as_slice(), Id::X25519)
            .expect("valid X25519 scalar")
    }
    pub fn public_key(&self) -> [u8; 32] {
        let raw = self.pkey().raw_public_key().expect("raw X25519 public key");
        raw.as_slice().try_into().expect("32 bytes")
    }
    /// `X25519(self, peer)`, refusing an all-zero result.
    pub fn diffie_hellman(&self, peer: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, X25519Error> {
        let peer: PKey<Public> =
            PKey::public_key_from_raw_bytes(peer, Id::X25519).map_err(|_| X25519Error::Encoding)?;
        let me = self.pkey();
        let mut d = Deriver::new(&me).map_err(|_| X25519Error::LowOrder)?;
        d.set_peer(&peer).map_err(|_| X25519Error::LowOrder)?;
        let mut out = Zeroizing::new([0u8; 32]);
        let n = d
            .derive(out.as_mut_slice())
            .map_err(|_| X25519Error::LowOrder)?;
        if n != 32 || out.iter().all(|b| *b == 0) {
            return Err(X25519Error::LowOrder);
        }
        Ok(out)
    }
}

pub fn parse_public(hex_key: &str) -> Result<[u8; 32], X25519Error> {
    let k: [u8; 32] = super::hex_array(hex_key).ok_or(X25519Error::Encoding)?;
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7748_section_6_1() {
        let a = SecretKey::from_bytes(
            crate::crypto::hex_array(
                "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
            )
            .unwrap(),
        );
        let b_pub: [u8; 32] = crate::crypto::hex_array(
            "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
        )
        .unwrap();
        assert_eq!(
            hex::encode(a.public_key()),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        assert_eq!(
            hex::encode(*a.diffie_hellman(&b_pub).unwrap()),
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        );
    }

    #[test]
    fn low_order_peer_is_refused() {
        let a = SecretKey::generate();
        assert_eq!(
            a.diffie_hellman(&[0u8; 32]).unwrap_err(),
            X25519Error::LowOrder
        );
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(a.diffie_hellman(&one).unwrap_err(), X25519Error::LowOrder);
    }
}
