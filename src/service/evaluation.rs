//! Remote expert evaluation (远程异地评标, DESIGN §6): the expert pool, the
//! verifiable draw right after the opening, drawn experts confirming or
//! declining (a decline calls the next reserve), passes from trusted centres,
//! and the experts' signed qualification reviews and scores.
//!
//! Confidentiality: the committee's identities never go into room events or
//! log leaves before the result; the draw's seed is sealed at rest and only
//! its commitment is logged.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::opening::{act, hosted, record, wrong_phase, Idem};
use super::{Actor, Services};
use crate::config::Config;
use crate::crypto::{self, jcs, sign};
use crate::db::audit::Who;
use crate::db::evaluation::{self as repo, EvaluationRow, ExpertRow, ScoreRow, SeatRow, VoteRow};
use crate::db::{identity as identity_repo, opening as opening_repo, outbox, DbConn};
use crate::domain::credit_code::CreditCode;
use crate::domain::decimal::{Money, Points, Ratio};
use crate::domain::evaluation::{EvaluationSpec, ItemKind};
use crate::domain::problems::Problems;
use crate::domain::section::SectionState;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::evaluation::draw::{self, DrawRequest, Parties, PoolEntry, Snapshot};
use crate::evaluation::pass::{self, Centre, Pass, Trust};
use crate::evaluation::scoring::{self, BidIn};

pub const VOTE_LABEL: &str = "kaibiao/evaluation-vote/v1";
pub const SCORE_LABEL: &str = "kaibiao/evaluation-score/v1";

/// The centres this centre admits passes from: the partner centres' files in
/// `evaluation.trust_dir`, and this centre itself (its passes are signed with
/// the platform key).
pub fn load_trust(config: &Config, platform_key: &SigningKey) -> anyhow::Result<Trust> {
    let e = &config.evaluation;
    let mut t = Trust::load_dir(&e.trust_dir)?;
    t.add(Centre::new(
        &e.centre_code,
        &e.centre_name,
        &platform_key.verifying_key(),
    ))
    .map_err(|why| anyhow::anyhow!("evaluation.centre_code: {why}"))?;
    Ok(t)
}

// ------------------------------------------------------------------ the pool

/// The pool's CSV columns, in order. Lists inside a field are separated by
/// `;`. `related_people` takes identifiers (ID numbers, e-mail addresses) and
/// stores only their digests; an exported digest (`sha256:…`) imports as is.
pub const CSV_COLUMNS: [&str; 9] = [
    "id",
    "centre",
    "name",
    "email",
    "specialties",
    "employer",
    "related_orgs",
    "related_people",
    "available",
];

fn list(field: &str) -> Vec<String> {
    let mut v: Vec<String> = field
        .split(';')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    v.sort();
    v.dedup();
    v
}

fn code_like(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Parses a pool CSV; every problem is listed (`row N.column`), and nothing
/// is returned unless the whole file is sound.
pub fn parse_pool_csv(text: &str, now: i64) -> Result<Vec<ExpertRow>, AppError> {
    let mut p = Problems::new();
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(str::to_string).collect(),
        Err(_) => return Err(AppError::invalid_field("csv", "not a CSV file")),
    };
    if header != CSV_COLUMNS {
        return Err(AppError::invalid_field(
            "csv",
            format!("the header must be: {}", CSV_COLUMNS.join(",")),
        ));
    }
    let mut rows = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, rec) in rdr.records().enumerate() {
        let f = |c: &str| format!("row {}.{c}", i + 2);
        let rec = match rec {
            Ok(r) if r.len() == CSV_COLUMNS.len() => r,
            _ => {
                p.push(f("*"), "a row needs exactly 9 fields");
                continue;
            }
        };
        let id = rec[0].to_string();
        p.check(
            code_like(&id, 40),
            f("id"),
            "1-40 characters of A-Z, a-z, 0-9, '-', '_'",
        );
        p.check(ids.insert(id.clone()), f("id"), "duplicate id");
        p.check(
            Centre::valid_code(&rec[1]),
            f("centre"),
            "a centre code (A-Z, 0-9, '-')",
        );
        let name = rec[2].to_string();
        p.check(
            !name.is_empty() && name.chars().count() <= 100,
            f("name"),
            "1-100 characters",
        );
        let email = rec[3].to_string();
        p.check(
            email.parse::<lettre::Address>().is_ok(),
            f("email"),
            "an e-mail address",
        );
        let specialties = list(&rec[4]);
        p.check(
            !specialties.is_empty() && specialties.iter().all(|s| code_like(s, 40)),
            f("specialties"),
            "at least one specialty code (A-Z, a-z, 0-9, '-', '_'), separated by ';'",
        );
        let employer = rec[5].to_string();
        p.check(
            CreditCode::parse(&employer).is_ok(),
            f("employer"),
            "the employer's 统一社会信用代码",
        );
        let orgs = list(&rec[6]);
        for o in &orgs {
            p.check(
                CreditCode::parse(o).is_ok(),
                f("related_orgs"),
                format!("{o:?} is not a 统一社会信用代码"),
            );
        }
        let people: Vec<String> = list(&rec[7])
            .into_iter()
            .map(|x| match x.strip_prefix("sha256:") {
                Some(d) if d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    d.to_ascii_lowercase()
                }
                _ => draw::party_digest(&x),
            })
            .collect();
        let available = match rec[8].to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" => true,
            "no" | "false" | "0" => false,
            _ => {
                p.push(f("available"), "yes or no");
                false
            }
        };
        rows.push(ExpertRow {
            id,
            centre: rec[1].to_string(),
            name,
            email,
            specialties: serde_json::to_string(&specialties).expect("strings"),
            employer,
            related_orgs: serde_json::to_string(&orgs).expect("strings"),
            related_people: serde_json::to_string(&{
                let mut v = people;
                v.sort();
                v.dedup();
                v
            })
            .expect("strings"),
            available,
            updated_at: now,
        });
    }
    if rows.is_empty() && p.is_empty() {
        p.push("csv", "no experts in the file");
    }
    p.result(rows).map_err(AppError::validation)
}

/// The pool as CSV (the import's format; people as digests).
pub fn pool_csv(rows: &[ExpertRow]) -> AppResult<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS).map_err(AppError::internal)?;
    for r in rows {
        let j = |s: &str| -> AppResult<String> {
            let v: Vec<String> = serde_json::from_str(s).map_err(AppError::internal)?;
            Ok(v.join(";"))
        };
        let people: Vec<String> =
            serde_json::from_str(&r.related_people).map_err(AppError::internal)?;
        let people: Vec<String> = people.iter().map(|d| format!("sha256:{d}")).collect();
        w.write_record([
            r.id.as_str(),
            &r.centre,
            &r.name,
            &r.email,
            &j(&r.specialties)?,
            &r.employer,
            &j(&r.related_orgs)?,
            &people.join(";"),
            if r.available { "yes" } else { "no" },
        ])
        .map_err(AppError::internal)?;
    }
    String::from_utf8(w.into_inner().map_err(AppError::internal)?).map_err(AppError::internal)
}

pub fn import_pool(c: &mut DbConn, text: &str, now: i64) -> AppResult<usize> {
    let rows = parse_pool_csv(text, now)?;
    crate::db::write_tx(c, |c| Ok(repo::upsert_experts(c, &rows)?))
}

pub fn export_pool(c: &mut DbConn) -> AppResult<String> {
    pool_csv(&repo::all_experts(c)?)
}

fn entry(r: &ExpertRow) -> AppResult<PoolEntry> {
    let v = |s: &str| serde_json::from_str::<Vec<String>>(s).map_err(AppError::internal);
    Ok(PoolEntry {
        expert_id: r.id.clone(),
        centre: r.centre.clone(),
        specialties: v(&r.specialties)?,
        employer: r.employer.clone(),
        related_orgs: v(&r.related_orgs)?,
        related_people: v(&r.related_people)?,
    })
}

// ------------------------------------------------------------------ the draw

/// The bids as the opening record announced them: the ones that decrypted,
/// with their prices, in the record's order.
fn announced_bids(c: &mut DbConn, section_id: &str) -> AppResult<Vec<BidIn>> {
    let o = opening_repo::find(c, section_id)?
        .and_then(|o| o.record_json)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("evaluating without a record")))?;
    let r: Value = serde_json::from_str(&o).map_err(AppError::internal)?;
    let mut out = Vec::new();
    for (i, b) in r["bids"].as_array().into_iter().flatten().enumerate() {
        if b["status"] != "decrypted" {
            continue;
        }
        let price = b["summary"]["price"]
            .as_str()
            .and_then(|p| Money::parse(p).ok())
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("a decrypted bid without a price"))
            })?;
        out.push(BidIn {
            bid: b["envelope_hash"].as_str().unwrap_or_default().into(),
            bidder: b["bidder"].as_str().unwrap_or_default().into(),
            price,
            order: i as u32,
        });
    }
    Ok(out)
}

/// Everyone the committee must avoid: the tenderer, every bidder that
/// sealed a bid (whatever became of it) and their people.
fn parties(c: &mut DbConn, section_id: &str, tenderer_org: &str) -> AppResult<Parties> {
    let org_code = |c: &mut DbConn, id: &str| -> AppResult<String> {
        Ok(identity_repo::find_org(c, id)?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("organisation missing")))?
            .credit_code)
    };
    let tenderer = org_code(c, tenderer_org)?;
    let mut bidders = BTreeSet::new();
    let mut people = BTreeSet::new();
    let orgs: BTreeSet<String> = crate::db::bids::bids_of(c, section_id)?
        .into_iter()
        .map(|b| b.bidder)
        .collect();
    for org in orgs {
        bidders.insert(org_code(c, &org)?);
        for u in identity_repo::users_of_org(c, &org)? {
            people.insert(draw::party_digest(&u.email));
        }
    }
    Ok(Parties {
        tenderer,
        bidders: bidders.into_iter().collect(),
        bidder_people: people.into_iter().collect(),
    })
}

