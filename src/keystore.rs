//! The platform's Ed25519 key (signs receipts and log checkpoints). Made on
//! first start in `<data_dir>/keys/platform.ed25519` with mode 0600; never
//! committed, never logged. Several nodes share it by sharing the data
//! directory (or a copy of this one file).

use std::io::Write;
use std::path::Path;

use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

pub const PLATFORM_KEY_FILE: &str = "keys/platform.ed25519";

/// Loads the platform key, creating it if it does not exist yet. The file
/// holds the 32-byte seed as 64 hex digits and a newline.
pub fn load_or_create_platform_key(data_dir: &Path) -> anyhow::Result<SigningKey> {
    let path = data_dir.join(PLATFORM_KEY_FILE);
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
            f.write_all(format!("{}\n", hex::encode(*seed)).as_bytes())?;
            f.sync_all()?;
            tracing::info!(path = %path.display(), "made the platform signing key");
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(&path),
        Err(e) => Err(e.into()),
    }
}

fn read_key(path: &Path) -> anyhow::Result<SigningKey> {
    // Another node may be writing it this very moment; give it a moment.
    for _ in 0..50 {
        let text = Zeroizing::new(std::fs::read_to_string(path)?);
        if let Some(seed) = crate::crypto::hex_array::<32>(text.trim()) {
            return Ok(SigningKey::from_bytes(&seed));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    anyhow::bail!(
        "{} does not hold a platform key (64 hex digits)",
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
