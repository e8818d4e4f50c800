//! Private key files for bidders and custodians: JSON, mode 0600, with an
//! optional passphrase (argon2id → AES-256-GCM).
//!
//! ```json
//! {"format":"kaibiao-key/1","algorithm":"ed25519","public_key":"…",
//!  "secret":"<hex>"}                                   // no passphrase
//! {"format":"kaibiao-key/1","algorithm":"x25519","public_key":"…",
//!  "protected":{"kdf":"argon2id","m_kib":65536,"t":3,"p":1,"salt":"…",
//!               "nonce":"…","ciphertext":"…"}}        // with passphrase
//! ```

use std::io::Write;
use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub const FORMAT: &str = "kaibiao-key/1";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub format: String,
    pub algorithm: String,
    pub public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<Protected>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protected {
    pub kdf: String,
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
    pub salt: String,
    pub nonce: String,
    pub ciphertext: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read or write the key file: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a kaibiao key file: {0}")]
    Format(String),
    #[error("this key file is protected: give its passphrase")]
    NeedPassphrase,
    #[error("wrong passphrase (or a damaged key file)")]
    WrongPassphrase,
    #[error("the key file holds a {found} key, not {wanted}")]
    Algorithm { found: String, wanted: String },
}

fn kdf(passphrase: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Zeroizing<[u8; 32]> {
    let params = Params::new(m, t, p, Some(32)).expect("argon2 parameters");
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, out.as_mut_slice())
        .expect("argon2");
    out
}

/// Writes a new key file (refusing to overwrite one) with mode 0600.
pub fn write(
    path: &Path,
    algorithm: &str,
    public_key: &[u8; 32],
    secret: &[u8; 32],
    passphrase: Option<&str>,
) -> Result<(), KeyFileError> {
    let (secret_hex, protected) = match passphrase {
        None => (Some(hex::encode(secret)), None),
        Some(pw) => {
            let salt = super::random_bytes::<16>();
            let nonce = super::random_bytes::<12>();
            let (m, t, p) = (65_536, 3, 1);
            let key = kdf(pw, &salt, m, t, p);
            let mut tag = [0u8; 16];
            let mut ct = encrypt_aead(
                Cipher::aes_256_gcm(),
                key.as_slice(),
                Some(&nonce),
                algorithm.as_bytes(),
                secret,
                &mut tag,
            )
            .expect("AES-256-GCM");
            ct.extend_from_slice(&tag);
            (
                None,
                Some(Protected {
                    kdf: "argon2id".into(),
                    m_kib: m,
                    t,
                    p,
                    salt: hex::encode(salt),
                    nonce: hex::encode(nonce),
                    ciphertext: hex::encode(ct),
                }),
            )
        }
    };
    let file = KeyFile {
        format: FORMAT.into(),
        algorithm: algorithm.into(),
        public_key: hex::encode(public_key),
        secret: secret_hex,
        protected,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(
        serde_json::to_string_pretty(&file)
            .expect("key file")
            .as_bytes(),
    )?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(())
}

/// Reads a key file's secret, checking its algorithm and public key.
pub fn read(
    path: &Path,
    algorithm: &str,
    passphrase: Option<&str>,
) -> Result<(Zeroizing<[u8; 32]>, [u8; 32]), KeyFileError> {
    let text = Zeroizing::new(std::fs::read_to_string(path)?);
    let f: KeyFile =
        serde_json::from_str(&text).map_err(|e| KeyFileError::Format(e.to_string()))?;
    if f.format != FORMAT {
        return Err(KeyFileError::Format(format!("unknown format {}", f.format)));
    }
    if f.algorithm != algorithm {
        return Err(KeyFileError::Algorithm {
            found: f.algorithm,
            wanted: algorithm.into(),
        });
    }
    let public: [u8; 32] =
        super::hex_array(&f.public_key).ok_or_else(|| KeyFileError::Format("public key".into()))?;
    let secret = match (&f.secret, &f.protected) {
        (Some(s), None) => Zeroizing::new(
            super::hex_array::<32>(s).ok_or_else(|| KeyFileError::Format("secret".into()))?,
        ),
        (None, Some(p)) => {
            let pw = passphrase.ok_or(KeyFileError::NeedPassphrase)?;
            if p.kdf != "argon2id" || p.m_kib > 4 * 1024 * 1024 || p.t > 100 || p.p > 64 {
                return Err(KeyFileError::Format("unsupported key protection".into()));
            }
            let salt =
                super::from_hex(&p.salt).ok_or_else(|| KeyFileError::Format("salt".into()))?;
            let nonce =
                super::from_hex(&p.nonce).ok_or_else(|| KeyFileError::Format("nonce".into()))?;
            let ct = super::from_hex(&p.ciphertext)
                .ok_or_else(|| KeyFileError::Format("ciphertext".into()))?;
            if ct.len() != 48 || nonce.len() != 12 {
                return Err(KeyFileError::Format("ciphertext".into()));
            }
            let key = kdf(pw, &salt, p.m_kib, p.t, p.p);
            let pt = decrypt_aead(
                Cipher::aes_256_gcm(),
                key.as_slice(),
                Some(&nonce),
                algorithm.as_bytes(),
                &ct[..32],
                &ct[32..],
            )
            .map_err(|_| KeyFileError::WrongPassphrase)?;
            Zeroizing::new(
                pt.as_slice()
                    .try_into()
                    .map_err(|_| KeyFileError::WrongPassphrase)?,
            )
        }
        _ => {
            return Err(KeyFileError::Format(
                "needs exactly one of secret or protected".into(),
            ))
        }
    };
    Ok((secret, public))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_protected_round_trip_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let secret = [3u8; 32];
        let public = [4u8; 32];
        let plain = dir.path().join("a.key");
        write(&plain, "x25519", &public, &secret, None).unwrap();
        assert_eq!(*read(&plain, "x25519", None).unwrap().0, secret);
        assert!(matches!(
            read(&plain, "ed25519", None),
            Err(KeyFileError::Algorithm { .. })
        ));
        assert!(
            write(&plain, "x25519", &public, &secret, None).is_err(),
            "never overwrites"
        );
        let prot = dir.path().join("b.key");
        write(&prot, "ed25519", &public, &secret, Some("long passphrase")).unwrap();
        assert!(!std::fs::read_to_string(&prot)
            .unwrap()
            .contains(&hex::encode(secret)));
        assert!(matches!(
            read(&prot, "ed25519", None),
            Err(KeyFileError::NeedPassphrase)
        ));
        assert!(matches!(
            read(&prot, "ed25519", Some("wrong")),
            Err(KeyFileError::WrongPassphrase)
        ));
        assert_eq!(
            *read(&prot, "ed25519", Some("long passphrase")).unwrap().0,
            secret
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&prot).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}