fn answer_token() -> (String, String) {
    let t = crypto::new_token("kbx");
    let h = crypto::token_hash(&t);
    (t, h)
}

fn call_mail(
    svc: &Services,
    c: &mut DbConn,
    x: &super::opening::Ctx,
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

fn call_seat(
    svc: &Services,
    c: &mut DbConn,
    x: &super::opening::Ctx,
    seat: &mut SeatRow,
    now: i64,
) -> AppResult<()> {
    let expert = repo::find_expert(c, &seat.expert_id)?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("drawn expert missing")))?;
    let (token, hash) = answer_token();
    seat.status = "called".into();
    seat.token_hash = Some(hash);
    seat.called_at = Some(now);
    // A no-show is replaced when the time to answer ends. Later calls end
    // later: a pending job is already due no later than this one.
    let pending = crate::db::jobs::for_section(c, &x.s.id)?
        .iter()
        .any(|j| j.kind == ANSWER_JOB && j.state == "pending");
    if !pending {
        crate::db::jobs::schedule(c, &x.s.id, ANSWER_JOB, now + answer_ms(svc), now)?;
    }
    call_mail(svc, c, x, &expert, &token, now)
}

/// The chronograph job that replaces drawn experts who did not answer.
pub const ANSWER_JOB: &str = "evaluation.answer_due";

fn answer_ms(svc: &Services) -> i64 {
    svc.config.evaluation.answer_hours as i64 * 3_600_000
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
/// reserve of the specialty is called.
pub fn answers_due(
    svc: &Services,
    c: &mut DbConn,
    section_id: &str,
    now: i64,
) -> AppResult<AnswersDue> {
    let Some(ev) = repo::find(c, section_id)? else {
        return Ok(AnswersDue::Idle);
    };
    if !matches!(ev.phase.as_str(), "seating" | "reviewing" | "scoring") {
        return Ok(AnswersDue::Idle);
    }
    let x = super::opening::load(c, section_id)?;
    let who = Who {
        actor_id: None,
        request_id: Some("chronograph".into()),
    };
    let mut replaced = 0;
    for mut seat in repo::seats_of(c, section_id)? {
        if seat.status != "called" || seat.called_at.unwrap_or(0) + answer_ms(svc) > now {
            continue;
        }
        seat.status = "declined".into();
        seat.token_hash = None;
        seat.responded_at = Some(now);
        if repo::update_seat(c, &seat, "called")? != 1 {
            continue;
        }
        let mut reserve_called = false;
        if let Some(mut next) = repo::seats_of(c, section_id)?
            .into_iter()
            .find(|r| r.status == "standby" && r.specialty == seat.specialty)
        {
            call_seat(svc, c, &x, &mut next, now)?;
            repo::update_seat(c, &next, "standby")?;
            reserve_called = true;
        }
        replaced += 1;
        record(
            svc,
            c,
            section_id,
            "evaluation.expert_no_answer",
            json!({"specialty": seat.specialty, "reserve_called": reserve_called}),
            None,
            &who,
            now,
        )?;
    }
    let next = repo::seats_of(c, section_id)?
        .iter()
        .filter(|s| s.status == "called")
        .filter_map(|s| s.called_at)
        .min();
    match next {
        Some(t) => {
            crate::db::jobs::schedule(c, section_id, ANSWER_JOB, t + answer_ms(svc), now)?;
            Ok(AnswersDue::Moved)
        }
        None if replaced > 0 => Ok(AnswersDue::Replaced),
        None => Ok(AnswersDue::Idle),
    }
}

fn committee_counts(seats: &[SeatRow]) -> Value {
    let mut by: BTreeMap<&str, BTreeMap<&str, u32>> = BTreeMap::new();
    for s in seats {
        *by.entry(&s.specialty)
            .or_default()
            .entry(&s.status)
            .or_default() += 1;
    }
    json!(by)
}

/// The host draws the committee (evaluating sections only, once).
pub async fn draw_committee(
    svc: &Services,
    actor: &Actor,
    idem: Option<Idem>,
    section_id: String,
    request: DrawRequest,
) -> AppResult<Value> {
    act(svc, actor, idem, move |svc, a, c, now| {
        let x = hosted(c, a, &section_id, "drawing the committee")?;
        if x.state != SectionState::Evaluating {
            return Err(wrong_phase(x.state, "drawing the committee"));
        }
        if repo::find(c, &section_id)?.is_some() {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "the committee of this section has been drawn already",
            ));
        }
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
        draw::check_composition(&request)
            .map_err(|e| AppError::invalid_field("requirements", e.to_string()))?;
        let parties = parties(c, &section_id, &x.p.tenderer_org_id)?;
        let centres: BTreeSet<&str> = request.centres.iter().map(String::as_str).collect();
        let pool = repo::all_experts(c)?
            .iter()
            .filter(|e| e.available && centres.contains(e.centre.as_str()))
            .map(entry)
            .collect::<AppResult<Vec<_>>>()?;
        let snapshot = Snapshot::new(pool);
        let seed = crypto::random_bytes::<32>();
        let result = draw::draw(&request, &parties, &snapshot, &seed)
            .map_err(|e| AppError::invalid_field("requirements", e.to_string()))?;
        let spec = &x.params.evaluation;
        let k = draw::k_for(
            &seed,
            spec.price
                .as_ref()
                .map(|f| f.k_coefficients.as_slice())
                .unwrap_or(&[]),
        );
        let commitment = draw::seed_commitment(&seed);
        let mut seats = Vec::new();
        for (i, s) in result.members.iter().chain(&result.reserves).enumerate() {
            let mut seat = SeatRow {
                section_id: section_id.clone(),
                expert_id: s.expert_id.clone(),
                specialty: s.specialty.clone(),
                position: i as i32,
                status: "standby".into(),
                token_hash: None,
                expert_key: None,
                pass_json: None,
                called_at: None,
                responded_at: None,
            };
            if i < result.members.len() {
                call_seat(svc, c, &x, &mut seat, now)?;
            }
            seats.push(seat);
        }
        repo::insert(
            c,
            &EvaluationRow {
                section_id: section_id.clone(),
                phase: "seating".into(),
                request_json: serde_json::to_string(&request).map_err(AppError::internal)?,
                parties_json: serde_json::to_string(&parties).map_err(AppError::internal)?,
                snapshot_json: serde_json::to_string(&snapshot).map_err(AppError::internal)?,
                snapshot_hash: result.snapshot_hash.clone(),
                seed_commitment: commitment.clone(),
                sealed_seed: svc.atrest.seal(&format!("draw-seed/{section_id}"), &seed),
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
        repo::insert_seats(c, &seats)?;
        let members = result.members.len() as u32 + request.tenderer_representatives;
        // Logged now: the seed's commitment, the pool snapshot's hash and the
        // request — never who was drawn.
        record(
            svc,
            c,
            &section_id,
            "evaluation.committee_drawn",
            json!({"committee_size": members, "reserves": result.reserves.len()}),
            Some(json!({
                "seed_commitment": commitment,
                "snapshot_hash": result.snapshot_hash,
                "parties_hash": crypto::sha256_hex(&jcs::to_vec(&parties).map_err(AppError::internal)?),
                "request": request,
                "pool_size": snapshot.experts.len(),
            })),
            &a.who(),
            now,
        )?;
        Ok(json!({
            "section_id": section_id,
            "phase": "seating",
            "seed_commitment": commitment,
            "snapshot_hash": result.snapshot_hash,
            "committee_size": members,
            "seats": committee_counts(&seats),
            "skipped_for_conflict": result.skipped.len(),
        }))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    pub token: String,
    pub accept: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A drawn expert confirms or declines (the token from the e-mail is the
/// credential). A decline calls the next reserve of the same specialty.
pub async fn answer(svc: &Services, request_id: String, body: AnswerRequest) -> AppResult<Value> {
    let now = svc.now().millis();
    let s = svc.clone();
    let v = svc
        .db
        .write(move |c| {
            let hash = crypto::token_hash(&body.token);
            let mut seat = repo::seat_by_token(c, &hash)?
                .filter(|s| s.status == "called")
                .ok_or_else(|| {
                    AppError::new(ErrorCode::TokenInvalid, "this answer link is not valid (used, replaced or unknown)")
                })?;
            let ev = repo::find(c, &seat.section_id)?
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("seat without evaluation")))?;
            let deadline = seat.called_at.unwrap_or(0) + s.config.evaluation.answer_hours as i64 * 3_600_000;
            if ev.phase == "finished" || now >= deadline {
                return Err(AppError::new(ErrorCode::TokenInvalid, "the time to answer has passed"));
            }
            let x = super::opening::load(c, &seat.section_id)?;
            let who = Who {
                actor_id: None,
                request_id: Some(request_id),
            };
            seat.token_hash = None;
            seat.responded_at = Some(now);
            seat.status = if body.accept { "confirmed" } else { "declined" }.into();
            if repo::update_seat(c, &seat, "called")? != 1 {
                return Err(AppError::new(ErrorCode::Conflict, "this seat was answered meanwhile"));
            }
            let mut called = None;
            if !body.accept {
                let seats = repo::seats_of(c, &seat.section_id)?;
                if let Some(mut next) = seats
                    .into_iter()
                    .find(|r| r.status == "standby" && r.specialty == seat.specialty)
                {
                    call_seat(&s, c, &x, &mut next, now)?;
                    repo::update_seat(c, &next, "standby")?;
                    called = Some(next.specialty.clone());
                }
            }
            let seats = repo::seats_of(c, &seat.section_id)?;
            let missing = seats_missing(&ev, &seats)?;
            record(
                &s,
                c,
                &seat.section_id,
                if body.accept { "evaluation.expert_confirmed" } else { "evaluation.expert_declined" },
                json!({"specialty": seat.specialty, "reserve_called": called.is_some(), "seats_missing": missing}),
                None,
                &who,
                now,
            )?;
            if missing == 0 && seats.iter().all(|r| r.status != "called") {
                record(&s, c, &seat.section_id, "evaluation.committee_complete", json!({}), None, &who, now)?;
            }
            Ok(json!({
                "section_id": seat.section_id,
                "status": seat.status,
                "reserve_called": called.is_some(),
            }))
        })
        .await?;
    svc.kick_workers();
    Ok(v)
}

/// The section's evaluation; refused while no committee has been drawn.
fn drawn(c: &mut DbConn, section_id: &str) -> AppResult<EvaluationRow> {
    repo::find(c, section_id)?.ok_or_else(|| {
        AppError::new(
            ErrorCode::InvalidTransition,
            "no committee has been drawn for this section",
        )
    })
}

/// Seats of the request still without a confirmed expert.
fn seats_missing(ev: &EvaluationRow, seats: &[SeatRow]) -> AppResult<u32> {
    let req: DrawRequest = serde_json::from_str(&ev.request_json).map_err(AppError::internal)?;
    Ok(req
        .requirements
        .iter()
        .map(|q| {
            let have = seats
                .iter()
                .filter(|s| s.specialty == q.specialty && s.status == "confirmed")
                .count() as u32;
            q.count.saturating_sub(have)
        })
        .sum())
}

/// The experts sitting now: confirmed members, in draw order.
fn panel(seats: &[SeatRow]) -> Vec<&SeatRow> {
    seats.iter().filter(|s| s.status == "confirmed").collect()
}

/// The host's view of the evaluation: phase, counts, never names.
pub async fn status(svc: &Services, actor: &Actor, section_id: String) -> AppResult<Value> {
    let a = actor.clone();
    svc.db
        .run(move |c| {
            hosted(c, &a, &section_id, "seeing the evaluation")?;
            let ev = drawn(c, &section_id)?;
            let seats = repo::seats_of(c, &section_id)?;
            let admitted = seats.iter().filter(|s| s.expert_key.is_some()).count();
            Ok(json!({
                "section_id": section_id,
                "phase": ev.phase,
                "seed_commitment": ev.seed_commitment,
                "snapshot_hash": ev.snapshot_hash,
                "seats": committee_counts(&seats),
                "seats_missing": seats_missing(&ev, &seats)?,
                "admitted": admitted,
                "outcome": ev.outcome_json.as_deref().map(serde_json::from_str::<Value>).transpose().map_err(AppError::internal)?,
            }))
        })
        .await
}

// ------------------------------------------------------------- passes, room

/// The home centre (this one) issues a pass to one of its own experts.
pub fn issue_pass(
    key: &SigningKey,
    centre: &str,
    expert_id: &str,
    expert_key: &str,
    section_id: &str,
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
        pass::PassBody {
            format: pass::PASS_FORMAT.into(),
            centre: centre.into(),
            expert_id: expert_id.into(),
            expert_key: expert_key.into(),
            section_id: section_id.into(),
            issued_at_ms: now,
            expires_at_ms: now + minutes * 60_000,
        },
    ))
}

fn pass_error(e: pass::PassError) -> AppError {
    AppError::new(ErrorCode::PassRejected, e.to_string())
}

/// The host centre's room admits a pass: trusted centre, good signature, in
/// date, for this section, naming a confirmed member. The expert's key from
/// the pass then signs everything the expert does.
pub async fn admit(svc: &Services, section_id: String, p: Pass) -> AppResult<Value> {
    let now = svc.now().millis();
    let s = svc.clone();
    svc.db
        .write(move |c| {
            let body = pass::admit(&p, &s.trust, &section_id, now).map_err(pass_error)?.clone();
            let mut seat = repo::seat(c, &section_id, &body.expert_id)?
                .filter(|r| r.status == "confirmed")
                .ok_or_else(|| {
                    AppError::new(
                        ErrorCode::PassRejected,
                        "the pass names no confirmed member of this section's committee",
                    )
                })?;
            let expert = repo::find_expert(c, &body.expert_id)?
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("seat without expert")))?;
            if expert.centre != body.centre {
                return Err(AppError::new(
                    ErrorCode::PassRejected,
                    "the pass is not issued by the expert's home centre",
                ));
            }
            seat.expert_key = Some(body.expert_key.clone());
            seat.pass_json = Some(serde_json::to_string(&p).map_err(AppError::internal)?);
            repo::update_seat(c, &seat, "confirmed")?;
            let who = by_expert();
            record(&s, c, &section_id, "evaluation.expert_admitted", json!({"specialty": seat.specialty}), None, &who, now)?;
            let ev = drawn(c, &section_id)?;
            let seats = repo::seats_of(c, &section_id)?;
            if ev.phase == "seating"
                && seats_missing(&ev, &seats)? == 0
                && panel(&seats).iter().all(|r| r.expert_key.is_some())
            {
                repo::cas_phase(c, &section_id, "seating", "reviewing", now)?;
                record(&s, c, &section_id, "evaluation.reviewing", json!({}), None, &who, now)?;
            }
            Ok(json!({"section_id": section_id, "expert_id": body.expert_id, "expires_at_ms": body.expires_at_ms}))
        })
        .await
}

