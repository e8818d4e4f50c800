//! HPKE (RFC 9180) for one suite: DHKEM(X25519, HKDF-SHA256) (kem 0x0020),
//! HKDF-SHA256 (kdf 0x0001), AES-256-GCM (aead 0x0002); base mode (0x00),
//! which `sealed-bid/1` uses, and auth mode (0x02), kept so every published
//! vector of the suite is checked. Built from OpenSSL's X25519, HKDF and
//! AES-GCM (OpenSSL 3.0 has no HPKE of its own).

use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use zeroize::Zeroizing;

use super::hkdf;
use super::x25519::{SecretKey, X25519Error};

const KEM_ID: u16 = 0x0020;
const KDF_ID: u16 = 0x0001;
const AEAD_ID: u16 = 0x0002;
const NK: usize = 32;
const NN: usize = 12;
const NT: usize = 16;

pub const MODE_BASE: u8 = 0x00;
pub const MODE_AUTH: u8 = 0x02;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HpkeError {
    #[error("invalid or low-order public key")]
    Key,
    #[error("decryption failed")]
    Open,
    #[error("message sequence number overflow")]
    Overflow,
}

impl From<X25519Error> for HpkeError {
    fn from(_: X25519Error) -> Self {
        HpkeError::Key
    }
}

fn kem_suite_id() -> Vec<u8> {
    let mut s = b"KEM".to_vec();
    s.extend_from_slice(&KEM_ID.to_be_bytes());
    s
}

fn hpke_suite_id() -> Vec<u8> {
    let mut s = b"HPKE".to_vec();
    s.extend_from_slice(&KEM_ID.to_be_bytes());
    s.extend_from_slice(&KDF_ID.to_be_bytes());
    s.extend_from_slice(&AEAD_ID.to_be_bytes());
    s
}

fn labeled_extract(suite: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut m = Zeroizing::new(Vec::with_capacity(
        7 + suite.len() + label.len() + ikm.len(),
    ));
    m.extend_from_slice(b"HPKE-v1");
    m.extend_from_slice(suite);
    m.extend_from_slice(label);
    m.extend_from_slice(ikm);
    hkdf::extract(salt, &m)
}

fn labeled_expand(
    suite: &[u8],
    prk: &[u8],
    label: &[u8],
    info: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let mut m = Vec::with_capacity(9 + suite.len() + label.len() + info.len());
    m.extend_from_slice(&(len as u16).to_be_bytes());
    m.extend_from_slice(b"HPKE-v1");
    m.extend_from_slice(suite);
    m.extend_from_slice(label);
    m.extend_from_slice(info);
    hkdf::expand(prk, &m, len)
}

/// `DeriveKeyPair(ikm)` (RFC 9180 §7.1.3 for X25519).
pub fn derive_key_pair(ikm: &[u8]) -> SecretKey {
    let suite = kem_suite_id();
    let prk = labeled_extract(&suite, &[], b"dkp_prk", ikm);
    let sk = labeled_expand(&suite, prk.as_slice(), b"sk", &[], 32);
    SecretKey::from_bytes(sk.as_slice().try_into().expect("32 bytes"))
}

fn extract_and_expand(dh: &[u8], kem_context: &[u8]) -> Zeroizing<Vec<u8>> {
    let suite = kem_suite_id();
    let prk = labeled_extract(&suite, &[], b"eae_prk", dh);
    labeled_expand(&suite, prk.as_slice(), b"shared_secret", kem_context, 32)
}

/// Encapsulation with a given ephemeral key (`Encap`/`AuthEncap`).
fn encap(
    sk_e: &SecretKey,
    pk_r: &[u8; 32],
    sender: Option<&SecretKey>,
) -> Result<(Zeroizing<Vec<u8>>, [u8; 32]), HpkeError> {
    let enc = sk_e.public_key();
    let mut dh = Zeroizing::new(sk_e.diffie_hellman(pk_r)?.to_vec());
    let mut ctx = enc.to_vec();
    ctx.extend_from_slice(pk_r);
    if let Some(s) = sender {
        dh.extend_from_slice(s.diffie_hellman(pk_r)?.as_slice());
        ctx.extend_from_slice(&s.public_key());
    }
    Ok((extract_and_expand(&dh, &ctx), enc))
}

fn decap(
    enc: &[u8; 32],
    sk_r: &SecretKey,
    sender_pk: Option<&[u8; 32]>,
) -> Result<Zeroizing<Vec<u8>>, HpkeError> {
    let mut dh = Zeroizing::new(sk_r.diffie_hellman(enc)?.to_vec());
    let mut ctx = enc.to_vec();
    ctx.extend_from_slice(&sk_r.public_key());
    if let Some(pk_s) = sender_pk {
        dh.extend_from_slice(sk_r.diffie_hellman(pk_s)?.as_slice());
        ctx.extend_from_slice(pk_s);
    }
    Ok(extract_and_expand(&dh, &ctx))
}

/// An HPKE encryption context (one direction).
pub struct Context {
    key: Zeroizing<[u8; NK]>,
    base_nonce: [u8; NN],
    exporter_secret: Zeroizing<Vec<u8>>,
    seq: u64,
}

/// Values of the key schedule, exposed for the test vectors.
pub struct Schedule {
    pub key_schedule_context: Vec<u8>,
    pub secret: Zeroizing<[u8; 32]>,
}

