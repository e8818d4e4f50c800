//! Passwords: argon2id with the crate's defaults, always off the executor.

use std::sync::OnceLock;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

use crate::error::{AppError, AppResult};

pub fn hash_password(pw: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

pub fn verify_password(stored: &str, pw: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// A real hash to check unknown accounts against, so they cost the same time.
pub(super) fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("kaibiao timing equaliser").expect("argon2 works"))
}

pub(super) async fn hash_off_executor(pw: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?
        .map_err(AppError::internal)
}

/// Checks `pw` against `stored` off the executor; an unknown account
/// (`None`) costs a full check against a dummy hash and fails.
pub(super) async fn check_off_executor(stored: Option<String>, pw: String) -> AppResult<bool> {
    tokio::task::spawn_blocking(move || match stored {
        Some(h) => verify_password(&h, &pw),
        None => {
            verify_password(dummy_hash(), &pw);
            false
        }
    })
    .await
    .map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_round_trip() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse battery!"));
        assert!(!verify_password("not a hash", "x"));
    }
}
