//! Seating the committee: the host draws it right after the opening (from
//! the trusted centres' pools, skipping every conflict, with reserves), the
//! drawn experts are called by e-mail and confirm or decline with a one-use
//! token, a decline or a no-show calls the next reserve of the specialty,
//! and the host follows it all by counts — never names.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::pool::entry;
use super::{by_chronograph, committee_counts, drawn, seats_missing};
use crate::crypto::{self, jcs};
use crate::db::audit::Who;
use crate::db::evaluation::{
    self as repo, ContributionRow, DrawRequestRow, EvaluationRow, ExpertRow, SeatRow,
};
use crate::db::{identity as identity_repo, jobs, outbox, DbConn};
use crate::domain::ids::{OrgId, SectionId};
use crate::domain::section::SectionState;
use crate::domain::states::{EvaluationPhase, JobKind, JobState, SeatStatus};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::evaluation::draw::{self, DrawRequest, Parties, Snapshot};
use crate::evaluation::scoring::{EvalOutcome, Qualification};
use crate::evaluation::seed;
use crate::service::action::{Action, Change, IdempotencyKey, Tx};
use crate::service::opening::{hosted, load, wrong_phase, PublishedSection};
use crate::service::{transition, Actor, Services};

/// Seats by specialty, then by status (`standby`, `called`, …).
pub type SeatCounts = BTreeMap<String, BTreeMap<String, u32>>;

/// Everyone the committee must avoid: the tenderer, every bidder that
/// sealed a bid (whatever became of it) and their people.
fn parties(c: &mut DbConn, section_id: &SectionId, tenderer_org: &OrgId) -> AppResult<Parties> {
    let org_code = |c: &mut DbConn, id: &OrgId| -> AppResult<String> {
        Ok(identity_repo::find_org(c, id)?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("organisation missing")))?
            .credit_code)
    };
    let tenderer = org_code(c, tenderer_org)?;
    let mut bidders = BTreeSet::new();
    let mut people = BTreeSet::new();
    let orgs: BTreeSet<OrgId> = crate::db::bids::bids_of(c, section_id)?
        .into_iter()
        .map(|b| b.bidder)
        .collect();
    let mut bidder_ids = BTreeMap::new();
    for org in orgs {
        let code = org_code(c, &org)?;
        bidder_ids.insert(org.to_string(), code.clone());
        bidders.insert(code);
        for u in identity_repo::users_of_org(c, &org)? {
            people.insert(draw::party_digest(&u.email));
        }
    }
    Ok(Parties {
        tenderer,
        bidders: bidders.into_iter().collect(),
        bidder_ids,
        bidder_people: people.into_iter().collect(),
    })
}

fn answer_ms(svc: &Services) -> i64 {
    svc.config.evaluation.answer_hours as i64 * 3_600_000
}

fn call_mail(
    svc: &Services,
    c: &mut DbConn,
    x: &PublishedSection,
    expert: &ExpertRow,
    token: &str,
    now: i64,
) -> AppResult<()> {
    let hours = svc.config.evaluation.answer_hours;
    let url = format!("{}/api/evaluation/answer", svc.public_url);
    let body = format!(
        "{name}：\n您被抽取为以下标段的评标专家（远程异地评标）。\n项目：{project}\n标段：{code} {section}\n\
         请在 {hours} 小时内确认或拒绝：POST {url}\n{{\"token\": \"{token}\", \"accept\": true}}\n\
         如与投标人或招标人存在利害关系，请拒绝并说明回避。请勿向任何人透露本次抽取。\n\n---\n\n\
         Dear {name},\nyou were drawn as an evaluation expert for:\nProject: {project}\nSection: {code} {section}\n\
         Confirm or decline within {hours} hours: POST {url}\n{{\"token\": \"{token}\", \"accept\": true}}\n\
         If you have a conflict with a bidder or the tenderer, decline and say so. Keep this draw confidential.\n",
        name = expert.name,
        project = x.p.name,
        code = x.s.code,
        section = x.s.name,
    );
    outbox::enqueue(
        c,
        "expert_called",
        &expert.email,
        &format!("【评标专家抽取】{} {} / You were drawn", x.p.name, x.s.code),
        &body,
        now,
    )?;
    Ok(())
}

