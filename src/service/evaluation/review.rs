//! The qualification review (资格审查): every member reviews every
//! announced bid, pass or fail with a reason, signed; when all are in, the
//! majority decides (`evaluation::scoring::qualify`) and scoring opens.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::statements::{signed_by_member, Signed};
use super::{announced_bids, by_expert, drawn, panel};
use crate::db::evaluation::{self as repo, EvaluationRow, VoteRow};
use crate::domain::ids::SectionId;
use crate::domain::states::EvaluationPhase;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::evaluation::scoring::{self, Qualification};
use crate::evaluation::statements::VoteStatement;
use crate::service::action::{transact, Change};
use crate::service::Services;

/// A statement taken (or recognised as a repeat of one taken).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewRecorded {
    pub recorded: bool,
    pub repeat: bool,
}

/// The decided qualification, as kept until the result.
#[derive(Serialize, Deserialize)]
struct Decided {
    qualification: Vec<Qualification>,
}

/// The bids that passed the qualification review, once decided.
pub(super) fn qualified_bids(ev: &EvaluationRow) -> AppResult<Option<Vec<String>>> {
    match &ev.outcome_json {
        None => Ok(None),
        Some(o) => {
            let d: Decided = serde_json::from_str(o).map_err(AppError::internal)?;
            Ok(Some(
                d.qualification
                    .into_iter()
                    .filter(|q| q.qualified)
                    .map(|q| q.bid)
                    .collect(),
            ))
        }
    }
}

/// An expert's qualification review of one bid. When every member has
/// reviewed every bid, the majority decides and scoring opens.
pub async fn vote(
    svc: &Services,
    section_id: SectionId,
    v: Signed<VoteStatement>,
) -> AppResult<ReviewRecorded> {
    transact(svc, by_expert(), move |tx| {
        let st = &v.statement;
        let (_, text) = signed_by_member(tx.c, &section_id, &v)?;
        let prev = repo::votes_of(tx.c, &section_id)?
            .into_iter()
            .find(|p| p.expert_id.as_str() == st.expert_id && p.bid == st.bid)
            .map(|p| p.statement);
        if let Some(prev) = prev {
            if prev == text {
                return Ok(ReviewRecorded {
                    recorded: true,
                    repeat: true,
                });
            }
            return Err(AppError::new(
                ErrorCode::Conflict,
                "this expert has reviewed this bid already",
            ));
        }
        let ev = drawn(tx.c, &section_id)?;
        // A reserve who replaced a member during scoring reviews too.
        if !matches!(
            ev.phase,
            EvaluationPhase::Reviewing | EvaluationPhase::Scoring
        ) {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                format!(
                    "qualification reviews are not taken while the evaluation is {}",
                    ev.phase
                ),
            ));
        }
        let bids = announced_bids(tx.c, &section_id)?;
        if !bids.iter().any(|b| b.bid == st.bid) {
            return Err(AppError::invalid_field(
                "statement.bid",
                "not a bid announced at this opening",
            ));
        }
        let reason = st
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if !st.pass && reason.is_none() {
            return Err(AppError::invalid_field(
                "statement.reason",
                "a failed review needs a reason",
            ));
        }
        if reason.is_some_and(|r| r.chars().count() > 2000) {
            return Err(AppError::invalid_field(
                "statement.reason",
                "at most 2000 characters",
            ));
        }
        repo::insert_vote(
            tx.c,
            &VoteRow {
                section_id: section_id.clone(),
                expert_id: crate::domain::ids::ExpertId::from_db(st.expert_id.clone()),
                bid: st.bid.clone(),
                pass: st.pass,
                reason: reason.map(str::to_string),
                statement: text,
                signature: v.signature.clone(),
                at: tx.now,
            },
        )?;
        tx.record(Change::new(&section_id, "evaluation.review_recorded"))?;
        // Everyone has reviewed everything: the majority decides.
        if ev.phase == EvaluationPhase::Reviewing {
            let seats = repo::seats_of(tx.c, &section_id)?;
            let panel_ids: Vec<String> = panel(&seats)
                .iter()
                .map(|r| r.expert_id.to_string())
                .collect();
            let votes: Vec<scoring::Vote> = repo::votes_of(tx.c, &section_id)?
                .into_iter()
                .map(|r| scoring::Vote {
                    expert: r.expert_id.into_string(),
                    bid: r.bid,
                    pass: r.pass,
                    reason: r.reason,
                })
                .collect();
            if let Ok(q) = scoring::qualify(&panel_ids, &bids, &votes) {
                crate::service::transition::check(ev.phase, EvaluationPhase::Scoring)?;
                let mut ev = ev;
                ev.phase = EvaluationPhase::Scoring;
                let rejected = q.iter().filter(|q| !q.qualified).count();
                let qualified = q.len() - rejected;
                ev.outcome_json = Some(
                    serde_json::to_string(&Decided { qualification: q })
                        .map_err(AppError::internal)?,
                );
                ev.updated_at = tx.now;
                repo::save(tx.c, &ev)?;
                tx.record(
                    Change::new(&section_id, "evaluation.qualification_decided")
                        .data(json!({"qualified": qualified, "rejected": rejected})),
                )?;
            }
        }
        Ok(ReviewRecorded {
            recorded: true,
            repeat: false,
        })
    })
    .await
}