fn key_schedule(mode: u8, shared_secret: &[u8], info: &[u8]) -> (Context, Schedule) {
    let suite = hpke_suite_id();
    let psk_id_hash = labeled_extract(&suite, &[], b"psk_id_hash", &[]);
    let info_hash = labeled_extract(&suite, &[], b"info_hash", info);
    let mut ksc = vec![mode];
    ksc.extend_from_slice(psk_id_hash.as_slice());
    ksc.extend_from_slice(info_hash.as_slice());
    let secret = labeled_extract(&suite, shared_secret, b"secret", &[]);
    let key = labeled_expand(&suite, secret.as_slice(), b"key", &ksc, NK);
    let base_nonce = labeled_expand(&suite, secret.as_slice(), b"base_nonce", &ksc, NN);
    let exporter_secret = labeled_expand(&suite, secret.as_slice(), b"exp", &ksc, 32);
    (
        Context {
            key: Zeroizing::new(key.as_slice().try_into().expect("Nk bytes")),
            base_nonce: base_nonce.as_slice().try_into().expect("Nn bytes"),
            exporter_secret,
            seq: 0,
        },
        Schedule {
            key_schedule_context: ksc,
            secret,
        },
    )
}

impl Context {
    fn nonce(&self) -> [u8; NN] {
        let mut n = self.base_nonce;
        for (i, b) in self.seq.to_be_bytes().iter().enumerate() {
            n[NN - 8 + i] ^= b;
        }
        n
    }

    pub fn seal(&mut self, aad: &[u8], pt: &[u8]) -> Result<Vec<u8>, HpkeError> {
        let nonce = self.nonce();
        let mut tag = [0u8; NT];
        let mut ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            self.key.as_slice(),
            Some(&nonce),
            aad,
            pt,
            &mut tag,
        )
        .map_err(|_| HpkeError::Open)?;
        ct.extend_from_slice(&tag);
        self.seq = self.seq.checked_add(1).ok_or(HpkeError::Overflow)?;
        Ok(ct)
    }

    pub fn open(&mut self, aad: &[u8], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>, HpkeError> {
        if ct.len() < NT {
            return Err(HpkeError::Open);
        }
        let (body, tag) = ct.split_at(ct.len() - NT);
        let nonce = self.nonce();
        let pt = decrypt_aead(
            Cipher::aes_256_gcm(),
            self.key.as_slice(),
            Some(&nonce),
            aad,
            body,
            tag,
        )
        .map_err(|_| HpkeError::Open)?;
        self.seq = self.seq.checked_add(1).ok_or(HpkeError::Overflow)?;
        Ok(Zeroizing::new(pt))
    }

    pub fn export(&self, exporter_context: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
        labeled_expand(
            &hpke_suite_id(),
            self.exporter_secret.as_slice(),
            b"sec",
            exporter_context,
            len,
        )
    }

    pub fn key(&self) -> &[u8] {
        self.key.as_slice()
    }

    pub fn base_nonce(&self) -> &[u8] {
        &self.base_nonce
    }
}

/// The sender's side of a set-up: what travels (`enc`), the context, and
/// the intermediate values the test vectors check.
pub struct Sender {
    pub enc: [u8; 32],
    pub context: Context,
    pub schedule: Schedule,
    pub shared_secret: Zeroizing<Vec<u8>>,
}

/// The sender's side, with an explicit ephemeral key (tests) or a fresh one.
pub fn setup_sender(
    pk_r: &[u8; 32],
    info: &[u8],
    ephemeral: Option<SecretKey>,
    auth_sender: Option<&SecretKey>,
) -> Result<Sender, HpkeError> {
    let sk_e = ephemeral.unwrap_or_else(SecretKey::generate);
    let (shared_secret, enc) = encap(&sk_e, pk_r, auth_sender)?;
    let mode = if auth_sender.is_some() {
        MODE_AUTH
    } else {
        MODE_BASE
    };
    let (context, schedule) = key_schedule(mode, &shared_secret, info);
    Ok(Sender {
        enc,
        context,
        schedule,
        shared_secret,
    })
}

pub fn setup_receiver(
    enc: &[u8; 32],
    sk_r: &SecretKey,
    info: &[u8],
    auth_sender_pk: Option<&[u8; 32]>,
) -> Result<Context, HpkeError> {
    let shared = decap(enc, sk_r, auth_sender_pk)?;
    let mode = if auth_sender_pk.is_some() {
        MODE_AUTH
    } else {
        MODE_BASE
    };
    Ok(key_schedule(mode, &shared, info).0)
}

/// Single-shot base-mode encryption: `(enc, ciphertext)`.
pub fn seal_base(
    pk_r: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    pt: &[u8],
) -> Result<([u8; 32], Vec<u8>), HpkeError> {
    let mut s = setup_sender(pk_r, info, None, None)?;
    Ok((s.enc, s.context.seal(aad, pt)?))
}

/// Single-shot base-mode decryption.
pub fn open_base(
    enc: &[u8; 32],
    sk_r: &SecretKey,
    info: &[u8],
    aad: &[u8],
    ct: &[u8],
) -> Result<Zeroizing<Vec<u8>>, HpkeError> {
    setup_receiver(enc, sk_r, info, None)?.open(aad, ct)
}