// ---------------------------------------------------------- signed statements

/// A statement signed by an admitted expert.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed<T> {
    pub statement: T,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteStatement {
    pub section_id: String,
    pub expert_id: String,
    pub bid: String,
    pub pass: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreStatement {
    pub section_id: String,
    pub expert_id: String,
    pub bid: String,
    pub item: String,
    pub points: Points,
}

/// Signs a statement the way the room checks it (the expert's client side).
pub fn sign_statement<T: Serialize>(key: &SigningKey, label: &str, st: &T) -> String {
    hex::encode(sign::sign(
        key,
        label,
        &jcs::to_vec(st).expect("plain JSON"),
    ))
}

fn verify_statement<T: Serialize>(
    key_hex: &str,
    label: &str,
    st: &T,
    sig: &str,
) -> AppResult<String> {
    let bytes = jcs::to_vec(st).map_err(AppError::internal)?;
    sign::verify_hex(key_hex, label, &bytes, sig).map_err(|_| {
        AppError::new(
            ErrorCode::ProofInvalid,
            "the signature does not verify with the key of the expert's pass",
        )
    })?;
    String::from_utf8(bytes).map_err(AppError::internal)
}

/// What every statement an expert signs has: its section, its expert, and
/// the label its signature is made under.
pub trait ExpertStatement: Serialize {
    const LABEL: &'static str;
    fn section_id(&self) -> &str;
    fn expert_id(&self) -> &str;
}

macro_rules! expert_statements {
    ($($t:ident => $label:ident),+ $(,)?) => {$(
        impl ExpertStatement for $t {
            const LABEL: &'static str = $label;
            fn section_id(&self) -> &str {
                &self.section_id
            }
            fn expert_id(&self) -> &str {
                &self.expert_id
            }
        }
    )+};
}

expert_statements! {
    VoteStatement => VOTE_LABEL,
    ScoreStatement => SCORE_LABEL,
    ReportStatement => REPORT_LABEL,
    OutlierStatement => OUTLIER_LABEL,
    RecusalStatement => RECUSAL_LABEL,
    ClarificationStatement => CLARIFICATION_LABEL,
}

/// A statement for this section, by an admitted member, signed with the key
/// of the member's pass: the member's seat and the statement's canonical text.
fn signed_by_member<T: ExpertStatement>(
    c: &mut DbConn,
    section_id: &str,
    v: &Signed<T>,
) -> AppResult<(SeatRow, String)> {
    if v.statement.section_id() != section_id {
        return Err(AppError::invalid_field(
            "statement.section_id",
            "another section",
        ));
    }
    let seat = admitted_seat(c, section_id, v.statement.expert_id())?;
    let text = verify_statement(
        seat.expert_key.as_deref().unwrap_or_default(),
        T::LABEL,
        &v.statement,
        &v.signature,
    )?;
    Ok((seat, text))
}

/// Who an expert's action is recorded as: experts hold no account here,
/// their signed statement is the record.
fn by_expert() -> Who {
    Who {
        actor_id: None,
        request_id: None,
    }
}

fn admitted_seat(c: &mut DbConn, section_id: &str, expert_id: &str) -> AppResult<SeatRow> {
    repo::seat(c, section_id, expert_id)?
        .filter(|s| s.status == "confirmed" && s.expert_key.is_some())
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::PassRejected,
                "the statement names no admitted member of this committee",
            )
        })
}

