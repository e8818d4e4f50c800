//! The result and the report: the host closes scoring, the result is
//! computed from the signed reviews and scores with the same function the
//! verifier calls (`evaluation::scoring::evaluate`), outliers are flagged
//! until confirmed, and the evaluation report (`kaibiao-evaluation-report/1`)
//! is written and its hash logged; every member then signs it, agreeing or
//! recording dissent.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::panel::{flag_outliers, OutlierFlag};
use super::statements::{signed_by_member, Signed};
use super::{announced_bids, by_expert, drawn, panel, seats_missing};
use crate::crypto::{self, jcs};
use crate::db::evaluation::{self as repo, ReportSignatureRow};
use crate::db::DbConn;
use crate::domain::decimal::{Points, Ratio};
use crate::domain::ids::{ExpertId, SectionId};
use crate::domain::states::EvaluationPhase;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::evaluation::scoring;
use crate::evaluation::statements::{EvaluationReport, ReportStatement, REPORT_FORMAT};
use crate::service::action::{transact, Action, Change, IdempotencyKey};
use crate::service::opening::{hosted, load};
use crate::service::{transition, Actor, Services};

/// Everything the computation of the result takes, from the record: the
/// panel sitting now, and only its members' reviews and scores (a member who
/// recused keeps the signed record of what they did, which no longer counts).
pub fn eval_input(c: &mut DbConn, section_id: &SectionId) -> AppResult<scoring::EvalInput> {
    let x = load(c, section_id)?;
    let ev = drawn(c, section_id)?;
    let seats = repo::seats_of(c, section_id)?;
    let sitting: BTreeSet<ExpertId> = panel(&seats).iter().map(|s| s.expert_id.clone()).collect();
    Ok(scoring::EvalInput {
        spec: x.params.evaluation,
        k: ev
            .k_coefficient
            .as_deref()
            .map(Ratio::parse)
            .transpose()
            .map_err(AppError::internal)?,
        panel: panel(&seats)
            .iter()
            .map(|s| s.expert_id.to_string())
            .collect(),
        bids: announced_bids(c, section_id)?,
        votes: repo::votes_of(c, section_id)?
            .into_iter()
            .filter(|r| sitting.contains(&r.expert_id))
            .map(|r| scoring::Vote {
                expert: r.expert_id.into_string(),
                bid: r.bid,
                pass: r.pass,
                reason: r.reason,
            })
            .collect(),
        scores: repo::scores_of(c, section_id)?
            .into_iter()
            .filter(|r| sitting.contains(&r.expert_id))
            .map(|r| scoring::ItemScore {
                expert: r.expert_id.into_string(),
                bid: r.bid,
                item: r.item,
                points: Points::from_hundredths(r.points),
            })
            .collect(),
    })
}

/// What closing scoring did: the report written (and open for signatures),
/// or outliers that must be confirmed first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Finished {
    Report {
        section_id: SectionId,
        phase: EvaluationPhase,
        report_hash: String,
        signing_ends_at_ms: i64,
        report: Box<EvaluationReport>,
    },
    Flagged {
        section_id: SectionId,
        phase: EvaluationPhase,
        flags: Vec<OutlierFlag>,
        message: String,
    },
}

