//! After the report: the candidates are published (公示) for
//! `publicity_days`, the draw's seed and the committee revealed; bidders
//! object (异议) and publicity pauses until the tenderer has answered every
//! objection, its end moved by the pause; at its end the section is awarded
//! (中标) and the notices go out. The published result is public.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{announced_bids, by_chronograph, drawn, panel};
use crate::crypto;
use crate::db::evaluation::{self as repo, PublicityObjectionRow, ReportSignatureRow, SeatRow};
use crate::db::{bids as bids_repo, identity as identity_repo, jobs, outbox, DbConn};
use crate::domain::decimal::{Money, Points};
use crate::domain::ids::{ExpertId, OrgId, PublicityObjectionId, SectionId};
use crate::domain::section::SectionState;
use crate::domain::states::{EvaluationPhase, JobKind};
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::evaluation::scoring::{self, BidResult, Qualification};
use crate::evaluation::statements::EvaluationReport;
use crate::notify::templates::{self, SectionRef};
use crate::service::action::{Action, Change, IdempotencyKey, Tx};
use crate::service::opening::{bounded_text, hosted, load};
use crate::service::{policy, transition, Actor, Services};

/// A candidate (中标候选人) as published.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Candidate {
    pub rank: u32,
    pub bid: String,
    pub bidder: String,
    pub bidder_name: String,
    pub price: Money,
    pub final_score: Points,
}

/// A member of the committee, revealed with the result.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommitteeMember {
    pub expert_id: ExpertId,
    pub name: String,
    pub centre: String,
    pub specialty: String,
}

fn outcome_of(ev: &crate::db::evaluation::EvaluationRow) -> AppResult<scoring::EvalOutcome> {
    serde_json::from_str(ev.outcome_json.as_deref().unwrap_or("{}")).map_err(AppError::internal)
}

fn candidates_view(c: &mut DbConn, o: &scoring::EvalOutcome) -> AppResult<Vec<Candidate>> {
    let mut v = Vec::new();
    for r in o.ranking.iter().take(3) {
        let name = identity_repo::find_org(c, &OrgId::from_db(r.bidder.clone()))?
            .map(|o| o.name)
            .unwrap_or_default();
        v.push(Candidate {
            rank: r.rank,
            bid: r.bid.clone(),
            bidder: r.bidder.clone(),
            bidder_name: name,
            price: r.price,
            final_score: r.final_score,
        });
    }
    Ok(v)
}

fn committee_view(c: &mut DbConn, seats: &[SeatRow]) -> AppResult<Vec<CommitteeMember>> {
    let mut v = Vec::new();
    for s in panel(seats) {
        let e = repo::find_expert(c, &s.expert_id)?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("seated expert missing")))?;
        v.push(CommitteeMember {
            expert_id: e.id,
            name: e.name,
            centre: e.centre,
            specialty: s.specialty.clone(),
        });
    }
    Ok(v)
}

/// The candidates published.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CandidatesPublished {
    pub section_id: SectionId,
    pub phase: EvaluationPhase,
    pub candidates: Vec<Candidate>,
    pub committee: Vec<CommitteeMember>,
    pub publicity_ends_at_ms: i64,
}

