//! After the announcement: bidders confirm the record by signing its hash,
//! or object (异议); the host answers each objection on the spot, once.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{bounded_text, hosted, load, org_name, PublishedSection};
use crate::crypto::opening::{Confirmation, OpeningRecord};
use crate::db::keys as keys_repo;
use crate::db::opening::{self as repo, ConfirmationRow, ObjectionRow, OpeningRow};
use crate::db::DbConn;
use crate::domain::identity::{KeyPurpose, Role};
use crate::domain::ids::{ObjectionId, OrgId, SectionId};
use crate::domain::section::SectionState;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::action::{Action, Change, IdempotencyKey};
use crate::service::{Actor, Services};

/// The opening while it takes confirmations and objections.
pub(super) fn open_for_confirming(
    c: &mut DbConn,
    x: &PublishedSection,
    what: &str,
) -> AppResult<OpeningRow> {
    x.need_phase(&[SectionState::Confirming], what)?;
    let o = repo::get_or_create(c, x.id())?;
    if o.closed_at.is_some() {
        return Err(AppError::new(
            ErrorCode::InvalidTransition,
            "the host has closed the opening record",
        ));
    }
    Ok(o)
}

/// The announced record.
pub(super) fn announced(o: &OpeningRow) -> AppResult<OpeningRecord> {
    let json = o
        .record_json
        .as_deref()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("confirming without a record")))?;
    serde_json::from_str(json).map_err(AppError::internal)
}

fn in_record(o: &OpeningRow, org: &OrgId) -> AppResult<bool> {
    Ok(announced(o)?.bids.iter().any(|b| b.bidder == org.as_str()))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    pub record_hash: String,
    /// The bidder's Ed25519 signature over the confirmation statement.
    pub signature: String,
}

/// The record confirmed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordConfirmed {
    pub confirmed: bool,
    pub record_hash: String,
}

/// A bidder confirms the announced record by signing its hash.
pub async fn confirm(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
    req: ConfirmRequest,
    key: Option<IdempotencyKey>,
) -> AppResult<RecordConfirmed> {
    actor.require(&[Role::Bidder])?;
    let org = actor.org()?.clone();
    Action::new("confirm", &section_id)
        .with_request(&req)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let x = load(tx.c, &section_id)?;
            let o = open_for_confirming(tx.c, &x, "confirming the record")?;
            if !in_record(&o, &org)? {
                return Err(AppError::forbidden(
                    "only bidders in the opening record can confirm it",
                ));
            }
            if o.record_hash.as_deref() != Some(req.record_hash.as_str()) {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    "this is not the current record's hash; reload the record and check it again",
                ));
            }
            let key = keys_repo::active_key(tx.c, org.as_str(), KeyPurpose::BidderSigning)?
                .ok_or_else(|| {
                    AppError::new(ErrorCode::KeyRejected, "no registered signing key")
                })?;
            let statement = Confirmation::new(section_id.as_str(), org.as_str(), &req.record_hash);
            if !statement.verify(&key.public_key, &req.signature) {
                return Err(AppError::new(
                    ErrorCode::ProofInvalid,
                    "the signature does not verify with your organisation's signing key",
                ));
            }
            if repo::confirmations_of(tx.c, &section_id)?
                .iter()
                .any(|k| k.bidder == org)
            {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    "you have already confirmed the record",
                ));
            }
            if repo::objections_of(tx.c, &section_id)?
                .iter()
                .any(|j| j.bidder == org && j.answer.is_none())
            {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    "your objection has not been answered yet",
                ));
            }
            repo::insert_confirmation(
                tx.c,
                &ConfirmationRow {
                    section_id: section_id.clone(),
                    bidder: org.clone(),
                    record_hash: req.record_hash.clone(),
                    signature: req.signature.clone(),
                    confirmed_by: a.user.id.clone(),
                    confirmed_at: tx.now,
                },
            )?;
            let name = org_name(tx.c, &org)?;
            tx.record(
                Change::new(&section_id, "opening.confirmed")
                    .data(json!({"bidder": org, "name": name, "at_ms": tx.now}))
                    .logged(json!({"bidder": org, "record_hash": req.record_hash,
                                   "signer_key": key.public_key, "signature": req.signature})),
            )?;
            Ok(RecordConfirmed {
                confirmed: true,
                record_hash: req.record_hash.clone(),
            })
        })
        .await
}

