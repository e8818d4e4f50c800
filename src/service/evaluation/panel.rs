//! The panel's own record during the session: outlier flags (an expert far
//! from the panel's median confirms with a signed reason), recusals (回避)
//! that call the next reserve, and clarifications (澄清) asked of bidders and
//! answered, signed, within a time limit.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::seating::call_reserve;
use super::statements::{signed_by_member, Signed};
use super::{announced_bids, by_expert, drawn};
use crate::crypto;
use crate::db::evaluation::{self as repo, ClarificationRow, OutlierRow};
use crate::db::{identity as identity_repo, keys as keys_repo, outbox};
use crate::domain::decimal::Points;
use crate::domain::identity::KeyPurpose;
use crate::domain::ids::{ClarificationId, ExpertId, SectionId};
use crate::domain::states::{EvaluationPhase, SeatStatus};
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::evaluation::scoring;
use crate::evaluation::statements::{
    verify_statement, ClarificationAnswerStatement, ClarificationStatement, OutlierStatement,
    RecusalStatement, CLARIFICATION_ANSWER_LABEL,
};
use crate::service::action::{transact, Action, Change, IdempotencyKey, Tx};
use crate::service::opening::{bounded_text, load, PublishedSection};
use crate::service::{transition, Actor, Services};

/// An expert's total for a bid far from the panel's median, not confirmed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OutlierFlag {
    pub expert_id: String,
    pub bid: String,
    pub total: Points,
    pub median: Points,
}

/// Flags every outlier not flagged yet (mailing the expert; the supervisor
/// sees it in the room); returns those still unconfirmed.
pub(super) fn flag_outliers(
    tx: &mut Tx<'_>,
    x: &PublishedSection,
    outcome: &scoring::EvalOutcome,
) -> AppResult<Vec<OutlierFlag>> {
    let section_id = x.id();
    let flags = repo::outliers_of(tx.c, section_id)?;
    let mut open = Vec::new();
    for o in &outcome.outliers {
        let flag = flags
            .iter()
            .find(|f| f.expert_id.as_str() == o.expert && f.bid == o.bid);
        if flag.is_some_and(|f| f.confirmed_at.is_some()) {
            continue;
        }
        if flag.is_none() {
            let expert = ExpertId::from_db(o.expert.clone());
            repo::insert_outlier(
                tx.c,
                &OutlierRow {
                    section_id: section_id.clone(),
                    expert_id: expert.clone(),
                    bid: o.bid.clone(),
                    total: o.total.units(),
                    median: o.median.units(),
                    flagged_at: tx.now,
                    reason: None,
                    statement: None,
                    signature: None,
                    confirmed_at: None,
                },
            )?;
            if let Some(e) = repo::find_expert(tx.c, &expert)? {
                let limit = x.params.evaluation.aggregation.outlier_points;
                outbox::enqueue(
                    tx.c,
                    "outlier_flagged",
                    &e.email,
                    &format!("【评分偏离提示】{} {} / Your score is far from the panel's", x.p.name, x.s.code),
                    &format!(
                        "{}：\n您对投标 {} 的评分合计 {} 分，偏离专家组中位数 {} 分超过 {} 分。\n请复核，并以签名声明确认评分及理由。\n\n---\n\n\
                         Your total of {} for bid {} is more than {} from the panel's median of {}.\nPlease review it and confirm it with a signed reason.\n",
                        e.name, o.bid, o.total, o.median, limit,
                        o.total, o.bid, limit, o.median
                    ),
                    tx.now,
                )?;
            }
            tx.record(Change::new(section_id, "evaluation.outlier_flagged").data(
                json!({"expert_id": o.expert, "bid": o.bid, "total": o.total, "median": o.median}),
            ))?;
        }
        open.push(OutlierFlag {
            expert_id: o.expert.clone(),
            bid: o.bid.clone(),
            total: o.total,
            median: o.median,
        });
    }
    Ok(open)
}

/// The flag confirmed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OutlierConfirmed {
    pub confirmed: bool,
}