/// Calls the expert of a seat: a one-use answer token, the e-mail, and the
/// no-show job. The caller saves the seat (`transition::seat`).
fn call(
    svc: &Services,
    c: &mut DbConn,
    x: &PublishedSection,
    seat: &mut SeatRow,
    now: i64,
) -> AppResult<()> {
    let expert = repo::find_expert(c, &seat.expert_id)?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("drawn expert missing")))?;
    let token = crypto::new_token("kbx");
    seat.token_hash = Some(crypto::token_hash(&token));
    seat.called_at = Some(now);
    // A no-show is replaced when the time to answer ends. Later calls end
    // later: a pending job is already due no later than this one.
    let pending = jobs::for_section(c, x.id())?
        .iter()
        .any(|j| j.kind == JobKind::EvaluationAnswerDue && j.state == JobState::Pending);
    if !pending {
        jobs::schedule(
            c,
            x.id(),
            JobKind::EvaluationAnswerDue,
            now + answer_ms(svc),
            now,
        )?;
    }
    call_mail(svc, c, x, &expert, &token, now)
}

/// Calls the next reserve of `specialty` (the first in draw order still on
/// standby), if any is left; the position of the seat called.
pub(super) fn call_reserve(
    tx: &mut Tx<'_>,
    x: &PublishedSection,
    specialty: &str,
) -> AppResult<Option<i32>> {
    let Some(mut next) = repo::seats_of(tx.c, x.id())?
        .into_iter()
        .find(|r| r.status == SeatStatus::Standby && r.specialty == specialty)
    else {
        return Ok(None);
    };
    call(tx.svc, tx.c, x, &mut next, tx.now)?;
    transition::seat(tx.c, &mut next, SeatStatus::Called)?;
    Ok(Some(next.position))
}

/// The committee as drawn.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CommitteeDrawn {
    pub section_id: SectionId,
    pub phase: EvaluationPhase,
    /// SHA-256 commitment to the platform's seed, revealed at publication.
    pub seed_commitment: String,
    pub snapshot_hash: String,
    /// Drawn members plus tenderer representatives.
    pub committee_size: u32,
    pub seats: SeatCounts,
    /// Candidates passed over for a conflict of interest (回避).
    pub skipped_for_conflict: usize,
    /// Contributors whose value was not revealed in time (counted as zero).
    pub withheld: Vec<String>,
}

/// The draw asked for: the snapshot and the platform's seed are fixed, the
/// contributors reveal their values until `reveals_due_at_ms`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DrawRequested {
    pub section_id: SectionId,
    /// SHA-256 commitment to the platform's seed, revealed at publication.
    pub seed_commitment: String,
    pub snapshot_hash: String,
    pub pool_size: usize,
    /// The parties whose values are mixed into the seed, in order.
    pub contributors: Vec<String>,
    pub reveals_due_at_ms: i64,
}

fn refused_centres(svc: &Services, request: &DrawRequest) -> AppResult<()> {
    let unknown: Vec<&str> = request
        .centres
        .iter()
        .map(String::as_str)
        .filter(|code| svc.trust.get(code).is_none())
        .collect();
    if !unknown.is_empty() {
        return Err(AppError::invalid_field(
            "centres",
            format!("not trusted by this centre: {}", unknown.join(", ")),
        ));
    }
    Ok(())
}