/// The host publishes the candidates (公示): every expert has signed, or the
/// signing time is over (a silent expert is recorded as agreeing).
pub async fn publish(
    svc: &Services,
    actor: &Actor,
    key: Option<IdempotencyKey>,
    section_id: SectionId,
) -> AppResult<CandidatesPublished> {
    Action::new("evaluation.publish", &section_id)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let now = tx.now;
            hosted(tx.c, a, &section_id, "publishing the candidates")?;
            let mut ev = drawn(tx.c, &section_id)?;
            if ev.phase != EvaluationPhase::Signing {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    format!(
                        "the candidates can be published after the report, not while {}",
                        ev.phase
                    ),
                ));
            }
            let seats = repo::seats_of(tx.c, &section_id)?;
            let signed: BTreeSet<ExpertId> = repo::report_signatures_of(tx.c, &section_id)?
                .into_iter()
                .map(|r| r.expert_id)
                .collect();
            let silent: Vec<ExpertId> = panel(&seats)
                .iter()
                .map(|s| s.expert_id.clone())
                .filter(|e| !signed.contains(e))
                .collect();
            let ends = ev.signing_ends_at.unwrap_or(0);
            if !silent.is_empty() && now < ends {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    format!(
                        "{} expert(s) have not signed the report; the signing time ends at {}",
                        silent.len(),
                        Timestamp::from_millis(ends).rfc3339()
                    ),
                ));
            }
            for e in &silent {
                repo::insert_report_signature(
                    tx.c,
                    &ReportSignatureRow {
                        section_id: section_id.clone(),
                        expert_id: e.clone(),
                        agree: true,
                        dissent: None,
                        deemed: true,
                        statement: None,
                        signature: None,
                        at: ends,
                    },
                )?;
            }
            transition::section(
                tx.c,
                &section_id,
                SectionState::Evaluating,
                SectionState::Publicity,
                now,
            )?;
            transition::evaluation(
                tx.c,
                &section_id,
                EvaluationPhase::Signing,
                EvaluationPhase::Publicity,
                now,
            )?;
            let publicity_ends = now + tx.svc.config.evaluation.publicity_days as i64 * 86_400_000;
            ev.phase = EvaluationPhase::Publicity;
            ev.published_at = Some(now);
            ev.publicity_ends_at = Some(publicity_ends);
            ev.updated_at = now;
            repo::save(tx.c, &ev)?;
            jobs::schedule(
                tx.c,
                &section_id,
                JobKind::EvaluationPublicityEnd,
                publicity_ends,
                now,
            )?;
            let outcome = outcome_of(&ev)?;
            let candidates = candidates_view(tx.c, &outcome)?;
            let seed = tx
                .svc
                .atrest
                .open(&super::seating::seed_label(&section_id), &ev.sealed_seed)
                .map_err(AppError::internal)?;
            let req = repo::draw_request(tx.c, &section_id)?
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("drawn without a request")))?;
            let platform_seed = tx
                .svc
                .atrest
                .open(
                    &super::seating::platform_seed_label(&section_id),
                    &req.sealed_seed,
                )
                .map_err(AppError::internal)?;
            let committee = committee_view(tx.c, &seats)?;
            tx.record(
                Change::new(&section_id, "evaluation.published")
                    .data(json!({"candidates": candidates, "committee": committee,
                                 "publicity_ends_at_ms": publicity_ends,
                                 "report_hash": ev.report_hash}))
                    .logged(
                        json!({"report_hash": ev.report_hash, "seed": hex::encode(&seed[..]),
                                   "platform_seed": hex::encode(&platform_seed[..]),
                                   "snapshot_hash": ev.snapshot_hash,
                                   "candidates": outcome.candidates,
                                   "deemed_agreed": silent.len(),
                                   "publicity_ends_at_ms": publicity_ends}),
                    ),
            )?;
            Ok(CandidatesPublished {
                section_id,
                phase: EvaluationPhase::Publicity,
                candidates,
                committee,
                publicity_ends_at_ms: publicity_ends,
            })
        })
        .await
}

fn bidder_of_section(c: &mut DbConn, section_id: &SectionId, org: &OrgId) -> AppResult<bool> {
    Ok(bids_repo::bids_of(c, section_id)?
        .iter()
        .any(|b| b.bidder == *org))
}

/// An objection or its answer.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectionText {
    /// 1 to 2000 characters.
    pub text: String,
}

/// Whether the publicity's clock runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PublicityState {
    Running,
    /// Stopped until every objection is answered.
    Paused,
}

/// The objection raised.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResultObjectionRaised {
    pub id: PublicityObjectionId,
    pub answer_due_at_ms: i64,
    pub publicity: PublicityState,
}