/// A flagged expert confirms the score with a reason (once).
pub async fn confirm_outlier(
    svc: &Services,
    section_id: SectionId,
    v: Signed<OutlierStatement>,
) -> AppResult<OutlierConfirmed> {
    transact(svc, by_expert(), move |tx| {
        let st = &v.statement;
        let (seat, text) = signed_by_member(tx.c, &section_id, &v)?;
        let reason = bounded_text("statement.reason", &st.reason)?;
        let ev = drawn(tx.c, &section_id)?;
        if ev.phase != EvaluationPhase::Scoring {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "scores are confirmed while scoring only",
            ));
        }
        let mut flag = repo::outliers_of(tx.c, &section_id)?
            .into_iter()
            .find(|f| f.expert_id == seat.expert_id && f.bid == st.bid)
            .ok_or_else(|| {
                AppError::invalid_field("statement.bid", "no flag for this expert and bid")
            })?;
        let confirmed_already =
            || AppError::new(ErrorCode::Conflict, "this flag is confirmed already");
        if flag.confirmed_at.is_some() {
            return Err(confirmed_already());
        }
        flag.reason = Some(reason);
        flag.statement = Some(text);
        flag.signature = Some(v.signature.clone());
        flag.confirmed_at = Some(tx.now);
        if repo::confirm_outlier(tx.c, &flag)? != 1 {
            return Err(confirmed_already());
        }
        // Logged by the statement's hash and the bid only: who sits on the
        // committee is named at publication, not before.
        tx.record(
            Change::new(&section_id, "evaluation.outlier_confirmed")
                .data(json!({"expert_id": st.expert_id, "bid": st.bid}))
                .logged(json!({"bid": st.bid,
                               "statement_hash": crypto::sha256_hex(flag.statement.as_deref().unwrap_or_default().as_bytes())})),
        )?;
        Ok(OutlierConfirmed { confirmed: true })
    })
    .await
}

/// The recusal taken.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Recused {
    pub recused: bool,
    pub reserve_called: bool,
}

/// A member recuses (回避) mid-session: the seat is vacated, the member's
/// reviews and scores no longer count, and the next reserve of the
/// specialty is called; the reserve reviews and scores every bid.
pub async fn recuse(
    svc: &Services,
    section_id: SectionId,
    v: Signed<RecusalStatement>,
) -> AppResult<Recused> {
    transact(svc, by_expert(), move |tx| {
        let st = &v.statement;
        let (mut seat, text) = signed_by_member(tx.c, &section_id, &v)?;
        let reason = bounded_text("statement.reason", &st.reason)?;
        let ev = drawn(tx.c, &section_id)?;
        if !ev.phase.is_sitting() {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                format!(
                    "a member cannot recuse while the evaluation is {}",
                    ev.phase
                ),
            ));
        }
        seat.responded_at = Some(tx.now);
        transition::seat(tx.c, &mut seat, SeatStatus::Recused)?;
        repo::insert_recusal(
            tx.c,
            &repo::RecusalRow {
                section_id: section_id.clone(),
                expert_id: seat.expert_id.clone(),
                statement: text.clone(),
                signature: v.signature.clone(),
                recused_at: tx.now,
            },
        )?;
        let x = load(tx.c, &section_id)?;
        let reserve = call_reserve(tx, &x, &seat.specialty)?;
        tx.record(
            Change::new(&section_id, "evaluation.expert_recused")
                .data(json!({"specialty": seat.specialty, "reserve_called": reserve.is_some()}))
                // By hashes and seat position only: the committee is named
                // at publication.
                .logged(json!({"reason_hash": crypto::sha256_hex(reason.as_bytes()),
                               "statement_hash": crypto::sha256_hex(text.as_bytes()),
                               "seat": seat.position, "reserve": reserve})),
        )?;
        Ok(Recused {
            recused: true,
            reserve_called: reserve.is_some(),
        })
    })
    .await
}

/// The clarification asked, and its time limit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClarificationAsked {
    pub id: ClarificationId,
    pub due_at_ms: i64,
}

