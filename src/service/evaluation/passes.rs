//! Passes (`expert-pass/1`): the host centre's room admits a pass signed by
//! a trusted centre for this section, naming a confirmed member; from then
//! on the pass's key signs everything the expert does. This centre also
//! issues passes as a home centre to experts of its own pool.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{by_expert, drawn, panel, seats_missing};
use crate::crypto::sign;
use crate::db::evaluation as repo;
use crate::db::identity as identity_repo;
use crate::domain::ids::{ExpertId, SectionId};
use crate::domain::states::{EvaluationPhase, SeatStatus};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::evaluation::pass::{self, Pass};
use crate::service::action::{transact, Change};
use crate::service::opening::load;
use crate::service::{transition, Actor, Services};

/// The home centre (this one) issues a pass to one of its own experts.
pub fn issue_pass(
    key: &ed25519_dalek::SigningKey,
    centre: &str,
    expert_id: &ExpertId,
    expert_key: &str,
    section_id: &SectionId,
    now: i64,
    minutes: i64,
) -> AppResult<Pass> {
    sign::parse_public(expert_key)
        .map_err(|e| AppError::invalid_field("expert_key", e.to_string()))?;
    if !(1..=pass::MAX_LIFETIME_MS / 60_000).contains(&minutes) {
        return Err(AppError::invalid_field("minutes", "1 to 720"));
    }
    Ok(pass::issue(
        key,
        pass::PassBody::new(
            centre,
            expert_id.as_str(),
            expert_key,
            section_id.as_str(),
            now,
            minutes,
        ),
    ))
}

fn pass_rejected(m: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::PassRejected, m)
}

/// The expert the room admitted, and until when.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExpertAdmitted {
    pub section_id: SectionId,
    pub expert_id: ExpertId,
    pub expires_at_ms: i64,
}

/// SHA-256 of the pass's canonical JSON, hex: how the log names it.
pub(super) fn pass_hash(p: &Pass) -> AppResult<String> {
    Ok(crate::crypto::sha256_hex(
        &crate::crypto::jcs::to_vec(p).map_err(AppError::internal)?,
    ))
}

/// The host centre's room admits a pass: trusted centre, good signature, in
/// date, for this section, naming a confirmed member. When every member is
/// admitted the evaluation moves to its qualification review.
pub async fn admit(svc: &Services, section_id: SectionId, p: Pass) -> AppResult<ExpertAdmitted> {
    transact(svc, by_expert(), move |tx| {
        let body = pass::admit(&p, &tx.svc.trust, section_id.as_str(), tx.now)
            .map_err(|e| pass_rejected(e.to_string()))?
            .clone();
        let expert_id = ExpertId::from_db(body.expert_id.clone());
        let mut seat = repo::seat(tx.c, &section_id, &expert_id)?
            .filter(|r| r.status == SeatStatus::Confirmed)
            .ok_or_else(|| {
                pass_rejected("the pass names no confirmed member of this section's committee")
            })?;
        let expert = repo::find_expert(tx.c, &expert_id)?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("seat without expert")))?;
        if expert.centre != body.centre {
            return Err(pass_rejected(
                "the pass is not issued by the expert's home centre",
            ));
        }
        seat.expert_key = Some(body.expert_key.clone());
        seat.pass_json = Some(serde_json::to_string(&p).map_err(AppError::internal)?);
        transition::seat(tx.c, &mut seat, SeatStatus::Confirmed)?;
        tx.record(
            Change::new(&section_id, "evaluation.expert_admitted")
                .data(json!({"specialty": seat.specialty}))
                .logged(json!({"seat": seat.position, "pass_hash": pass_hash(&p)?})),
        )?;
        let ev = drawn(tx.c, &section_id)?;
        let seats = repo::seats_of(tx.c, &section_id)?;
        if ev.phase == EvaluationPhase::Seating
            && seats_missing(&ev, &seats)? == 0
            && panel(&seats).iter().all(|r| r.expert_key.is_some())
        {
            transition::evaluation(
                tx.c,
                &section_id,
                EvaluationPhase::Seating,
                EvaluationPhase::Reviewing,
                tx.now,
            )?;
            tx.record(Change::new(&section_id, "evaluation.reviewing"))?;
        }
        Ok(ExpertAdmitted {
            section_id,
            expert_id,
            expires_at_ms: body.expires_at_ms,
        })
    })
    .await
}

/// An expert of this centre asks for a pass.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PassRequest {
    /// The expert's own Ed25519 public key, hex.
    pub expert_key: String,
    /// The pass's life in minutes (default 480, at most 720).
    #[serde(default)]
    pub minutes: Option<i64>,
}

/// This centre as the home centre: an expert of its own pool, signed in here
/// (the account's verified e-mail is the pool entry's), gets a pass for a
/// section where the expert holds a confirmed seat, signed with the platform
/// key under this centre's code. The expert's client then presents it to
/// the room (`…/evaluation/admit`).
pub async fn home_pass(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
    body: PassRequest,
) -> AppResult<Pass> {
    let now = svc.now().millis();
    let s = svc.clone();
    let a = actor.clone();
    svc.db
        .run(move |c| {
            load(c, &section_id)?;
            drawn(c, &section_id)?;
            let user =
                identity_repo::find_user(c, &a.user.id)?.ok_or_else(AppError::unauthenticated)?;
            let code = &s.config.evaluation.centre_code;
            let expert = repo::all_experts(c)?
                .into_iter()
                .find(|e| e.centre == *code && e.email.eq_ignore_ascii_case(&user.email))
                .ok_or_else(|| {
                    pass_rejected("your account is not an expert in this centre's pool")
                })?;
            repo::seat(c, &section_id, &expert.id)?
                .filter(|r| r.status == SeatStatus::Confirmed)
                .ok_or_else(|| {
                    pass_rejected("you hold no confirmed seat on this section's committee")
                })?;
            issue_pass(
                &s.centre_key,
                code,
                &expert.id,
                &body.expert_key,
                &section_id,
                now,
                body.minutes.unwrap_or(480),
            )
        })
        .await
}