/// The host asks for the committee's draw (evaluating sections only, once):
/// every contributor must have committed to its value; the pool snapshot,
/// the parties to avoid and the platform's seed are fixed and logged by
/// their hashes, and the contributors have `evaluation.reveal_minutes` to
/// reveal. The committee is drawn when the last value is in
/// ([`super::reveal_contribution`]) or the time ends ([`super::reveals_due`]).
pub async fn draw_committee(
    svc: &Services,
    actor: &Actor,
    key: Option<IdempotencyKey>,
    section_id: SectionId,
    request: DrawRequest,
) -> AppResult<DrawRequested> {
    Action::new("evaluation.draw", &section_id)
        .with_request(&request)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let (svc, now) = (tx.svc, tx.now);
            let x = hosted(tx.c, a, &section_id, "drawing the committee")?;
            if x.state() != SectionState::Evaluating {
                return Err(wrong_phase(x.state(), "drawing the committee"));
            }
            if repo::find(tx.c, &section_id)?.is_some()
                || repo::draw_request(tx.c, &section_id)?.is_some()
            {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    "the committee of this section has been drawn already",
                ));
            }
            refused_centres(svc, &request)?;
            draw::check_composition(&request)
                .map_err(|e| AppError::invalid_field("requirements", e.to_string()))?;
            let contributors = seed::contributors(&request.centres, &svc.config.evaluation.centre_code);
            let committed: BTreeSet<String> = repo::contributions_of(tx.c, &section_id)?
                .into_iter()
                .map(|r| r.party)
                .collect();
            let waiting: Vec<&str> = contributors
                .iter()
                .map(String::as_str)
                .filter(|p| !committed.contains(*p))
                .collect();
            if !waiting.is_empty() {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    format!(
                        "the draw needs the commitment of every contributor to its seed first; waiting for: {}",
                        waiting.join(", ")
                    ),
                ));
            }
            let parties = parties(tx.c, &section_id, &x.p.tenderer_org_id)?;
            let centres: BTreeSet<&str> = request.centres.iter().map(String::as_str).collect();
            let pool = repo::all_experts(tx.c)?
                .iter()
                .filter(|e| e.available && centres.contains(e.centre.as_str()))
                .map(entry)
                .collect::<AppResult<Vec<_>>>()?;
            let snapshot = Snapshot::new(pool);
            // Whether there are enough eligible experts does not depend on
            // the seed: a draw that cannot succeed is refused now.
            draw::draw(&request, &parties, &snapshot, &[0u8; 32])
                .map_err(|e| AppError::invalid_field("requirements", e.to_string()))?;
            let platform_seed = crypto::random_bytes::<32>();
            let commitment = draw::seed_commitment(&platform_seed);
            let snapshot_hash = snapshot.hash();
            let parties_hash =
                crypto::sha256_hex(&jcs::to_vec(&parties).map_err(AppError::internal)?);
            let due = now + svc.config.evaluation.reveal_minutes as i64 * 60_000;
            repo::insert_draw_request(
                tx.c,
                &DrawRequestRow {
                    section_id: section_id.clone(),
                    request_json: serde_json::to_string(&request).map_err(AppError::internal)?,
                    parties_json: serde_json::to_string(&parties).map_err(AppError::internal)?,
                    snapshot_json: serde_json::to_string(&snapshot).map_err(AppError::internal)?,
                    seed_commitment: commitment.clone(),
                    sealed_seed: svc
                        .atrest
                        .seal(&platform_seed_label(&section_id), &platform_seed),
                    contributors: serde_json::to_string(&contributors)
                        .map_err(AppError::internal)?,
                    reveals_due_at: due,
                    created_at: now,
                },
            )?;
            jobs::schedule(tx.c, &section_id, JobKind::EvaluationRevealsDue, due, now)?;
            // Logged now: the platform seed's commitment, the pool
            // snapshot's and the parties' hashes, the request and who
            // contributes — never who will be drawn.
            tx.record(
                Change::new(&section_id, "evaluation.draw_requested")
                    .data(json!({"contributors": contributors, "reveals_due_at_ms": due}))
                    .logged(json!({
                        "seed_commitment": commitment,
                        "snapshot_hash": snapshot_hash,
                        "parties_hash": parties_hash,
                        "request": request,
                        "pool_size": snapshot.experts.len(),
                        "host_centre": svc.config.evaluation.centre_code,
                        "host_centre_key": hex::encode(svc.centre_key.verifying_key().as_bytes()),
                        "contributors": contributors,
                        "reveals_due_at_ms": due,
                    })),
            )?;
            Ok(DrawRequested {
                section_id,
                seed_commitment: commitment,
                snapshot_hash,
                pool_size: snapshot.experts.len(),
                contributors,
                reveals_due_at_ms: due,
            })
        })
        .await
}

