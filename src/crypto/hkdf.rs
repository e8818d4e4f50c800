//! HKDF-SHA256 (RFC 5869) through OpenSSL's EVP_PKEY HKDF, split into its
//! two steps as HPKE needs them.

use openssl::md::Md;
use openssl::pkey::Id;
use openssl::pkey_ctx::{HkdfMode, PkeyCtx};
use zeroize::Zeroizing;

/// `HKDF-Extract(salt, ikm)` → a 32-byte pseudorandom key.
pub fn extract(salt: &[u8], ikm: &[u8]) -> Zeroizing<[u8; 32]> {
    if ikm.is_empty() {
        // OpenSSL's HKDF refuses empty input keying material; Extract is
        // HMAC(salt, ikm), and a missing salt is HashLen zero bytes.
        let zeros = [0u8; 32];
        let key = if salt.is_empty() { &zeros[..] } else { salt };
        return Zeroizing::new(super::hmac_sha256(key, &[]));
    }
    let mut ctx = PkeyCtx::new_id(Id::HKDF).expect("HKDF available");
    ctx.derive_init().expect("HKDF init");
    ctx.set_hkdf_mode(HkdfMode::EXTRACT_ONLY)
        .expect("extract mode");
    ctx.set_hkdf_md(Md::sha256()).expect("SHA-256");
    ctx.set_hkdf_key(ikm).expect("ikm");
    if !salt.is_empty() {
        ctx.set_hkdf_salt(salt).expect("salt");
    }
    let mut out = Zeroizing::new([0u8; 32]);
    ctx.derive(Some(out.as_mut_slice())).expect("HKDF-Extract");
    out
}

/// `HKDF-Expand(prk, info, len)`, `len` ≤ 255 × 32.
pub fn expand(prk: &[u8], info: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    assert!(len <= 255 * 32, "HKDF-Expand output too long");
    let mut ctx = PkeyCtx::new_id(Id::HKDF).expect("HKDF available");
    ctx.derive_init().expect("HKDF init");
    ctx.set_hkdf_mode(HkdfMode::EXPAND_ONLY)
        .expect("expand mode");
    ctx.set_hkdf_md(Md::sha256()).expect("SHA-256");
    ctx.set_hkdf_key(prk).expect("prk");
    if !info.is_empty() {
        ctx.add_hkdf_info(info).expect("info");
    }
    let mut out = Zeroizing::new(vec![0u8; len]);
    ctx.derive(Some(out.as_mut_slice())).expect("HKDF-Expand");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5869_test_case_1() {
        let ikm = [0x0bu8; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let prk = extract(&salt, &ikm);
        assert_eq!(
            hex::encode(*prk),
            "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
        );
        let okm = expand(prk.as_slice(), &info, 42);
        assert_eq!(
            hex::encode(okm.as_slice()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn empty_ikm_is_hmac_of_nothing() {
        // Values from Python's hmac module.
        assert_eq!(
            hex::encode(*extract(&[7u8; 13], &[])),
            "97dbf63ad3ceeb0f824ffb3a77ceeab318160ac4d9f3a9b1640ebac34625b5bc"
        );
        assert_eq!(
            hex::encode(*extract(&[], &[])),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"
        );
    }

    #[test]
    fn rfc5869_test_case_3_empty_salt_and_info() {
        let prk = extract(&[], &[0x0bu8; 22]);
        assert_eq!(
            hex::encode(*prk),
            "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04"
        );
        let okm = expand(prk.as_slice(), &[], 42);
        assert_eq!(
            hex::encode(okm.as_slice()),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
        );
    }
}
