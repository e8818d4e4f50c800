//! Custodians (密钥保管人) releasing their per-section keys in the window
//! (custodian mode), or for the bids a recorded platform fault left (escrow
//! mode). With `threshold` keys in, the decryption job is scheduled.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{load, window_closed, window_open};
use crate::crypto::opening::{self as fmt, SignedKeyRelease};
use crate::db::jobs;
use crate::db::opening::{self as repo, KeyReleaseRow};
use crate::domain::identity::Role;
use crate::domain::ids::SectionId;
use crate::domain::section::{DecryptionMode, SectionState};
use crate::domain::states::JobKind;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::action::{Action, Change, IdempotencyKey};
use crate::service::{policy, Actor, Services};

/// How many keys are in, of the threshold.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyReleased {
    pub released: usize,
    pub threshold: usize,
}

/// A custodian releases its per-section key.
pub async fn release_key(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
    release: SignedKeyRelease,
    key: Option<IdempotencyKey>,
) -> AppResult<KeyReleased> {
    actor.require(&[Role::Custodian])?;
    let me = actor.user.id.clone();
    Action::new("key-release", &section_id)
        .with_request(&release)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let now = tx.now;
            let x = load(tx.c, &section_id)?;
            let st = policy::standing(tx.c, &a.user, &x.p, Some(&section_id))?;
            if !st.custodian {
                return Err(AppError::forbidden(
                    "you are not a custodian of this section",
                ));
            }
            if matches!(x.state(), SectionState::Published | SectionState::Sealed) {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    "keys are released only once the opening has begun, after the deadline",
                ));
            }
            x.need_phase(&[SectionState::Decrypting], "releasing a key")?;
            let o = repo::get_or_create(tx.c, &section_id)?;
            match x.mode() {
                DecryptionMode::Custodians if !window_open(&o, now) => {
                    return Err(window_closed(&o))
                }
                DecryptionMode::Custodians => {}
                DecryptionMode::Bidders => {
                    return Err(AppError::new(
                        ErrorCode::InvalidTransition,
                        "in this section each bidder decrypts its own bid; no custodian key is needed",
                    ))
                }
                DecryptionMode::BiddersWithEscrow => {
                    let upheld = repo::incidents_of(tx.c, &section_id)?
                        .iter()
                        .any(|i| i.countersignature.is_some());
                    if !upheld && !o.escrow {
                        return Err(AppError::new(
                            ErrorCode::InvalidTransition,
                            "custodian keys are needed only for bids a recorded platform fault left \
                             undecrypted; none is recorded",
                        ));
                    }
                }
            }
            let r = &release.release;
            let mine = x
                .params
                .custodians
                .iter()
                .find(|k| k.user_id == me)
                .ok_or_else(|| AppError::forbidden("you are not a custodian of this section"))?;
            let bad = |m: &str| AppError::new(ErrorCode::KeyRejected, m.to_string());
            if r.custodian != me.as_str() || r.position != mine.position as u32 {
                return Err(bad("the release names another custodian or position"));
            }
            if r.public_key != mine.section_key {
                return Err(bad(
                    "the release is for another key than the one you registered for this section",
                ));
            }
            if r.identity_key != mine.identity_key {
                return Err(bad(
                    "the release is not signed with your registered identity key",
                ));
            }
            release
                .verify(section_id.as_str())
                .map_err(|e| bad(&e.to_string()))?;
            if (r.released_at_ms - now).abs() > 10 * 60 * 1000 {
                return Err(bad(
                    "the release's time is more than 10 minutes off the server's clock",
                ));
            }
            let existing = repo::releases_of(tx.c, &section_id)?;
            if existing.iter().any(|k| k.custodian == me) {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    "you have already released your key for this section",
                ));
            }
            let signed = serde_json::to_string(&release).expect("release");
            let row_id = format!("{section_id}/{me}");
            repo::insert_release(
                tx.c,
                &KeyReleaseRow {
                    section_id: section_id.clone(),
                    custodian: me.clone(),
                    position: mine.position,
                    sealed_secret: tx.svc.atrest.seal(&row_id, signed.as_bytes()),
                    secret_key: None,
                    signature: release.signature.clone(),
                    released_at: now,
                },
            )?;
            let released = existing.len() + 1;
            let threshold = x.params.threshold as usize;
            let release_hash =
                fmt::json_hash(&serde_json::to_value(&release).expect("release"));
            tx.record(
                Change::new(&section_id, "opening.key_released")
                    .data(json!({"position": mine.position, "released": released,
                                 "threshold": threshold, "staff": {"custodian": me}}))
                    .logged(json!({"position": mine.position, "custodian": me,
                                   "public_key": r.public_key, "release_hash": release_hash})),
            )?;
            if released >= threshold {
                jobs::schedule(tx.c, &section_id, JobKind::OpeningDecrypt, now, now)?;
            }
            Ok(KeyReleased {
                released,
                threshold,
            })
        })
        .await
}