/// The at-rest label of the platform's seed for a section.
pub(crate) fn platform_seed_label(section_id: &SectionId) -> String {
    format!("draw-platform-seed/{section_id}")
}

/// The at-rest label of the mixed seed the draw used.
pub(crate) fn seed_label(section_id: &SectionId) -> String {
    format!("draw-seed/{section_id}")
}

/// Draws the committee from the request and the contributions as they
/// stand (each revealed or withheld): seats, calls to the members, and the
/// evaluation row holding the mixed seed sealed until publication.
pub(super) fn draw_now(
    tx: &mut Tx<'_>,
    req: &DrawRequestRow,
    contributions: &[ContributionRow],
) -> AppResult<CommitteeDrawn> {
    let (svc, now) = (tx.svc, tx.now);
    let section_id = req.section_id.clone();
    let x = load(tx.c, &section_id)?;
    let request: DrawRequest =
        serde_json::from_str(&req.request_json).map_err(AppError::internal)?;
    let parties: Parties = serde_json::from_str(&req.parties_json).map_err(AppError::internal)?;
    let snapshot: Snapshot =
        serde_json::from_str(&req.snapshot_json).map_err(AppError::internal)?;
    let contributors: Vec<String> =
        serde_json::from_str(&req.contributors).map_err(AppError::internal)?;
    let platform_seed = svc
        .atrest
        .open(&platform_seed_label(&section_id), &req.sealed_seed)
        .map_err(AppError::internal)?;
    let platform_seed: [u8; 32] = platform_seed[..]
        .try_into()
        .map_err(|_| AppError::internal(anyhow::anyhow!("the platform seed is not 32 bytes")))?;
    let mut values = Vec::new();
    let mut withheld = Vec::new();
    for party in &contributors {
        let row = contributions
            .iter()
            .find(|r| &r.party == party)
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("a contributor without a commitment"))
            })?;
        match row.value.as_deref().and_then(crypto::hex_array::<32>) {
            Some(v) => values.push(Some(v)),
            None => {
                withheld.push(party.clone());
                values.push(None);
            }
        }
    }
    let seed = seed::mix(&platform_seed, &values);
    let result = draw::draw(&request, &parties, &snapshot, &seed).map_err(AppError::internal)?;
    let spec = &x.params.evaluation;
    let k = draw::k_for(
        &seed,
        spec.price
            .as_ref()
            .map(|f| f.k_coefficients.as_slice())
            .unwrap_or(&[]),
    );
    let mut seats = Vec::new();
    for (i, s) in result.members.iter().chain(&result.reserves).enumerate() {
        let mut seat = SeatRow {
            section_id: section_id.clone(),
            expert_id: crate::domain::ids::ExpertId::from_db(s.expert_id.clone()),
            specialty: s.specialty.clone(),
            position: i as i32,
            status: SeatStatus::Standby,
            token_hash: None,
            expert_key: None,
            pass_json: None,
            called_at: None,
            responded_at: None,
        };
        if i < result.members.len() {
            call(svc, tx.c, &x, &mut seat, now)?;
            seat.status = SeatStatus::Called;
        }
        seats.push(seat);
    }
    repo::insert(
        tx.c,
        &EvaluationRow {
            section_id: section_id.clone(),
            phase: EvaluationPhase::Seating,
            request_json: req.request_json.clone(),
            parties_json: req.parties_json.clone(),
            snapshot_json: req.snapshot_json.clone(),
            snapshot_hash: result.snapshot_hash.clone(),
            seed_commitment: req.seed_commitment.clone(),
            sealed_seed: svc.atrest.seal(&seed_label(&section_id), &seed),
            draw_json: serde_json::to_string(&result).map_err(AppError::internal)?,
            k_coefficient: k.map(|k| k.to_string()),
            outcome_json: None,
            report_json: None,
            report_hash: None,
            signing_ends_at: None,
            published_at: None,
            publicity_ends_at: None,
            paused_since: None,
            awarded_at: None,
            created_at: now,
            updated_at: now,
        },
    )?;
    repo::insert_seats(tx.c, &seats)?;
    let members = result.members.len() as u32 + request.tenderer_representatives;
    tx.record(
        Change::new(&section_id, "evaluation.committee_drawn")
            .data(
                json!({"committee_size": members, "reserves": result.reserves.len(),
                         "withheld": withheld}),
            )
            .logged(
                json!({"committee_size": members, "reserves": result.reserves.len(),
                           "withheld": withheld}),
            ),
    )?;
    Ok(CommitteeDrawn {
        section_id,
        phase: EvaluationPhase::Seating,
        seed_commitment: req.seed_commitment.clone(),
        snapshot_hash: result.snapshot_hash,
        committee_size: members,
        seats: committee_counts(&seats),
        skipped_for_conflict: result.skipped.len(),
        withheld,
    })
}