/// A bidder of the section objects to the publicised result (异议); the
/// publicity pauses until every objection is answered.
pub async fn raise_objection(
    svc: &Services,
    actor: &Actor,
    key: Option<IdempotencyKey>,
    section_id: SectionId,
    body: ObjectionText,
) -> AppResult<ResultObjectionRaised> {
    Action::new("publicity.object", &section_id)
        .with_request(&body)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let now = tx.now;
            let org = a.org()?.clone();
            load(tx.c, &section_id)?;
            let text = bounded_text("text", &body.text)?;
            let mut ev = drawn(tx.c, &section_id)?;
            let ends = ev.publicity_ends_at.unwrap_or(0);
            if ev.phase != EvaluationPhase::Publicity || (ev.paused_since.is_none() && now >= ends)
            {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    "objections are taken during publicity only",
                ));
            }
            if !bidder_of_section(tx.c, &section_id, &org)? {
                return Err(AppError::forbidden(
                    "only a bidder of this section may object",
                ));
            }
            let id = PublicityObjectionId::new();
            let due = now + tx.svc.config.evaluation.objection_answer_days as i64 * 86_400_000;
            repo::insert_objection(
                tx.c,
                &PublicityObjectionRow {
                    id: id.clone(),
                    section_id: section_id.clone(),
                    bidder: org.clone(),
                    raised_by: a.user.id.clone(),
                    text: text.clone(),
                    raised_at: now,
                    answer_due_at: due,
                    answer: None,
                    answered_by: None,
                    answered_at: None,
                },
            )?;
            if ev.paused_since.is_none() {
                ev.paused_since = Some(now);
                ev.updated_at = now;
                repo::save(tx.c, &ev)?;
            }
            tx.record(
                Change::new(&section_id, "evaluation.objection")
                    .data(json!({"id": id, "bidder": org, "text": text, "answer_due_at_ms": due}))
                    .logged(json!({"objection": id, "bidder": org,
                                   "text_hash": crypto::sha256_hex(text.as_bytes())})),
            )?;
            Ok(ResultObjectionRaised {
                id,
                answer_due_at_ms: due,
                publicity: PublicityState::Paused,
            })
        })
        .await
}

/// The objection answered, and where the publicity stands.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResultObjectionAnswered {
    pub id: PublicityObjectionId,
    /// Answered after its due time.
    pub late: bool,
    pub publicity: PublicityState,
    pub publicity_ends_at_ms: Option<i64>,
}

/// The tenderer answers an objection, once; when none is open any more the
/// publicity resumes, its end moved by the time it was paused.
pub async fn answer_objection(
    svc: &Services,
    actor: &Actor,
    key: Option<IdempotencyKey>,
    section_id: SectionId,
    objection: PublicityObjectionId,
    body: ObjectionText,
) -> AppResult<ResultObjectionAnswered> {
    Action::new("publicity.answer", format!("{section_id}/{objection}"))
        .with_request(&body)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let now = tx.now;
            let x = load(tx.c, &section_id)?;
            let st = policy::standing(tx.c, &a.user, &x.p, Some(&section_id))?;
            if !st.owns {
                return Err(AppError::forbidden(
                    "only the tenderer answers objections to the result",
                ));
            }
            let text = bounded_text("text", &body.text)?;
            let mut ev = drawn(tx.c, &section_id)?;
            let row = repo::objections_of(tx.c, &section_id)?
                .into_iter()
                .find(|o| o.id == objection)
                .ok_or_else(|| AppError::not_found("objection"))?;
            if row.answered_at.is_some()
                || repo::answer_objection(tx.c, &objection, &text, &a.user.id, now)? != 1
            {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    "this objection has been answered already",
                ));
            }
            let open = repo::objections_of(tx.c, &section_id)?
                .iter()
                .filter(|o| o.answered_at.is_none())
                .count();
            let mut resumed = false;
            if open == 0 {
                if let Some(since) = ev.paused_since.take() {
                    let ends = ev.publicity_ends_at.unwrap_or(now) + (now - since);
                    ev.publicity_ends_at = Some(ends);
                    ev.updated_at = now;
                    repo::save(tx.c, &ev)?;
                    jobs::schedule(
                        tx.c,
                        &section_id,
                        JobKind::EvaluationPublicityEnd,
                        ends,
                        now,
                    )?;
                    resumed = true;
                }
            }
            let late = now > row.answer_due_at;
            tx.record(
                Change::new(&section_id, "evaluation.objection_answered")
                    .data(
                        json!({"id": objection, "text": text, "late": late, "resumed": resumed,
                                 "publicity_ends_at_ms": ev.publicity_ends_at}),
                    )
                    .logged(json!({"objection": objection,
                                   "text_hash": crypto::sha256_hex(text.as_bytes()),
                                   "late": late})),
            )?;
            Ok(ResultObjectionAnswered {
                id: objection,
                late,
                publicity: if resumed {
                    PublicityState::Running
                } else {
                    PublicityState::Paused
                },
                publicity_ends_at_ms: ev.publicity_ends_at,
            })
        })
        .await
}