/// An expert asks a bidder to clarify (澄清): the bidder's users are told by
/// e-mail and answer, signed, through the platform within the time limit.
pub async fn ask_clarification(
    svc: &Services,
    section_id: SectionId,
    v: Signed<ClarificationStatement>,
) -> AppResult<ClarificationAsked> {
    transact(svc, by_expert(), move |tx| {
        let now = tx.now;
        let st = &v.statement;
        let (seat, text) = signed_by_member(tx.c, &section_id, &v)?;
        let question = bounded_text("statement.question", &st.question)?;
        if !(5..=1440).contains(&st.minutes) {
            return Err(AppError::invalid_field(
                "statement.minutes",
                "5 to 1440 minutes",
            ));
        }
        let ev = drawn(tx.c, &section_id)?;
        if !matches!(ev.phase, EvaluationPhase::Reviewing | EvaluationPhase::Scoring) {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "clarifications are asked while reviewing or scoring",
            ));
        }
        let bid = announced_bids(tx.c, &section_id)?
            .into_iter()
            .find(|b| b.bid == st.bid)
            .ok_or_else(|| {
                AppError::invalid_field("statement.bid", "not a bid announced at this opening")
            })?;
        let bidder = crate::domain::ids::OrgId::from_db(bid.bidder.clone());
        let id = ClarificationId::new();
        let due = now + st.minutes as i64 * 60_000;
        repo::insert_clarification(
            tx.c,
            &ClarificationRow {
                id: id.clone(),
                section_id: section_id.clone(),
                expert_id: seat.expert_id.clone(),
                bid: bid.bid.clone(),
                bidder: bidder.clone(),
                question: question.clone(),
                statement: text.clone(),
                signature: v.signature.clone(),
                asked_at: now,
                due_at: due,
                answer: None,
                answer_statement: None,
                answer_signature: None,
                answered_by: None,
                answered_at: None,
            },
        )?;
        let x = load(tx.c, &section_id)?;
        let due_text = Timestamp::from_millis(due).rfc3339();
        for u in identity_repo::users_of_org(tx.c, &bidder)? {
            if u.disabled_at.is_none() && u.email_verified_at.is_some() {
                outbox::enqueue(
                    tx.c,
                    "clarification",
                    &u.email,
                    &format!("【澄清通知】{} {} / Clarification requested", x.p.name, x.s.code),
                    &format!(
                        "评标委员会请贵单位就投标文件作出澄清（编号 {id}）：\n{question}\n请在 {due_text} 前通过平台作出签名答复，逾期不予接受。\n\n---\n\n\
                         The evaluation committee asks your company to clarify (ref. {id}):\n{question}\nAnswer, signed, through the platform before {due_text}; late answers are refused.\n",
                    ),
                    now,
                )?;
            }
        }
        tx.record(
            Change::new(&section_id, "evaluation.clarification_asked")
                .data(json!({"id": id, "bid": bid.bid, "due_at_ms": due}))
                .logged(json!({"clarification": id, "bid": bid.bid,
                               "question_hash": crypto::sha256_hex(question.as_bytes()),
                               "statement_hash": crypto::sha256_hex(text.as_bytes()),
                               "due_at_ms": due})),
        )?;
        Ok(ClarificationAsked { id, due_at_ms: due })
    })
    .await
}

/// A bidder's answer to a clarification.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClarificationAnswer {
    pub answer: String,
    /// The bidder's signing key's signature over the answer statement.
    pub signature: String,
}

/// The answer taken.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClarificationAnswered {
    pub id: ClarificationId,
    pub answered: bool,
}

/// The bidder answers, once, before the time limit, signed with its
/// registered signing key.
pub async fn answer_clarification(
    svc: &Services,
    actor: &Actor,
    key: Option<IdempotencyKey>,
    section_id: SectionId,
    id: ClarificationId,
    body: ClarificationAnswer,
) -> AppResult<ClarificationAnswered> {
    Action::new("clarification.answer", format!("{section_id}/{id}"))
        .with_request(&body)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let now = tx.now;
            let org = a.org()?.clone();
            load(tx.c, &section_id)?;
            drawn(tx.c, &section_id)?;
            let mut row = repo::clarification(tx.c, &id)?
                .filter(|r| r.section_id == section_id)
                .ok_or_else(|| AppError::not_found("clarification"))?;
            if row.bidder != org {
                return Err(AppError::forbidden(
                    "this clarification is addressed to another bidder",
                ));
            }
            let answered_already = || {
                AppError::new(
                    ErrorCode::Conflict,
                    "this clarification has been answered already",
                )
            };
            if row.answered_at.is_some() {
                return Err(answered_already());
            }
            if now >= row.due_at {
                return Err(AppError::new(
                    ErrorCode::DeadlinePassed,
                    "the time to answer this clarification has passed",
                ));
            }
            let answer = bounded_text("answer", &body.answer)?;
            let st = ClarificationAnswerStatement {
                section_id: section_id.to_string(),
                clarification_id: id.to_string(),
                bid: row.bid.clone(),
                answer: answer.clone(),
            };
            let key = keys_repo::active_key(tx.c, org.as_str(), KeyPurpose::BidderSigning)?
                .ok_or_else(|| {
                    AppError::new(ErrorCode::ProofInvalid, "register a signing key first")
                })?;
            let text = verify_statement(
                &key.public_key,
                CLARIFICATION_ANSWER_LABEL,
                &st,
                &body.signature,
            )
            .map_err(|_| {
                AppError::new(
                    ErrorCode::ProofInvalid,
                    "the answer's signature does not verify with your signing key",
                )
            })?;
            row.answer = Some(answer.clone());
            row.answer_statement = Some(text);
            row.answer_signature = Some(body.signature.clone());
            row.answered_by = Some(a.user.id.clone());
            row.answered_at = Some(now);
            if repo::answer_clarification(tx.c, &row)? != 1 {
                return Err(answered_already());
            }
            tx.record(
                Change::new(&section_id, "evaluation.clarification_answered")
                    .data(json!({"id": id, "bid": row.bid}))
                    .logged(json!({"clarification": id,
                                   "answer_hash": crypto::sha256_hex(answer.as_bytes()),
                                   "statement_hash": crypto::sha256_hex(row.answer_statement.as_deref().unwrap_or_default().as_bytes())})),
            )?;
            Ok(ClarificationAnswered { id, answered: true })
        })
        .await
}
