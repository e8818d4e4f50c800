//! Closing the opening: the platform signs the closing statement over the
//! record's hash, the confirmations, the objections and answers, the
//! bidders who did not respond (视为认可) and the incidents; the supervisor
//! countersigns it, and the section moves on to its evaluation.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::confirm::{announced, open_for_confirming};
use super::window::{supervisor_key, SignatureRequest};
use super::{hosted, supervised};
use crate::crypto::opening::{
    self as fmt, Closing, ClosingConfirmation, ClosingIncident, ClosingObjection,
};
use crate::db::keys as keys_repo;
use crate::db::opening as repo;
use crate::domain::identity::{KeyPurpose, Role};
use crate::domain::ids::SectionId;
use crate::domain::section::SectionState;
use crate::domain::states::OpeningStatus;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::action::{Action, Change, IdempotencyKey};
use crate::service::{transition, Actor, Services};

/// The closed record.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordClosed {
    pub closing_hash: String,
    pub closing: Closing,
    pub platform_signature: String,
}

/// The host closes the record: the platform signs the closing statement.
pub async fn close(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
    key: Option<IdempotencyKey>,
) -> AppResult<RecordClosed> {
    actor.require(&[Role::Host])?;
    Action::new("close", &section_id)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let now = tx.now;
            let x = hosted(tx.c, a, &section_id, "close the opening")?;
            let mut o = open_for_confirming(tx.c, &x, "closing the opening")?;
            let objections = repo::objections_of(tx.c, &section_id)?;
            if let Some(j) = objections.iter().find(|j| j.answer.is_none()) {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    format!("objection {} has not been answered", j.id),
                ));
            }
            let confirmations = repo::confirmations_of(tx.c, &section_id)?;
            let record = announced(&o)?;
            let confirmed: BTreeSet<&str> =
                confirmations.iter().map(|k| k.bidder.as_str()).collect();
            let objected: BTreeSet<&str> = objections.iter().map(|j| j.bidder.as_str()).collect();
            let mut no_response: Vec<String> = record
                .bids
                .iter()
                .filter(|b| b.status == OpeningStatus::Decrypted)
                .map(|b| b.bidder.as_str())
                .filter(|b| !confirmed.contains(b) && !objected.contains(b))
                .map(str::to_string)
                .collect();
            no_response.sort();
            no_response.dedup();
            let mut conf = Vec::new();
            for k in &confirmations {
                let key =
                    keys_repo::active_key(tx.c, k.bidder.as_str(), KeyPurpose::BidderSigning)?
                        .map(|k| k.public_key)
                        .unwrap_or_default();
                conf.push(ClosingConfirmation {
                    bidder: k.bidder.to_string(),
                    signer_key: key,
                    signature: k.signature.clone(),
                    confirmed_at_ms: k.confirmed_at,
                });
            }
            let mut incidents = Vec::new();
            for i in repo::incidents_of(tx.c, &section_id)? {
                incidents.push(ClosingIncident {
                    bidders: serde_json::from_str(&i.bidders).map_err(AppError::internal)?,
                    id: i.id.to_string(),
                    reason: i.reason,
                    declared_at_ms: i.declared_at,
                    countersigned: i.countersignature.is_some(),
                });
            }
            let closing = Closing {
                format: fmt::CLOSING_FORMAT.into(),
                section_id: section_id.to_string(),
                record_hash: o.record_hash.clone().unwrap_or_default(),
                confirmations: conf,
                objections: objections
                    .iter()
                    .map(|j| ClosingObjection {
                        id: j.id.to_string(),
                        bidder: j.bidder.to_string(),
                        text: j.text.clone(),
                        raised_at_ms: j.raised_at,
                        answer: j.answer.clone().unwrap_or_default(),
                        answered_at_ms: j.answered_at.unwrap_or_default(),
                    })
                    .collect(),
                no_response,
                incidents,
                closed_by: a.user.id.to_string(),
                closed_at_ms: now,
            };
            let sig = closing.sign_platform(&tx.svc.platform_key);
            let hash = closing.hash();
            o.closing_json = Some(String::from_utf8(closing.bytes()).expect("JCS is UTF-8"));
            o.closing_hash = Some(hash.clone());
            o.platform_signature = Some(sig.clone());
            o.closed_at = Some(now);
            repo::save(tx.c, &o)?;
            tx.record(
                Change::new(&section_id, "opening.closed")
                    .data(json!({"closing_hash": hash, "closed_at_ms": now, "closing": closing}))
                    .logged(json!({"closing_hash": hash, "platform_signature": sig})),
            )?;
            Ok(RecordClosed {
                closing_hash: hash,
                closing,
                platform_signature: sig,
            })
        })
        .await
}

/// The record countersigned: the evaluation may begin.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordCountersigned {
    pub countersigned: bool,
}

/// The supervisor countersigns the closed record; evaluation may begin.
pub async fn countersign(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
    req: SignatureRequest,
    key: Option<IdempotencyKey>,
) -> AppResult<RecordCountersigned> {
    actor.require(&[Role::Supervisor])?;
    Action::new("countersign", &section_id)
        .with_request(&req)
        .idempotent(key)
        .run(svc, actor, move |tx, a| {
            let now = tx.now;
            let x = supervised(tx.c, a, &section_id)?;
            x.need_phase(&[SectionState::Confirming], "countersigning the record")?;
            let mut o = repo::get_or_create(tx.c, &section_id)?;
            let Some(closing_json) = o.closing_json.clone() else {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    "the host has not closed the record yet",
                ));
            };
            let closing: Closing =
                serde_json::from_str(&closing_json).map_err(AppError::internal)?;
            let key = supervisor_key(tx.c, a)?;
            if !closing.verify_countersignature(&key, &req.signature) {
                return Err(AppError::new(
                    ErrorCode::ProofInvalid,
                    "the signature does not verify with your registered identity key over the closing statement",
                ));
            }
            o.countersigned_by = Some(a.user.id.clone());
            o.countersignature = Some(req.signature.clone());
            o.countersigned_at = Some(now);
            repo::save(tx.c, &o)?;
            transition::section(
                tx.c,
                &section_id,
                SectionState::Confirming,
                SectionState::Evaluating,
                now,
            )?;
            tx.record(
                Change::new(&section_id, "opening.countersigned")
                    .data(json!({"at_ms": now, "staff": {"supervisor": a.user.id}}))
                    .logged(json!({"closing_hash": o.closing_hash, "supervisor": a.user.id,
                                   "supervisor_key": key, "signature": req.signature})),
            )?;
            Ok(RecordCountersigned {
                countersigned: true,
            })
        })
        .await
}