/// The host closes scoring: the result is computed from the signed reviews
/// and scores (refused, naming what is missing, while any is), and the
/// evaluation report made; its hash is logged and every expert signs it.
pub async fn finish(
    svc: &Services,
    actor: &Actor,
    key: Option<IdempotencyKey>,
    section_id: SectionId,
) -> AppResult<Finished> {
    Action::new("evaluation.finish", &section_id)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let now = tx.now;
            let x = hosted(tx.c, a, &section_id, "finishing the evaluation")?;
            let mut ev = drawn(tx.c, &section_id)?;
            if ev.phase != EvaluationPhase::Scoring {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    format!(
                        "the evaluation can be finished while scoring, not while {}",
                        ev.phase
                    ),
                ));
            }
            let seats = repo::seats_of(tx.c, &section_id)?;
            let missing = seats_missing(&ev, &seats)?;
            if missing > 0 {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    format!("the committee lacks {missing} member(s): a recusal left a seat without a reserve"),
                ));
            }
            let input = eval_input(tx.c, &section_id)?;
            let outcome = scoring::evaluate(&input)
                .map_err(|e| AppError::new(ErrorCode::InvalidTransition, e.to_string()))?;
            // An expert far from the panel's median must confirm with a
            // reason first: flagged here (to the expert by e-mail, to the
            // supervisor in the room), and the evaluation stays in scoring.
            let open = flag_outliers(tx, &x, &outcome)?;
            if !open.is_empty() {
                return Ok(Finished::Flagged {
                    section_id,
                    phase: EvaluationPhase::Scoring,
                    flags: open,
                    message: "experts far from the panel's median must confirm their scores with a reason".into(),
                });
            }
            let report = EvaluationReport {
                format: REPORT_FORMAT.into(),
                section_id: section_id.to_string(),
                section_code: x.s.code.clone(),
                project_name: x.p.name.clone(),
                evaluation: input.spec,
                k: input.k,
                panel: input.panel,
                seed_commitment: ev.seed_commitment.clone(),
                snapshot_hash: ev.snapshot_hash.clone(),
                outcome: outcome.clone(),
                finished_at_ms: now,
            };
            let text = String::from_utf8(jcs::to_vec(&report).map_err(AppError::internal)?)
                .map_err(AppError::internal)?;
            let hash = crypto::sha256_hex(text.as_bytes());
            transition::evaluation(
                tx.c,
                &section_id,
                EvaluationPhase::Scoring,
                EvaluationPhase::Signing,
                now,
            )?;
            let ends = now + tx.svc.config.evaluation.signing_minutes as i64 * 60_000;
            ev.phase = EvaluationPhase::Signing;
            ev.outcome_json = Some(serde_json::to_string(&outcome).map_err(AppError::internal)?);
            ev.report_json = Some(text);
            ev.report_hash = Some(hash.clone());
            ev.signing_ends_at = Some(ends);
            ev.updated_at = now;
            repo::save(tx.c, &ev)?;
            tx.record(
                Change::new(&section_id, "evaluation.report")
                    .data(json!({"report_hash": hash, "signing_ends_at_ms": ends}))
                    .logged(json!({"report_hash": hash})),
            )?;
            Ok(Finished::Report {
                section_id,
                phase: EvaluationPhase::Signing,
                report_hash: hash,
                signing_ends_at_ms: ends,
                report: Box::new(report),
            })
        })
        .await
}

/// The signature taken.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportSigned {
    pub recorded: bool,
}

/// An expert signs the report's hash, agreeing or recording dissent. Once.
pub async fn sign_report(
    svc: &Services,
    section_id: SectionId,
    v: Signed<ReportStatement>,
) -> AppResult<ReportSigned> {
    transact(svc, by_expert(), move |tx| {
        let now = tx.now;
        let st = &v.statement;
        let (seat, text) = signed_by_member(tx.c, &section_id, &v)?;
        let ev = drawn(tx.c, &section_id)?;
        if ev.phase != EvaluationPhase::Signing || now >= ev.signing_ends_at.unwrap_or(0) {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "the report is not open for signatures",
            ));
        }
        if ev.report_hash.as_deref() != Some(st.report_hash.as_str()) {
            return Err(AppError::invalid_field(
                "statement.report_hash",
                "not the hash of this section's report",
            ));
        }
        let dissent = st
            .dissent
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty());
        if !st.agree && dissent.is_none() {
            return Err(AppError::invalid_field(
                "statement.dissent",
                "disagreeing needs the dissent written down",
            ));
        }
        if dissent.is_some_and(|d| d.chars().count() > 4000) {
            return Err(AppError::invalid_field(
                "statement.dissent",
                "at most 4000 characters",
            ));
        }
        if repo::report_signatures_of(tx.c, &section_id)?
            .iter()
            .any(|r| r.expert_id == seat.expert_id)
        {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "this expert has signed the report already",
            ));
        }
        repo::insert_report_signature(
            tx.c,
            &ReportSignatureRow {
                section_id: section_id.clone(),
                expert_id: seat.expert_id.clone(),
                agree: st.agree,
                dissent: dissent.map(str::to_string),
                deemed: false,
                statement: Some(text),
                signature: Some(v.signature.clone()),
                at: now,
            },
        )?;
        tx.record(
            Change::new(&section_id, "evaluation.report_signed").data(json!({"agree": st.agree})),
        )?;
        Ok(ReportSigned { recorded: true })
    })
    .await
}