/// What ending the publicity did.
pub enum PublicityEnd {
    Awarded,
    /// Paused on an objection, or already done.
    Idle,
    /// Not due yet (extended): the job is due later.
    Moved,
}

/// The chronograph's end of publicity: the section is awarded (中标), the
/// award notice (中标通知书) goes to the winner and result notices to every
/// other bidder, by e-mail through the outbox.
pub fn end_publicity(tx: &mut Tx<'_>, section_id: &SectionId) -> AppResult<PublicityEnd> {
    let now = tx.now;
    let Some(mut ev) = repo::find(tx.c, section_id)? else {
        return Ok(PublicityEnd::Idle);
    };
    if ev.phase != EvaluationPhase::Publicity || ev.paused_since.is_some() {
        return Ok(PublicityEnd::Idle);
    }
    let ends = ev.publicity_ends_at.unwrap_or(i64::MAX);
    if ends > now {
        jobs::schedule(tx.c, section_id, JobKind::EvaluationPublicityEnd, ends, now)?;
        return Ok(PublicityEnd::Moved);
    }
    let x = load(tx.c, section_id)?;
    if x.state() != SectionState::Publicity {
        return Ok(PublicityEnd::Idle);
    }
    transition::section(
        tx.c,
        section_id,
        SectionState::Publicity,
        SectionState::Awarded,
        now,
    )?;
    transition::check(ev.phase, EvaluationPhase::Awarded)?;
    ev.phase = EvaluationPhase::Awarded;
    ev.awarded_at = Some(now);
    ev.updated_at = now;
    repo::save(tx.c, &ev)?;
    let outcome = outcome_of(&ev)?;
    let winner = outcome.ranking.first();
    let link = format!("{}/?section={}", tx.svc.public_url, section_id);
    let sref = SectionRef {
        project_name: &x.p.name,
        section_code: &x.s.code,
        section_name: &x.s.name,
        link: &link,
    };
    let winner_name = match winner {
        Some(w) => identity_repo::find_org(tx.c, &OrgId::from_db(w.bidder.clone()))?
            .map(|o| o.name)
            .unwrap_or_default(),
        None => String::new(),
    };
    let mut notified = 0;
    let bidders: BTreeSet<String> = announced_bids(tx.c, section_id)?
        .into_iter()
        .map(|b| b.bidder)
        .collect();
    for org in &bidders {
        let mail = match winner {
            Some(w) if w.bidder == *org => {
                templates::award_notice(&sref, &w.price.to_string(), &w.final_score.to_string())
            }
            _ => templates::result_notice(&sref, &winner_name),
        };
        for u in identity_repo::users_of_org(tx.c, &OrgId::from_db(org.clone()))? {
            if u.disabled_at.is_none() && u.email_verified_at.is_some() {
                outbox::enqueue(tx.c, mail.kind, &u.email, &mail.subject, &mail.body, now)?;
                notified += 1;
            }
        }
    }
    tx.record(
        Change::new(section_id, "evaluation.awarded")
            .data(json!({"winner": winner.map(|w| &w.bidder), "notices": notified}))
            .logged(json!({"winner_bid": winner.map(|w| &w.bid),
                           "winner": winner.map(|w| &w.bidder)}))
            .by(by_chronograph()),
    )?;
    Ok(PublicityEnd::Awarded)
}