fn qualified_bids(ev: &EvaluationRow) -> AppResult<Option<Vec<String>>> {
    match &ev.outcome_json {
        None => Ok(None),
        Some(o) => {
            let v: Value = serde_json::from_str(o).map_err(AppError::internal)?;
            Ok(Some(
                v["qualification"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|q| q["qualified"] == true)
                    .filter_map(|q| q["bid"].as_str().map(str::to_string))
                    .collect(),
            ))
        }
    }
}

/// An expert's qualification review of one bid (资格审查). When every member
/// has reviewed every bid, the majority decides and scoring opens.
pub async fn vote(
    svc: &Services,
    section_id: String,
    v: Signed<VoteStatement>,
) -> AppResult<Value> {
    let now = svc.now().millis();
    let s = svc.clone();
    svc.db
        .write(move |c| {
            let st = &v.statement;
            let (_, text) = signed_by_member(c, &section_id, &v)?;
            let text_prev = repo::votes_of(c, &section_id)?
                .into_iter()
                .find(|p| p.expert_id == st.expert_id && p.bid == st.bid)
                .map(|p| p.statement);
            if let Some(prev) = text_prev {
                if prev == text {
                    return Ok(json!({"recorded": true, "repeat": true}));
                }
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    "this expert has reviewed this bid already",
                ));
            }
            let ev = drawn(c, &section_id)?;
            // A reserve who replaced a member during scoring reviews too.
            if ev.phase != "reviewing" && ev.phase != "scoring" {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    format!(
                        "qualification reviews are not taken while the evaluation is {}",
                        ev.phase
                    ),
                ));
            }
            let bids = announced_bids(c, &section_id)?;
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
            let row = VoteRow {
                section_id: section_id.clone(),
                expert_id: st.expert_id.clone(),
                bid: st.bid.clone(),
                pass: st.pass,
                reason: reason.map(str::to_string),
                statement: text,
                signature: v.signature.clone(),
                at: now,
            };
            repo::insert_vote(c, &row)?;
            let who = by_expert();
            record(
                &s,
                c,
                &section_id,
                "evaluation.review_recorded",
                json!({}),
                None,
                &who,
                now,
            )?;
            // Everyone has reviewed everything: the majority decides.
            let seats = repo::seats_of(c, &section_id)?;
            let panel_ids: Vec<String> =
                panel(&seats).iter().map(|r| r.expert_id.clone()).collect();
            let votes: Vec<scoring::Vote> = repo::votes_of(c, &section_id)?
                .into_iter()
                .map(|r| scoring::Vote {
                    expert: r.expert_id,
                    bid: r.bid,
                    pass: r.pass,
                    reason: r.reason,
                })
                .collect();
            let decided = if ev.phase == "reviewing" {
                scoring::qualify(&panel_ids, &bids, &votes).ok()
            } else {
                None
            };
            if let Some(q) = decided {
                let mut ev = ev;
                ev.phase = "scoring".into();
                ev.outcome_json = Some(json!({"qualification": q}).to_string());
                ev.updated_at = now;
                repo::save(c, &ev)?;
                let rejected = q.iter().filter(|q| !q.qualified).count();
                record(
                    &s,
                    c,
                    &section_id,
                    "evaluation.qualification_decided",
                    json!({"qualified": q.len() - rejected, "rejected": rejected}),
                    None,
                    &who,
                    now,
                )?;
            }
            Ok(json!({"recorded": true, "repeat": false}))
        })
        .await
}

// ------------------------------------------------------------------ scores

/// The most scores one request may carry (a bid's whole sheet).
pub const MAX_SHEET: usize = 500;

/// One request's scores waiting for their group commit.
struct PendingScore {
    section_id: String,
    sheet: Vec<Signed<ScoreStatement>>,
    now: i64,
    done: tokio::sync::oneshot::Sender<AppResult<Value>>,
}

/// Batches score writes: whoever finds the writer idle commits everything
/// queued meanwhile in one transaction (group commit), so a burst of scores
/// costs one durable commit, not one each. Each request is still checked on
/// its own, all or nothing, and answered only after its commit.
#[derive(Clone, Default)]
pub struct ScoreWriter {
    queue: Arc<std::sync::Mutex<Vec<PendingScore>>>,
    writing: Arc<tokio::sync::Mutex<()>>,
}

/// An expert's scores — one, or a sheet of up to [`MAX_SHEET`] — each for
/// one item of one qualified bid and each signed. A cell is written once:
/// the same statement again is a repeat; another value is refused, and then
/// nothing of the request is written.
pub async fn score(
    svc: &Services,
    section_id: String,
    sheet: Vec<Signed<ScoreStatement>>,
) -> AppResult<Value> {
    if sheet.is_empty() || sheet.len() > MAX_SHEET {
        return Err(AppError::invalid_field(
            "scores",
            format!("1 to {MAX_SHEET} scores per request"),
        ));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let w = svc.scores.clone();
    w.queue.lock().expect("score queue").push(PendingScore {
        section_id,
        sheet,
        now: svc.now().millis(),
        done: tx,
    });
    let mut rx = rx;
    {
        // Whoever holds the writer either finds its own request answered by
        // the batch before (and lets go at once), or commits everything
        // queued meanwhile — its own request included — as one batch.
        let _leader = w.writing.lock().await;
        match rx.try_recv() {
            Ok(answer) => return answer,
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {
                let batch = std::mem::take(&mut *w.queue.lock().expect("score queue"));
                flush(svc, batch).await;
            }
            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {}
        }
    }
    rx.await
        .map_err(|_| AppError::internal(anyhow::anyhow!("score writer dropped a write")))?
}

type Checked = (PendingScore, AppResult<Vec<ScoreRow>>);

async fn flush(svc: &Services, batch: Vec<PendingScore>) {
    let s = svc.clone();
    let r = svc
        .db
        .run(move |c| {
            let mut items: Vec<Checked> = Vec::with_capacity(batch.len());
            let mut ctx: BTreeMap<String, AppResult<ScoreCtx>> = BTreeMap::new();
            for p in batch {
                let cx = ctx
                    .entry(p.section_id.clone())
                    .or_insert_with(|| score_ctx(c, &p.section_id));
                let rows = match cx {
                    Ok(cx) => check_sheet(cx, &p),
                    Err(e) => Err(AppError::new(e.code, e.message.clone())),
                };
                items.push((p, rows));
            }
            // One transaction for the batch. A request refused inside it
            // (a cell scored already) writes nothing; any other failure (a
            // race with another node) falls back to one transaction each.
            let together = crate::db::write_tx(c, |c| {
                let mut out = Vec::new();
                for (_, rows) in &items {
                    out.push(match rows {
                        Ok(r) => match store_sheet(c, r) {
                            Err(e) if e.code == ErrorCode::Conflict => Err(e),
                            other => Ok(other?),
                        },
                        Err(_) => Ok(Value::Null),
                    });
                }
                let who = by_expert();
                let sections: BTreeSet<&str> = items
                    .iter()
                    .filter(|(_, r)| r.is_ok())
                    .map(|(p, _)| p.section_id.as_str())
                    .collect();
                for sid in sections {
                    record(
                        &s,
                        c,
                        sid,
                        "evaluation.scores_recorded",
                        json!({}),
                        None,
                        &who,
                        items[0].0.now,
                    )?;
                }
                Ok(out)
            });
            Ok(match together {
                Ok(values) => items
                    .into_iter()
                    .zip(values)
                    .map(|((p, rows), v)| (p.done, rows.and(v)))
                    .collect::<Vec<_>>(),
                Err(_) => items
                    .into_iter()
                    .map(|(p, rows)| {
                        let r = rows.and_then(|r| crate::db::write_tx(c, |c| store_sheet(c, &r)));
                        (p.done, r)
                    })
                    .collect(),
            })
        })
        .await;
    match r {
        Ok(answers) => {
            for (done, a) in answers {
                let _ = done.send(a);
            }
        }
        Err(e) => tracing::error!(error = %e.message, "score batch failed"),
    }
}

/// What checking a score needs, read once per section per batch.
struct ScoreCtx {
    phase: String,
    keys: BTreeMap<String, String>,
    qualified: BTreeSet<String>,
    spec: EvaluationSpec,
}

fn score_ctx(c: &mut DbConn, section_id: &str) -> AppResult<ScoreCtx> {
    let x = super::opening::load(c, section_id)?;
    let ev = drawn(c, section_id)?;
    let keys = repo::seats_of(c, section_id)?
        .into_iter()
        .filter(|s| s.status == "confirmed")
        .filter_map(|s| s.expert_key.map(|k| (s.expert_id, k)))
        .collect();
    Ok(ScoreCtx {
        qualified: qualified_bids(&ev)?
            .unwrap_or_default()
            .into_iter()
            .collect(),
        phase: ev.phase,
        keys,
        spec: x.params.evaluation,
    })
}

fn check_score(
    cx: &ScoreCtx,
    section_id: &str,
    one: &Signed<ScoreStatement>,
    now: i64,
) -> AppResult<ScoreRow> {
    let st = &one.statement;
    if st.section_id != section_id {
        return Err(AppError::invalid_field(
            "statement.section_id",
            "another section",
        ));
    }
    let key = cx.keys.get(&st.expert_id).ok_or_else(|| {
        AppError::new(
            ErrorCode::PassRejected,
            "the statement names no admitted member of this committee",
        )
    })?;
    let text = verify_statement(key, SCORE_LABEL, st, &one.signature)?;
    if cx.phase != "scoring" {
        return Err(AppError::new(
            ErrorCode::InvalidTransition,
            format!("scores are not taken while the evaluation is {}", cx.phase),
        ));
    }
    if !cx.qualified.contains(&st.bid) {
        return Err(AppError::invalid_field(
            "statement.bid",
            "not a qualified bid of this section",
        ));
    }
    let item = cx
        .spec
        .items
        .iter()
        .find(|i| i.id == st.item && i.kind != ItemKind::Price)
        .ok_or_else(|| {
            AppError::invalid_field(
                "statement.item",
                "not an item the experts score (the price score is computed)",
            )
        })?;
    if st.points < Points::ZERO || st.points > item.max_points {
        return Err(AppError::invalid_field(
            "statement.points",
            format!("must lie between 0 and {}", item.max_points),
        ));
    }
    Ok(ScoreRow {
        section_id: st.section_id.clone(),
        expert_id: st.expert_id.clone(),
        bid: st.bid.clone(),
        item: st.item.clone(),
        points: st.points.units(),
        statement: text,
        signature: one.signature.clone(),
        at: now,
    })
}

fn check_sheet(cx: &ScoreCtx, p: &PendingScore) -> AppResult<Vec<ScoreRow>> {
    let mut cells = BTreeSet::new();
    let mut rows = Vec::with_capacity(p.sheet.len());
    for (i, one) in p.sheet.iter().enumerate() {
        let st = &one.statement;
        if !cells.insert((st.expert_id.as_str(), st.bid.as_str(), st.item.as_str())) {
            return Err(AppError::invalid_field(
                &format!("scores[{i}]"),
                "the same cell twice in one request",
            ));
        }
        rows.push(check_score(cx, &p.section_id, one, p.now).map_err(|mut e| {
            if p.sheet.len() > 1 {
                e.message = format!("scores[{i}]: {}", e.message);
            }
            e
        })?);
    }
    Ok(rows)
}

/// Writes a request's cells, or none of them when one was scored already
/// with another value.
fn store_sheet(c: &mut DbConn, rows: &[ScoreRow]) -> AppResult<Value> {
    let mut fresh = Vec::new();
    for r in rows {
        match repo::score_cell(c, &r.section_id, &r.expert_id, &r.bid, &r.item)? {
            Some(prev) if prev.statement == r.statement => {}
            Some(_) => {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    format!(
                        "expert {} has scored {} of this bid already with another value",
                        r.expert_id, r.item
                    ),
                ))
            }
            None => fresh.push(r),
        }
    }
    for r in &fresh {
        repo::insert_score(c, r)?;
    }
    Ok(json!({"recorded": rows.len(), "new": fresh.len(), "repeats": rows.len() - fresh.len()}))
}

