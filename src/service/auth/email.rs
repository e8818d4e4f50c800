//! E-mail verification: the link mailed to every new account, its one use,
//! and sending a fresh one (answered the same whether or not the account
//! exists).

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::crypto;
use crate::db::audit::{self, Who};
use crate::db::identity::{self as repo, UserRow, VerificationRow};
use crate::db::{outbox, DbConn};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::notify::templates;
use crate::service::Services;

/// Queues the verification mail for a new user, in the caller's transaction.
pub(super) fn queue_verification(
    svc: &Services,
    c: &mut DbConn,
    user: &UserRow,
    now: i64,
) -> AppResult<()> {
    let token = crypto::new_token("kbv");
    let hours = svc.config.rules.email_verification_hours;
    repo::insert_verification(
        c,
        &VerificationRow {
            token_hash: crypto::token_hash(&token),
            user_id: user.id.clone(),
            created_at: now,
            expires_at: now + hours * 3_600_000,
            used_at: None,
        },
    )?;
    let link = format!("{}/?verify={token}", svc.public_url);
    let mail = templates::verify_email(&user.display_name, &link, hours);
    outbox::enqueue(c, mail.kind, &user.email, &mail.subject, &mail.body, now)?;
    Ok(())
}

/// The answer to a verified address.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Verified {
    pub verified: bool,
}

/// Marks the address of the link's account verified (once, before expiry).
pub async fn verify_email(svc: &Services, token: &str) -> AppResult<Verified> {
    let hash = crypto::token_hash(token);
    let now = svc.now().millis();
    svc.db
        .write(move |c| {
            let invalid = || {
                AppError::new(
                    ErrorCode::TokenInvalid,
                    "this verification link is invalid or has expired",
                )
            };
            let v = repo::find_verification(c, &hash)?.ok_or_else(invalid)?;
            if v.expires_at <= now || repo::use_verification(c, &hash, now)? != 1 {
                return Err(invalid());
            }
            repo::mark_email_verified(c, &v.user_id, now)?;
            audit::record(
                c,
                now,
                &Who::system(),
                "user.verify_email",
                v.user_id.as_str(),
                &json!({}),
            )?;
            Ok(Verified { verified: true })
        })
        .await
}

/// The answer to a request for a new link: the same for any name.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationResent {
    pub message: String,
}

/// Sends a fresh verification link if the account exists and is unverified.
/// Always answers the same, so it reveals nothing about accounts.
pub async fn resend_verification(svc: &Services, username: &str) -> AppResult<VerificationResent> {
    let name = username.trim().to_ascii_lowercase();
    let now = svc.now().millis();
    let s = svc.clone();
    svc.db
        .write(move |c| {
            if let Some(u) = repo::user_by_username(c, &name)? {
                if u.email_verified_at.is_none() && u.disabled_at.is_none() {
                    queue_verification(&s, c, &u, now)?;
                }
            }
            Ok(())
        })
        .await?;
    svc.kick_workers();
    Ok(VerificationResent {
        message: "if the account exists and is not verified yet, a new link is on its way".into(),
    })
}