/// A member's signature on the report (or its silence, deemed agreement).
#[derive(Debug, Serialize, ToSchema)]
pub struct SignatureView {
    pub expert_id: ExpertId,
    pub agree: bool,
    pub dissent: Option<String>,
    pub deemed: bool,
    pub signature: Option<String>,
    pub at_ms: i64,
}

/// An objection to the result and its answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultObjectionView {
    pub id: PublicityObjectionId,
    pub bidder: OrgId,
    pub text: String,
    pub raised_at_ms: i64,
    pub answer_due_at_ms: i64,
    pub answer: Option<String>,
    pub answered_at_ms: Option<i64>,
}

/// The published result.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicResult {
    pub section_id: SectionId,
    pub phase: EvaluationPhase,
    pub candidates: Vec<Candidate>,
    pub ranking: Vec<BidResult>,
    pub qualification: Vec<Qualification>,
    pub committee: Vec<CommitteeMember>,
    pub report_hash: Option<String>,
    pub report: Option<EvaluationReport>,
    pub signatures: Vec<SignatureView>,
    pub objections: Vec<ResultObjectionView>,
    pub published_at_ms: Option<i64>,
    pub publicity_ends_at_ms: Option<i64>,
    pub paused: bool,
    pub awarded_at_ms: Option<i64>,
}

/// The published result, for everyone: candidates, the committee, the report
/// (its hash and signatures), objections and answers. Nothing before the
/// candidates are published.
pub async fn public_result(svc: &Services, section_id: SectionId) -> AppResult<PublicResult> {
    svc.db
        .run(move |c| {
            load(c, &section_id)?;
            let ev = repo::find(c, &section_id)?
                .filter(|e| e.published_at.is_some())
                .ok_or_else(|| AppError::not_found("published result"))?;
            let outcome = outcome_of(&ev)?;
            let seats = repo::seats_of(c, &section_id)?;
            let signatures = repo::report_signatures_of(c, &section_id)?
                .into_iter()
                .map(|r| SignatureView {
                    expert_id: r.expert_id,
                    agree: r.agree,
                    dissent: r.dissent,
                    deemed: r.deemed,
                    signature: r.signature,
                    at_ms: r.at,
                })
                .collect();
            let objections = repo::objections_of(c, &section_id)?
                .into_iter()
                .map(|o| ResultObjectionView {
                    id: o.id,
                    bidder: o.bidder,
                    text: o.text,
                    raised_at_ms: o.raised_at,
                    answer_due_at_ms: o.answer_due_at,
                    answer: o.answer,
                    answered_at_ms: o.answered_at,
                })
                .collect();
            Ok(PublicResult {
                candidates: candidates_view(c, &outcome)?,
                committee: committee_view(c, &seats)?,
                report: ev
                    .report_json
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(AppError::internal)?,
                ranking: outcome.ranking,
                qualification: outcome.qualification,
                section_id,
                phase: ev.phase,
                report_hash: ev.report_hash,
                signatures,
                objections,
                published_at_ms: ev.published_at,
                publicity_ends_at_ms: ev.publicity_ends_at,
                paused: ev.paused_since.is_some(),
                awarded_at_ms: ev.awarded_at,
            })
        })
        .await
}