// ------------------------------------------------------------------ result

/// Everything the computation of the result takes, from the record: the
/// panel sitting now, and only its members' reviews and scores (a member who
/// recused keeps the signed record of what they did, which no longer counts).
pub fn eval_input(c: &mut DbConn, section_id: &str) -> AppResult<scoring::EvalInput> {
    let x = super::opening::load(c, section_id)?;
    let ev = drawn(c, section_id)?;
    let seats = repo::seats_of(c, section_id)?;
    let sitting: BTreeSet<String> = panel(&seats).iter().map(|s| s.expert_id.clone()).collect();
    Ok(scoring::EvalInput {
        spec: x.params.evaluation,
        k: ev
            .k_coefficient
            .as_deref()
            .map(Ratio::parse)
            .transpose()
            .map_err(AppError::internal)?,
        panel: panel(&seats).iter().map(|s| s.expert_id.clone()).collect(),
        bids: announced_bids(c, section_id)?,
        votes: repo::votes_of(c, section_id)?
            .into_iter()
            .filter(|r| sitting.contains(&r.expert_id))
            .map(|r| scoring::Vote {
                expert: r.expert_id,
                bid: r.bid,
                pass: r.pass,
                reason: r.reason,
            })
            .collect(),
        scores: repo::scores_of(c, section_id)?
            .into_iter()
            .filter(|r| sitting.contains(&r.expert_id))
            .map(|r| scoring::ItemScore {
                expert: r.expert_id,
                bid: r.bid,
                item: r.item,
                points: Points::from_hundredths(r.points),
            })
            .collect(),
    })
}

/// The host closes scoring: the result is computed from the signed reviews
/// and scores (refused, naming what is missing, while any is), and the
/// evaluation report made; its hash is logged and every expert signs it.
pub async fn finish(
    svc: &Services,
    actor: &Actor,
    idem: Option<Idem>,
    section_id: String,
) -> AppResult<Value> {
    act(svc, actor, idem, move |svc, a, c, now| {
        let x = hosted(c, a, &section_id, "finishing the evaluation")?;
        let mut ev = drawn(c, &section_id)?;
        if ev.phase != "scoring" {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                format!(
                    "the evaluation can be finished while scoring, not while {}",
                    ev.phase
                ),
            ));
        }
        let seats = repo::seats_of(c, &section_id)?;
        let missing = seats_missing(&ev, &seats)?;
        if missing > 0 {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                format!("the committee lacks {missing} member(s): a recusal left a seat without a reserve"),
            ));
        }
        let input = eval_input(c, &section_id)?;
        let outcome = scoring::evaluate(&input)
            .map_err(|e| AppError::new(ErrorCode::InvalidTransition, e.to_string()))?;
        // An expert far from the panel's median must confirm with a reason
        // first: flagged here (to the expert by e-mail, to the supervisor in
        // the room), and the evaluation stays in scoring until confirmed.
        let open = flag_outliers(svc, c, &x, &outcome, &a.who(), now)?;
        if !open.is_empty() {
            return Ok(json!({"section_id": section_id, "phase": "scoring", "flags": open,
                             "message": "experts far from the panel's median must confirm their scores with a reason"}));
        }
        let report = json!({
            "format": REPORT_FORMAT,
            "section_id": section_id,
            "section_code": x.s.code,
            "project_name": x.p.name,
            "evaluation": input.spec,
            "k": input.k,
            "panel": input.panel,
            "seed_commitment": ev.seed_commitment,
            "snapshot_hash": ev.snapshot_hash,
            "outcome": outcome,
            "finished_at_ms": now,
        });
        let text = String::from_utf8(jcs::canonicalize(&report).map_err(AppError::internal)?)
            .map_err(AppError::internal)?;
        let hash = crypto::sha256_hex(text.as_bytes());
        if repo::cas_phase(c, &section_id, "scoring", "signing", now)? != 1 {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "the evaluation moved meanwhile",
            ));
        }
        let ends = now + svc.config.evaluation.signing_minutes as i64 * 60_000;
        ev.phase = "signing".into();
        ev.outcome_json = Some(serde_json::to_string(&outcome).map_err(AppError::internal)?);
        ev.report_json = Some(text);
        ev.report_hash = Some(hash.clone());
        ev.signing_ends_at = Some(ends);
        ev.updated_at = now;
        repo::save(c, &ev)?;
        record(
            svc,
            c,
            &section_id,
            "evaluation.report",
            json!({"report_hash": hash, "signing_ends_at_ms": ends}),
            Some(json!({"report_hash": hash})),
            &a.who(),
            now,
        )?;
        Ok(
            json!({"section_id": section_id, "phase": "signing", "report_hash": hash,
                  "signing_ends_at_ms": ends, "report": report}),
        )
    })
    .await
}

pub const REPORT_FORMAT: &str = "kaibiao-evaluation-report/1";
pub const REPORT_LABEL: &str = "kaibiao/evaluation-report/v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportStatement {
    pub section_id: String,
    pub expert_id: String,
    pub report_hash: String,
    pub agree: bool,
    /// Required when disagreeing (the dissent, 不同意见), optional otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dissent: Option<String>,
}

/// An expert signs the report's hash, agreeing or recording dissent. Once.
pub async fn sign_report(
    svc: &Services,
    section_id: String,
    v: Signed<ReportStatement>,
) -> AppResult<Value> {
    let now = svc.now().millis();
    let s = svc.clone();
    svc.db
        .write(move |c| {
            let st = &v.statement;
            let (_, text) = signed_by_member(c, &section_id, &v)?;
            let ev = drawn(c, &section_id)?;
            if ev.phase != "signing" || now >= ev.signing_ends_at.unwrap_or(0) {
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
            if repo::report_signatures_of(c, &section_id)?
                .iter()
                .any(|r| r.expert_id == st.expert_id)
            {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    "this expert has signed the report already",
                ));
            }
            repo::insert_report_signature(
                c,
                &repo::ReportSignatureRow {
                    section_id: section_id.clone(),
                    expert_id: st.expert_id.clone(),
                    agree: st.agree,
                    dissent: dissent.map(str::to_string),
                    deemed: false,
                    statement: Some(text),
                    signature: Some(v.signature.clone()),
                    at: now,
                },
            )?;
            let who = by_expert();
            record(
                &s,
                c,
                &section_id,
                "evaluation.report_signed",
                json!({"agree": st.agree}),
                None,
                &who,
                now,
            )?;
            Ok(json!({"recorded": true}))
        })
        .await
}