/// A drawn expert's answer, with the token from the e-mail.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    pub token: String,
    pub accept: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

/// The seat after the answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct DrawAnswered {
    pub section_id: SectionId,
    pub status: SeatStatus,
    pub reserve_called: bool,
}

/// A drawn expert confirms or declines (the token from the e-mail is the
/// credential). A decline calls the next reserve of the same specialty.
pub async fn answer(
    svc: &Services,
    request_id: String,
    body: AnswerRequest,
) -> AppResult<DrawAnswered> {
    let who = Who {
        actor_id: None,
        request_id: Some(request_id),
    };
    crate::service::action::transact(svc, who, move |tx| {
        let now = tx.now;
        let hash = crypto::token_hash(&body.token);
        let invalid = || {
            AppError::new(
                ErrorCode::TokenInvalid,
                "this answer link is not valid (used, replaced or unknown)",
            )
        };
        let mut seat = repo::seat_by_token(tx.c, &hash)?
            .filter(|s| s.status == SeatStatus::Called)
            .ok_or_else(invalid)?;
        let ev = repo::find(tx.c, &seat.section_id)?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("seat without evaluation")))?;
        let deadline = seat.called_at.unwrap_or(0) + answer_ms(tx.svc);
        if !ev.phase.is_sitting() || now >= deadline {
            return Err(AppError::new(
                ErrorCode::TokenInvalid,
                "the time to answer has passed",
            ));
        }
        let section_id = seat.section_id.clone();
        let x = load(tx.c, &section_id)?;
        seat.token_hash = None;
        seat.responded_at = Some(now);
        let to = if body.accept {
            SeatStatus::Confirmed
        } else {
            SeatStatus::Declined
        };
        transition::seat(tx.c, &mut seat, to).map_err(|e| {
            if e.code == ErrorCode::Conflict {
                AppError::new(ErrorCode::Conflict, "this seat was answered meanwhile")
            } else {
                e
            }
        })?;
        let reserve = if body.accept {
            None
        } else {
            call_reserve(tx, &x, &seat.specialty)?
        };
        let called = reserve.is_some();
        let seats = repo::seats_of(tx.c, &section_id)?;
        let missing = seats_missing(&ev, &seats)?;
        let kind = if body.accept {
            "evaluation.expert_confirmed"
        } else {
            "evaluation.expert_declined"
        };
        // The seat's history is logged by position: which expert sits in
        // it is only known from the draw, published with the result.
        tx.record(
            Change::new(&section_id, kind)
                .data(
                    json!({"specialty": seat.specialty, "reserve_called": called,
                             "seats_missing": missing}),
                )
                .logged(json!({"seat": seat.position, "reserve": reserve})),
        )?;
        if missing == 0 && seats.iter().all(|r| r.status != SeatStatus::Called) {
            tx.record(Change::new(&section_id, "evaluation.committee_complete"))?;
        }
        Ok(DrawAnswered {
            section_id,
            status: seat.status,
            reserve_called: called,
        })
    })
    .await
}