/// Free text: an objection, an answer, a notice.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextRequest {
    /// 1 to 2000 characters.
    pub text: String,
}

/// The objection raised.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ObjectionRaised {
    pub id: ObjectionId,
}

/// A bidder raises an objection (异议) to the record.
pub async fn object(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
    req: TextRequest,
    key: Option<IdempotencyKey>,
) -> AppResult<ObjectionRaised> {
    actor.require(&[Role::Bidder])?;
    let org = actor.org()?.clone();
    Action::new("object", &section_id)
        .with_request(&req)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let x = load(tx.c, &section_id)?;
            let o = open_for_confirming(tx.c, &x, "raising an objection")?;
            if !in_record(&o, &org)? {
                return Err(AppError::forbidden(
                    "only bidders in the opening record can object",
                ));
            }
            let text = bounded_text("text", &req.text)?;
            if repo::confirmations_of(tx.c, &section_id)?
                .iter()
                .any(|k| k.bidder == org)
            {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    "you have confirmed the record; an objection is no longer possible",
                ));
            }
            if repo::objections_of(tx.c, &section_id)?
                .iter()
                .any(|j| j.bidder == org && j.answer.is_none())
            {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    "your previous objection is still waiting for the host's answer",
                ));
            }
            let id = ObjectionId::new();
            repo::insert_objection(
                tx.c,
                &ObjectionRow {
                    id: id.clone(),
                    section_id: section_id.clone(),
                    bidder: org.clone(),
                    raised_by: a.user.id.clone(),
                    text: text.clone(),
                    raised_at: tx.now,
                    answer: None,
                    answered_by: None,
                    answered_at: None,
                },
            )?;
            let name = org_name(tx.c, &org)?;
            tx.record(
                Change::new(&section_id, "opening.objection")
                    .data(json!({"id": id, "bidder": org, "name": name, "text": text, "at_ms": tx.now}))
                    .logged(json!({"objection_id": id, "bidder": org, "text": text})),
            )?;
            Ok(ObjectionRaised { id })
        })
        .await
}

/// The objection answered.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ObjectionAnswered {
    pub id: ObjectionId,
    pub answered: bool,
}

/// The host answers an objection on the spot; the answer is final.
pub async fn answer(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
    objection_id: ObjectionId,
    req: TextRequest,
    key: Option<IdempotencyKey>,
) -> AppResult<ObjectionAnswered> {
    actor.require(&[Role::Host])?;
    Action::new(&format!("answer {objection_id}"), &section_id)
        .with_request(&req)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let x = hosted(tx.c, a, &section_id, "answer objections")?;
            open_for_confirming(tx.c, &x, "answering an objection")?;
            let text = bounded_text("text", &req.text)?;
            let j = repo::find_objection(tx.c, &objection_id)?
                .filter(|j| j.section_id == section_id)
                .ok_or_else(|| AppError::not_found("objection"))?;
            if repo::answer_objection(tx.c, &j.id, &text, &a.user.id, tx.now)? != 1 {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    "this objection is already answered",
                ));
            }
            tx.record(
                Change::new(&section_id, "opening.answered")
                    .data(json!({"id": j.id, "answer": text, "at_ms": tx.now}))
                    .logged(json!({"objection_id": j.id, "answer": text})),
            )?;
            Ok(ObjectionAnswered {
                id: j.id,
                answered: true,
            })
        })
        .await
}