/// The host publishes the candidates (公示): every expert has signed, or the
/// signing time is over (a silent expert is recorded as agreeing). The
/// section enters publicity for `publicity_days`; the draw's seed and the
/// committee are revealed in the log.
pub async fn publish(
    svc: &Services,
    actor: &Actor,
    idem: Option<Idem>,
    section_id: String,
) -> AppResult<Value> {
    act(svc, actor, idem, move |svc, a, c, now| {
        hosted(c, a, &section_id, "publishing the candidates")?;
        let mut ev = drawn(c, &section_id)?;
        if ev.phase != "signing" {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                format!(
                    "the candidates can be published after the report, not while {}",
                    ev.phase
                ),
            ));
        }
        let seats = repo::seats_of(c, &section_id)?;
        let signed: BTreeSet<String> = repo::report_signatures_of(c, &section_id)?
            .into_iter()
            .map(|r| r.expert_id)
            .collect();
        let silent: Vec<String> = panel(&seats)
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
                    crate::domain::time::Timestamp::from_millis(ends).rfc3339()
                ),
            ));
        }
        for e in &silent {
            repo::insert_report_signature(
                c,
                &repo::ReportSignatureRow {
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
        if crate::db::sections::cas_state(c, &section_id, "evaluating", "publicity", now)? != 1
            || repo::cas_phase(c, &section_id, "signing", "publicity", now)? != 1
        {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "the section moved meanwhile",
            ));
        }
        let publicity_ends = now + svc.config.evaluation.publicity_days as i64 * 86_400_000;
        ev.phase = "publicity".into();
        ev.published_at = Some(now);
        ev.publicity_ends_at = Some(publicity_ends);
        ev.updated_at = now;
        repo::save(c, &ev)?;
        crate::db::jobs::schedule(c, &section_id, PUBLICITY_JOB, publicity_ends, now)?;
        let outcome: scoring::EvalOutcome =
            serde_json::from_str(ev.outcome_json.as_deref().unwrap_or("{}"))
                .map_err(AppError::internal)?;
        let candidates = candidates_view(c, &outcome)?;
        let seed = svc
            .atrest
            .open(&format!("draw-seed/{section_id}"), &ev.sealed_seed)
            .map_err(AppError::internal)?;
        let committee: Vec<Value> = committee_view(c, &seats)?;
        record(
            svc,
            c,
            &section_id,
            "evaluation.published",
            json!({"candidates": candidates, "committee": committee,
                   "publicity_ends_at_ms": publicity_ends, "report_hash": ev.report_hash}),
            Some(
                json!({"report_hash": ev.report_hash, "seed": hex::encode(&seed[..]),
                        "snapshot_hash": ev.snapshot_hash, "candidates": outcome.candidates,
                        "deemed_agreed": silent.len(), "publicity_ends_at_ms": publicity_ends}),
            ),
            &a.who(),
            now,
        )?;
        Ok(
            json!({"section_id": section_id, "phase": "publicity", "candidates": candidates,
                  "committee": committee, "publicity_ends_at_ms": publicity_ends}),
        )
    })
    .await
}

/// The chronograph job that ends publicity and awards the section.
pub const PUBLICITY_JOB: &str = "evaluation.publicity_end";

fn candidates_view(c: &mut DbConn, o: &scoring::EvalOutcome) -> AppResult<Vec<Value>> {
    let mut v = Vec::new();
    for r in o.ranking.iter().take(3) {
        let name = identity_repo::find_org(c, &r.bidder)?
            .map(|o| o.name)
            .unwrap_or_default();
        v.push(
            json!({"rank": r.rank, "bid": r.bid, "bidder": r.bidder, "bidder_name": name,
                      "price": r.price, "final_score": r.final_score}),
        );
    }
    Ok(v)
}

fn committee_view(c: &mut DbConn, seats: &[SeatRow]) -> AppResult<Vec<Value>> {
    let mut v = Vec::new();
    for s in panel(seats) {
        let e = repo::find_expert(c, &s.expert_id)?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("seated expert missing")))?;
        v.push(json!({"expert_id": e.id, "name": e.name, "centre": e.centre, "specialty": s.specialty}));
    }
    Ok(v)
}

fn bidder_of_section(c: &mut DbConn, section_id: &str, org: &str) -> AppResult<bool> {
    Ok(crate::db::bids::bids_of(c, section_id)?
        .iter()
        .any(|b| b.bidder == org))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectionText {
    pub text: String,
}

/// A bidder of the section objects to the publicised result (异议); the
/// publicity pauses until every objection is answered.
pub async fn raise_objection(
    svc: &Services,
    actor: &Actor,
    idem: Option<Idem>,
    section_id: String,
    body: ObjectionText,
) -> AppResult<Value> {
    act(svc, actor, idem, move |svc, a, c, now| {
        let org = a.org()?.to_string();
        super::opening::load(c, &section_id)?;
        let text = super::opening::bounded_text("text", &body.text)?;
        let mut ev = drawn(c, &section_id)?;
        let ends = ev.publicity_ends_at.unwrap_or(0);
        if ev.phase != "publicity" || (ev.paused_since.is_none() && now >= ends) {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "objections are taken during publicity only",
            ));
        }
        if !bidder_of_section(c, &section_id, &org)? {
            return Err(AppError::forbidden("only a bidder of this section may object"));
        }
        let id = format!("pob_{}", hex::encode(crypto::random_bytes::<12>()));
        let due = now + svc.config.evaluation.objection_answer_days as i64 * 86_400_000;
        repo::insert_objection(
            c,
            &repo::PublicityObjectionRow {
                id: id.clone(),
                section_id: section_id.clone(),
                bidder: org.clone(),
                raised_by: a.user.id.to_string(),
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
            repo::save(c, &ev)?;
        }
        record(svc, c, &section_id, "evaluation.objection", json!({"id": id, "bidder": org, "text": text, "answer_due_at_ms": due}),
               Some(json!({"objection": id, "bidder": org, "text_hash": crypto::sha256_hex(text.as_bytes())})), &a.who(), now)?;
        Ok(json!({"id": id, "answer_due_at_ms": due, "publicity": "paused"}))
    })
    .await
}

