//! The deployment's secrets, made on first start under `<data_dir>/keys/`
//! with mode 0600, never committed, never logged:
//! - `platform.ed25519`: the platform's Ed25519 key (receipts, checkpoints);
//! - `at-rest.key`: the key behind confidentiality at rest (`crypto::atrest`);
//! - `centre.ed25519`: this trading centre's own Ed25519 key, which signs
//!   its experts' passes (never the platform key: a pass is the centre's
//!   word, a receipt the platform's).
//!
//! Several nodes share them by sharing the data directory (or copies of
//! these files).

use std::io::Write;
use std::path::Path;

use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

pub const PLATFORM_KEY_FILE: &str = "keys/platform.ed25519";
/// The secret behind confidentiality at rest (`crypto::atrest`).
pub const AT_REST_KEY_FILE: &str = "keys/at-rest.key";

/// This centre's own key (its public file is `kaibiao-centre/2`, signed with it).
pub const CENTRE_KEY_FILE: &str = "keys/centre.ed25519";

/// Loads this centre's pass-issuing key, creating it if it does not exist yet.
pub fn load_or_create_centre_key(data_dir: &Path) -> anyhow::Result<SigningKey> {
    let seed = load_or_create_secret(data_dir, CENTRE_KEY_FILE, "the centre's pass key")?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Loads the platform key, creating it if it does not exist yet.
pub fn load_or_create_platform_key(data_dir: &Path) -> anyhow::Result<SigningKey> {
    let seed = load_or_create_secret(data_dir, PLATFORM_KEY_FILE, "the platform signing key")?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Loads a 32-byte secret kept as 64 hex digits and a newline in a file of
/// mode 0600 under the data directory, making it on first use. Nodes that
/// start together race safely: one creates, the others read.
pub fn load_or_create_secret(
    data_dir: &Path,
    file: &str,
    what: &str,
) -> anyhow::Result<Zeroizing<[u8; 32]>> {
    let path = data_dir.join(file);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let seed = Zeroizing::new(crate::crypto::random_bytes::<32>());
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(&path) {
        Ok(mut f) => {
            f.write_all(Zeroizing::new(format!("{}\n", hex::encode(*seed))).as_bytes())?;
            f.sync_all()?;
            tracing::info!(path = %path.display(), "made {what}");
            Ok(seed)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_secret(&path),
        Err(e) => Err(e.into()),
    }
}

fn read_secret(path: &Path) -> anyhow::Result<Zeroizing<[u8; 32]>> {
    // Another node may be writing it this very moment; give it a moment.
    for _ in 0..50 {
        let text = Zeroizing::new(std::fs::read_to_string(path)?);
        if let Some(secret) = crate::crypto::hex_array::<32>(text.trim()) {
            return Ok(Zeroizing::new(secret));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    anyhow::bail!(
        "{} does not hold a key (64 lower-case hex digits)",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_reused_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_platform_key(dir.path()).unwrap();
        let b = load_or_create_platform_key(dir.path()).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(PLATFORM_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