/// What the answer job did.
pub enum AnswersDue {
    /// Replaced at least one no-show; nothing else is waiting.
    Replaced,
    /// Nothing to do.
    Idle,
    /// Other calls are still open: the job is due again later.
    Moved,
}

/// Drawn experts who did not answer in time count as declining: the next
/// reserve of the specialty is called (chronograph, in its transaction).
pub fn answers_due(tx: &mut Tx<'_>, section_id: &SectionId) -> AppResult<AnswersDue> {
    let now = tx.now;
    let Some(ev) = repo::find(tx.c, section_id)? else {
        return Ok(AnswersDue::Idle);
    };
    if !ev.phase.is_sitting() {
        return Ok(AnswersDue::Idle);
    }
    let x = load(tx.c, section_id)?;
    let answer_ms = answer_ms(tx.svc);
    let mut replaced = 0;
    for mut seat in repo::seats_of(tx.c, section_id)? {
        if seat.status != SeatStatus::Called || seat.called_at.unwrap_or(0) + answer_ms > now {
            continue;
        }
        seat.token_hash = None;
        seat.responded_at = Some(now);
        if transition::seat(tx.c, &mut seat, SeatStatus::Declined).is_err() {
            continue;
        }
        let reserve = call_reserve(tx, &x, &seat.specialty)?;
        let reserve_called = reserve.is_some();
        replaced += 1;
        tx.record(
            Change::new(section_id, "evaluation.expert_no_answer")
                .data(json!({"specialty": seat.specialty, "reserve_called": reserve_called}))
                .logged(json!({"seat": seat.position, "reserve": reserve}))
                .by(by_chronograph()),
        )?;
    }
    let next = repo::seats_of(tx.c, section_id)?
        .iter()
        .filter(|s| s.status == SeatStatus::Called)
        .filter_map(|s| s.called_at)
        .min();
    match next {
        Some(t) => {
            jobs::schedule(
                tx.c,
                section_id,
                JobKind::EvaluationAnswerDue,
                t + answer_ms,
                now,
            )?;
            Ok(AnswersDue::Moved)
        }
        None if replaced > 0 => Ok(AnswersDue::Replaced),
        None => Ok(AnswersDue::Idle),
    }
}

/// The result so far: the qualification once decided, the whole outcome
/// once finished.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OutcomeSoFar {
    Finished(EvalOutcome),
    Qualified { qualification: Vec<Qualification> },
}

/// The host's view of the evaluation: phase, counts, never names.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationStatus {
    pub section_id: SectionId,
    pub phase: EvaluationPhase,
    pub seed_commitment: String,
    pub snapshot_hash: String,
    pub seats: SeatCounts,
    pub seats_missing: u32,
    /// Members whose pass the room admitted.
    pub admitted: usize,
    pub outcome: Option<OutcomeSoFar>,
}

pub async fn status(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
) -> AppResult<EvaluationStatus> {
    let a = actor.clone();
    svc.db
        .run(move |c| {
            hosted(c, &a, &section_id, "seeing the evaluation")?;
            let ev = drawn(c, &section_id)?;
            let seats = repo::seats_of(c, &section_id)?;
            let admitted = seats.iter().filter(|s| s.expert_key.is_some()).count();
            Ok(EvaluationStatus {
                seats: committee_counts(&seats),
                seats_missing: seats_missing(&ev, &seats)?,
                admitted,
                outcome: ev
                    .outcome_json
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(AppError::internal)?,
                phase: ev.phase,
                seed_commitment: ev.seed_commitment,
                snapshot_hash: ev.snapshot_hash,
                section_id,
            })
        })
        .await
}