/// The tenderer answers an objection, once; when none is open any more the
/// publicity resumes, its end moved by the time it was paused.
pub async fn answer_objection(
    svc: &Services,
    actor: &Actor,
    idem: Option<Idem>,
    section_id: String,
    objection: String,
    body: ObjectionText,
) -> AppResult<Value> {
    act(svc, actor, idem, move |svc, a, c, now| {
        let x = super::opening::load(c, &section_id)?;
        let st = super::policy::standing(c, &a.user, &x.p, Some(&section_id))?;
        if !st.owns {
            return Err(AppError::forbidden("only the tenderer answers objections to the result"));
        }
        let text = super::opening::bounded_text("text", &body.text)?;
        let mut ev = drawn(c, &section_id)?;
        let row = repo::objections_of(c, &section_id)?
            .into_iter()
            .find(|o| o.id == objection)
            .ok_or_else(|| AppError::not_found("objection"))?;
        if row.answered_at.is_some() || repo::answer_objection(c, &objection, &text, a.user.id.as_str(), now)? != 1 {
            return Err(AppError::new(ErrorCode::Conflict, "this objection has been answered already"));
        }
        let open = repo::objections_of(c, &section_id)?
            .iter()
            .filter(|o| o.answered_at.is_none())
            .count();
        let mut resumed = false;
        if open == 0 {
            if let Some(since) = ev.paused_since.take() {
                let ends = ev.publicity_ends_at.unwrap_or(now) + (now - since);
                ev.publicity_ends_at = Some(ends);
                ev.updated_at = now;
                repo::save(c, &ev)?;
                crate::db::jobs::schedule(c, &section_id, PUBLICITY_JOB, ends, now)?;
                resumed = true;
            }
        }
        let late = now > row.answer_due_at;
        record(svc, c, &section_id, "evaluation.objection_answered",
               json!({"id": objection, "text": text, "late": late, "resumed": resumed, "publicity_ends_at_ms": ev.publicity_ends_at}),
               Some(json!({"objection": objection, "text_hash": crypto::sha256_hex(text.as_bytes()), "late": late})), &a.who(), now)?;
        Ok(json!({"id": objection, "late": late, "publicity": if resumed { "running" } else { "paused" },
                  "publicity_ends_at_ms": ev.publicity_ends_at}))
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
pub fn end_publicity(
    svc: &Services,
    c: &mut DbConn,
    section_id: &str,
    now: i64,
) -> AppResult<PublicityEnd> {
    let Some(mut ev) = repo::find(c, section_id)? else {
        return Ok(PublicityEnd::Idle);
    };
    if ev.phase != "publicity" || ev.paused_since.is_some() {
        return Ok(PublicityEnd::Idle);
    }
    let ends = ev.publicity_ends_at.unwrap_or(i64::MAX);
    if ends > now {
        crate::db::jobs::schedule(c, section_id, PUBLICITY_JOB, ends, now)?;
        return Ok(PublicityEnd::Moved);
    }
    if crate::db::sections::cas_state(c, section_id, "publicity", "awarded", now)? != 1 {
        return Ok(PublicityEnd::Idle);
    }
    ev.phase = "awarded".into();
    ev.awarded_at = Some(now);
    ev.updated_at = now;
    repo::save(c, &ev)?;
    let x = super::opening::load(c, section_id)?;
    let outcome: scoring::EvalOutcome =
        serde_json::from_str(ev.outcome_json.as_deref().unwrap_or("{}"))
            .map_err(AppError::internal)?;
    let winner = outcome.ranking.first();
    let link = format!("{}/?section={}", svc.public_url, section_id);
    let sref = crate::notify::templates::SectionRef {
        project_name: &x.p.name,
        section_code: &x.s.code,
        section_name: &x.s.name,
        link: &link,
    };
    let mut notified = 0;
    let bidders: BTreeSet<String> = announced_bids(c, section_id)?
        .into_iter()
        .map(|b| b.bidder)
        .collect();
    for org in &bidders {
        let mail = match winner {
            Some(w) if w.bidder == *org => crate::notify::templates::award_notice(
                &sref,
                &w.price.to_string(),
                &w.final_score.to_string(),
            ),
            _ => crate::notify::templates::result_notice(
                &sref,
                &winner
                    .map(|w| identity_repo::find_org(c, &w.bidder))
                    .transpose()?
                    .flatten()
                    .map(|o| o.name)
                    .unwrap_or_default(),
            ),
        };
        for u in identity_repo::users_of_org(c, org)? {
            if u.disabled_at.is_none() && u.email_verified_at.is_some() {
                outbox::enqueue(c, mail.kind, &u.email, &mail.subject, &mail.body, now)?;
                notified += 1;
            }
        }
    }
    let who = Who {
        actor_id: None,
        request_id: Some("chronograph".into()),
    };
    record(
        svc,
        c,
        section_id,
        "evaluation.awarded",
        json!({"winner": winner.map(|w| &w.bidder), "notices": notified}),
        Some(json!({"winner_bid": winner.map(|w| &w.bid), "winner": winner.map(|w| &w.bidder)})),
        &who,
        now,
    )?;
    Ok(PublicityEnd::Awarded)
}

/// The published result, for everyone: candidates, the committee, the report
/// (its hash and signatures), objections and answers. Nothing before the
/// candidates are published.
pub async fn public_result(svc: &Services, section_id: String) -> AppResult<Value> {
    svc.db
        .run(move |c| {
            super::opening::load(c, &section_id)?;
            let ev = repo::find(c, &section_id)?
                .filter(|e| e.published_at.is_some())
                .ok_or_else(|| AppError::not_found("published result"))?;
            let outcome: scoring::EvalOutcome = serde_json::from_str(ev.outcome_json.as_deref().unwrap_or("{}"))
                .map_err(AppError::internal)?;
            let seats = repo::seats_of(c, &section_id)?;
            let signatures: Vec<Value> = repo::report_signatures_of(c, &section_id)?
                .into_iter()
                .map(|r| json!({"expert_id": r.expert_id, "agree": r.agree, "dissent": r.dissent,
                                "deemed": r.deemed, "signature": r.signature, "at_ms": r.at}))
                .collect();
            let objections: Vec<Value> = repo::objections_of(c, &section_id)?
                .into_iter()
                .map(|o| json!({"id": o.id, "bidder": o.bidder, "text": o.text, "raised_at_ms": o.raised_at,
                                "answer_due_at_ms": o.answer_due_at, "answer": o.answer, "answered_at_ms": o.answered_at}))
                .collect();
            Ok(json!({
                "section_id": section_id,
                "phase": ev.phase,
                "candidates": candidates_view(c, &outcome)?,
                "ranking": outcome.ranking,
                "qualification": outcome.qualification,
                "committee": committee_view(c, &seats)?,
                "report_hash": ev.report_hash,
                "report": ev.report_json.as_deref().map(serde_json::from_str::<Value>).transpose().map_err(AppError::internal)?,
                "signatures": signatures,
                "objections": objections,
                "published_at_ms": ev.published_at,
                "publicity_ends_at_ms": ev.publicity_ends_at,
                "paused": ev.paused_since.is_some(),
                "awarded_at_ms": ev.awarded_at,
            }))
        })
        .await
}

/// The evaluation's part of the transcript, once the result is published
/// (before that the committee is confidential: `None`).
pub fn transcript_extract(
    c: &mut DbConn,
    atrest: &crate::crypto::atrest::AtRest,
    trust: &Trust,
    section_id: &str,
) -> AppResult<Option<crate::transcript::evaluation::EvaluationExtract>> {
    use crate::transcript::evaluation::{
        EvaluationExtract, ReportSignatureEntry, SeatEntry, SignedText,
    };
    let Some(ev) = repo::find(c, section_id)?.filter(|e| e.published_at.is_some()) else {
        return Ok(None);
    };
    fn parse<T: serde::de::DeserializeOwned>(s: &str) -> AppResult<T> {
        serde_json::from_str(s).map_err(AppError::internal)
    }
    let seed = atrest
        .open(&format!("draw-seed/{section_id}"), &ev.sealed_seed)
        .map_err(AppError::internal)?;
    let seats = repo::seats_of(c, section_id)?
        .into_iter()
        .map(|s| {
            Ok(SeatEntry {
                expert_id: s.expert_id,
                specialty: s.specialty,
                status: s.status,
                pass: s.pass_json.as_deref().map(parse).transpose()?,
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    Ok(Some(EvaluationExtract {
        request: parse(&ev.request_json)?,
        parties: parse(&ev.parties_json)?,
        snapshot: parse(&ev.snapshot_json)?,
        seed: hex::encode(&seed[..]),
        draw: parse(&ev.draw_json)?,
        centres: trust.centres(),
        seats,
        votes: repo::votes_of(c, section_id)?
            .into_iter()
            .map(|v| SignedText {
                statement: v.statement,
                signature: v.signature,
            })
            .collect(),
        scores: repo::scores_of(c, section_id)?
            .into_iter()
            .map(|v| SignedText {
                statement: v.statement,
                signature: v.signature,
            })
            .collect(),
        report: ev.report_json.unwrap_or_default(),
        report_signatures: repo::report_signatures_of(c, section_id)?
            .into_iter()
            .map(|r| ReportSignatureEntry {
                expert_id: r.expert_id,
                agree: r.agree,
                dissent: r.dissent,
                deemed: r.deemed,
                statement: r.statement,
                signature: r.signature,
            })
            .collect(),
    }))
}

// ------------------------------------------------- outliers, recusal, clarifications

pub const OUTLIER_LABEL: &str = "kaibiao/evaluation-outlier/v1";
pub const RECUSAL_LABEL: &str = "kaibiao/evaluation-recusal/v1";
pub const CLARIFICATION_LABEL: &str = "kaibiao/evaluation-clarification/v1";
pub const CLARIFICATION_ANSWER_LABEL: &str = "kaibiao/clarification-answer/v1";

/// Flags every outlier not flagged yet; returns those still unconfirmed.
fn flag_outliers(
    svc: &Services,
    c: &mut DbConn,
    x: &super::opening::Ctx,
    outcome: &scoring::EvalOutcome,
    who: &Who,
    now: i64,
) -> AppResult<Vec<Value>> {
    let section_id = x.s.id.as_str();
    let flags = repo::outliers_of(c, section_id)?;
    let mut open = Vec::new();
    for o in &outcome.outliers {
        let flag = flags
            .iter()
            .find(|f| f.expert_id == o.expert && f.bid == o.bid);
        if flag.is_some_and(|f| f.confirmed_at.is_some()) {
            continue;
        }
        if flag.is_none() {
            repo::insert_outlier(
                c,
                &repo::OutlierRow {
                    section_id: section_id.into(),
                    expert_id: o.expert.clone(),
                    bid: o.bid.clone(),
                    total: o.total.units(),
                    median: o.median.units(),
                    flagged_at: now,
                    reason: None,
                    statement: None,
                    signature: None,
                    confirmed_at: None,
                },
            )?;
            if let Some(e) = repo::find_expert(c, &o.expert)? {
                outbox::enqueue(
                    c,
                    "outlier_flagged",
                    &e.email,
                    &format!("【评分偏离提示】{} {} / Your score is far from the panel's", x.p.name, x.s.code),
                    &format!(
                        "{}：\n您对投标 {} 的评分合计 {} 分，偏离专家组中位数 {} 分超过 {} 分。\n请复核，并以签名声明确认评分及理由。\n\n---\n\n\
                         Your total of {} for bid {} is more than {} from the panel's median of {}.\nPlease review it and confirm it with a signed reason.\n",
                        e.name, o.bid, o.total, o.median, x.params.evaluation.aggregation.outlier_points,
                        o.total, o.bid, x.params.evaluation.aggregation.outlier_points, o.median
                    ),
                    now,
                )?;
            }
            record(
                svc,
                c,
                section_id,
                "evaluation.outlier_flagged",
                json!({"expert_id": o.expert, "bid": o.bid, "total": o.total, "median": o.median}),
                None,
                who,
                now,
            )?;
        }
        open.push(
            json!({"expert_id": o.expert, "bid": o.bid, "total": o.total, "median": o.median}),
        );
    }
    Ok(open)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutlierStatement {
    pub section_id: String,
    pub expert_id: String,
    pub bid: String,
    pub reason: String,
}

/// A flagged expert confirms the score with a reason (once).
pub async fn confirm_outlier(
    svc: &Services,
    section_id: String,
    v: Signed<OutlierStatement>,
) -> AppResult<Value> {
    let now = svc.now().millis();
    let s = svc.clone();
    svc.db
        .write(move |c| {
            let st = &v.statement;
            let (_, text) = signed_by_member(c, &section_id, &v)?;
            let reason = super::opening::bounded_text("statement.reason", &st.reason)?;
            let ev = drawn(c, &section_id)?;
            if ev.phase != "scoring" {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    "scores are confirmed while scoring only",
                ));
            }
            let mut flag = repo::outliers_of(c, &section_id)?
                .into_iter()
                .find(|f| f.expert_id == st.expert_id && f.bid == st.bid)
                .ok_or_else(|| {
                    AppError::invalid_field("statement.bid", "no flag for this expert and bid")
                })?;
            if flag.confirmed_at.is_some() {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    "this flag is confirmed already",
                ));
            }
            flag.reason = Some(reason);
            flag.statement = Some(text);
            flag.signature = Some(v.signature.clone());
            flag.confirmed_at = Some(now);
            if repo::confirm_outlier(c, &flag)? != 1 {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    "this flag is confirmed already",
                ));
            }
            let who = by_expert();
            record(
                &s,
                c,
                &section_id,
                "evaluation.outlier_confirmed",
                json!({"expert_id": st.expert_id, "bid": st.bid}),
                None,
                &who,
                now,
            )?;
            Ok(json!({"confirmed": true}))
        })
        .await
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecusalStatement {
    pub section_id: String,
    pub expert_id: String,
    pub reason: String,
}

/// A member recuses (回避) mid-session: the seat is vacated, the member's
/// reviews and scores no longer count, and the next reserve of the
/// specialty is called; the reserve reviews and scores every bid.
pub async fn recuse(
    svc: &Services,
    section_id: String,
    v: Signed<RecusalStatement>,
) -> AppResult<Value> {
    let now = svc.now().millis();
    let s = svc.clone();
    let r = svc
        .db
        .write(move |c| {
            let st = &v.statement;
            let (mut seat, _) = signed_by_member(c, &section_id, &v)?;
            let reason = super::opening::bounded_text("statement.reason", &st.reason)?;
            let ev = drawn(c, &section_id)?;
            if !matches!(ev.phase.as_str(), "seating" | "reviewing" | "scoring") {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    format!("a member cannot recuse while the evaluation is {}", ev.phase),
                ));
            }
            seat.status = "recused".into();
            seat.responded_at = Some(now);
            if repo::update_seat(c, &seat, "confirmed")? != 1 {
                return Err(AppError::new(ErrorCode::Conflict, "this seat changed meanwhile"));
            }
            let x = super::opening::load(c, &section_id)?;
            let mut called = false;
            if let Some(mut next) = repo::seats_of(c, &section_id)?
                .into_iter()
                .find(|r| r.status == "standby" && r.specialty == seat.specialty)
            {
                call_seat(&s, c, &x, &mut next, now)?;
                repo::update_seat(c, &next, "standby")?;
                called = true;
            }
            let who = by_expert();
            record(&s, c, &section_id, "evaluation.expert_recused",
                   json!({"specialty": seat.specialty, "reserve_called": called}),
                   Some(json!({"expert_id": st.expert_id, "reason_hash": crypto::sha256_hex(reason.as_bytes())})), &who, now)?;
            Ok(json!({"recused": true, "reserve_called": called}))
        })
        .await?;
    svc.kick_workers();
    Ok(r)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClarificationStatement {
    pub section_id: String,
    pub expert_id: String,
    pub bid: String,
    pub question: String,
    /// How long the bidder has to answer, in minutes (5 to 1440).
    pub minutes: u32,
}

/// An expert asks a bidder to clarify (澄清): the bidder's users are told by
/// e-mail and answer, signed, through the platform within the time limit.
pub async fn ask_clarification(
    svc: &Services,
    section_id: String,
    v: Signed<ClarificationStatement>,
) -> AppResult<Value> {
    let now = svc.now().millis();
    let s = svc.clone();
    let r = svc
        .db
        .write(move |c| {
            let st = &v.statement;
            let (_, text) = signed_by_member(c, &section_id, &v)?;
            let question = super::opening::bounded_text("statement.question", &st.question)?;
            if !(5..=1440).contains(&st.minutes) {
                return Err(AppError::invalid_field("statement.minutes", "5 to 1440 minutes"));
            }
            let ev = drawn(c, &section_id)?;
            if !matches!(ev.phase.as_str(), "reviewing" | "scoring") {
                return Err(AppError::new(ErrorCode::InvalidTransition, "clarifications are asked while reviewing or scoring"));
            }
            let bid = announced_bids(c, &section_id)?
                .into_iter()
                .find(|b| b.bid == st.bid)
                .ok_or_else(|| AppError::invalid_field("statement.bid", "not a bid announced at this opening"))?;
            let id = format!("clr_{}", hex::encode(crypto::random_bytes::<12>()));
            let due = now + st.minutes as i64 * 60_000;
            repo::insert_clarification(
                c,
                &repo::ClarificationRow {
                    id: id.clone(),
                    section_id: section_id.clone(),
                    expert_id: st.expert_id.clone(),
                    bid: bid.bid.clone(),
                    bidder: bid.bidder.clone(),
                    question: question.clone(),
                    statement: text,
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
            let x = super::opening::load(c, &section_id)?;
            for u in identity_repo::users_of_org(c, &bid.bidder)? {
                if u.disabled_at.is_none() && u.email_verified_at.is_some() {
                    outbox::enqueue(
                        c,
                        "clarification",
                        &u.email,
                        &format!("【澄清通知】{} {} / Clarification requested", x.p.name, x.s.code),
                        &format!(
                            "评标委员会请贵单位就投标文件作出澄清（编号 {id}）：\n{question}\n请在 {} 前通过平台作出签名答复，逾期不予接受。\n\n---\n\n\
                             The evaluation committee asks your company to clarify (ref. {id}):\n{question}\nAnswer, signed, through the platform before {}; late answers are refused.\n",
                            crate::domain::time::Timestamp::from_millis(due).rfc3339(),
                            crate::domain::time::Timestamp::from_millis(due).rfc3339(),
                        ),
                        now,
                    )?;
                }
            }
            let who = by_expert();
            record(&s, c, &section_id, "evaluation.clarification_asked",
                   json!({"id": id, "bid": bid.bid, "due_at_ms": due}),
                   Some(json!({"clarification": id, "bid": bid.bid, "question_hash": crypto::sha256_hex(question.as_bytes()), "due_at_ms": due})), &who, now)?;
            Ok(json!({"id": id, "due_at_ms": due}))
        })
        .await?;
    svc.kick_workers();
    Ok(r)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClarificationAnswerStatement {
    pub section_id: String,
    pub clarification_id: String,
    pub bid: String,
    pub answer: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClarificationAnswer {
    pub answer: String,
    /// The bidder's signing key's signature over the answer statement.
    pub signature: String,
}

/// The bidder answers, once, before the time limit, signed with its
/// registered signing key.
pub async fn answer_clarification(
    svc: &Services,
    actor: &Actor,
    idem: Option<Idem>,
    section_id: String,
    id: String,
    body: ClarificationAnswer,
) -> AppResult<Value> {
    act(svc, actor, idem, move |svc, a, c, now| {
        let org = a.org()?.to_string();
        super::opening::load(c, &section_id)?;
        drawn(c, &section_id)?;
        let mut row = repo::clarification(c, &id)?
            .filter(|r| r.section_id == section_id)
            .ok_or_else(|| AppError::not_found("clarification"))?;
        if row.bidder != org {
            return Err(AppError::forbidden(
                "this clarification is addressed to another bidder",
            ));
        }
        if row.answered_at.is_some() {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "this clarification has been answered already",
            ));
        }
        if now >= row.due_at {
            return Err(AppError::new(
                ErrorCode::DeadlinePassed,
                "the time to answer this clarification has passed",
            ));
        }
        let answer = super::opening::bounded_text("answer", &body.answer)?;
        let st = ClarificationAnswerStatement {
            section_id: section_id.clone(),
            clarification_id: id.clone(),
            bid: row.bid.clone(),
            answer: answer.clone(),
        };
        let key = crate::db::keys::active_key(
            c,
            &org,
            crate::domain::identity::KeyPurpose::BidderSigning.as_str(),
        )?
        .ok_or_else(|| AppError::new(ErrorCode::ProofInvalid, "register a signing key first"))?;
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
        row.answered_by = Some(a.user.id.to_string());
        row.answered_at = Some(now);
        if repo::answer_clarification(c, &row)? != 1 {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "this clarification has been answered already",
            ));
        }
        record(
            svc,
            c,
            &section_id,
            "evaluation.clarification_answered",
            json!({"id": id, "bid": row.bid}),
            Some(
                json!({"clarification": id, "answer_hash": crypto::sha256_hex(answer.as_bytes())}),
            ),
            &a.who(),
            now,
        )?;
        Ok(json!({"id": id, "answered": true}))
    })
    .await
}

#[derive(Debug, Deserialize)]
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
    section_id: String,
    body: PassRequest,
) -> AppResult<Value> {
    let now = svc.now().millis();
    let s = svc.clone();
    let a = actor.clone();
    svc.db
        .run(move |c| {
            super::opening::load(c, &section_id)?;
            drawn(c, &section_id)?;
            let user = identity_repo::find_user(c, a.user.id.as_str())?
                .ok_or_else(AppError::unauthenticated)?;
            let code = &s.config.evaluation.centre_code;
            let expert = repo::all_experts(c)?
                .into_iter()
                .find(|e| e.centre == *code && e.email.eq_ignore_ascii_case(&user.email))
                .ok_or_else(|| {
                    AppError::new(
                        ErrorCode::PassRejected,
                        "your account is not an expert in this centre's pool",
                    )
                })?;
            repo::seat(c, &section_id, &expert.id)?
                .filter(|r| r.status == "confirmed")
                .ok_or_else(|| {
                    AppError::new(
                        ErrorCode::PassRejected,
                        "you hold no confirmed seat on this section's committee",
                    )
                })?;
            let p = issue_pass(
                &s.platform_key,
                code,
                &expert.id,
                &body.expert_key,
                &section_id,
                now,
                body.minutes.unwrap_or(480),
            )?;
            serde_json::to_value(p).map_err(AppError::internal)
        })
        .await
}
