//! The first step of a submission: a signed `sealed-bid/1` envelope,
//! checked against the section's parameters and the bidder's registered
//! keys, filed under blind tags; and the revision chain (a new revision must
//! supersede the latest one, never roll back or skip).

use serde_json::json;

use super::{
    blind, deadline_passed, envelope_error, load_section, not_found, open_record, progress_of,
    record_late, section_keys, view, PartProgress, Record, SubmissionView,
};
use crate::crypto::envelope::{self, Envelope, Expectations, SignedEnvelope};
use crate::db::bids::{self as repo, SubmissionRow};
use crate::db::{audit, is_unique_violation, keys as keys_repo, DbConn};
use crate::domain::identity::{KeyPurpose, Role};
use crate::domain::ids::{OrgId, SectionId, SubmissionId, UserId};
use crate::domain::section::SectionState;
use crate::domain::states::{LateStage, SubmissionState};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::{confidential, transition, Actor, Services};

/// The answer to an envelope: `created` is false when the same envelope was
/// submitted before (the answer then says where it stands).
pub struct Submitted {
    pub created: bool,
    pub submission: SubmissionView,
}

/// Accepts a signed envelope (the first step of a submission).
pub async fn submit_envelope(
    svc: &Services,
    actor: &Actor,
    signed: SignedEnvelope,
) -> AppResult<Submitted> {
    actor.require(&[Role::Bidder])?;
    let org = actor.org()?.clone();
    let (env, hash) = envelope::parse_signed(&signed).map_err(envelope_error)?;
    if env.bidder != org.as_str() {
        return Err(AppError::new(
            ErrorCode::EnvelopeInvalid,
            "the envelope names another bidder",
        ));
    }
    let now = svc.now().millis();
    let section_id = SectionId::from_db(env.section_id.clone());
    let section = svc.db.run(move |c| load_section(c, &section_id)).await?;
    let section = match section {
        Some(s) if s.state.is_public() => s,
        _ => return Err(AppError::not_found("section")),
    };
    if section.state != SectionState::Published || now >= section.deadline {
        record_late(
            svc,
            section.id,
            org,
            hash,
            LateStage::Envelope,
            section.deadline,
        )
        .await?;
        return Err(deadline_passed());
    }
    let (params, params_hash) = section.params.expect("published sections have parameters");
    let keys = section_keys(&params, &params_hash)?;
    let s = svc.clone();
    let user = actor.user.id.clone();
    let request_id = actor.request_id.clone();
    let max_docs = svc.config.server.max_bid_bytes;
    let r = svc
        .db
        .write(move |c| {
            let mut key = |purpose, what: &str| -> AppResult<String> {
                Ok(keys_repo::active_key(c, org.as_str(), purpose)?
                    .ok_or_else(|| {
                        AppError::new(
                            ErrorCode::KeyRejected,
                            format!("register your organisation's {what} key first"),
                        )
                    })?
                    .public_key)
            };
            let signing = key(KeyPurpose::BidderSigning, "signing")?;
            let encryption = key(KeyPurpose::BidderEncryption, "encryption")?;
            envelope::check(
                &env,
                &Expectations {
                    section: &keys,
                    signer_key: &signing,
                    encryption_key: &encryption,
                    max_documents_bytes: max_docs,
                },
            )
            .map_err(envelope_error)?;
            accept_envelope(
                &s,
                c,
                Incoming {
                    env,
                    hash,
                    signed,
                    bidder: org,
                    user,
                    request_id,
                },
                now,
            )
        })
        .await?;
    if r.created {
        svc.metrics.inc("kaibiao_bid_envelopes_total", &[]);
    }
    Ok(r)
}

/// A checked envelope and who sent it.
struct Incoming {
    env: Envelope,
    hash: String,
    signed: SignedEnvelope,
    bidder: OrgId,
    user: UserId,
    request_id: String,
}

fn accept_envelope(svc: &Services, c: &mut DbConn, i: Incoming, now: i64) -> AppResult<Submitted> {
    let Incoming {
        env,
        hash,
        signed,
        bidder,
        user,
        request_id,
    } = i;
    // The same envelope again: report where it stands (idempotent).
    if let Some(row) = repo::submission_by_hash(c, &hash)? {
        let rec = open_record(svc, &row)?;
        if rec.bidder != bidder {
            return Err(not_found());
        }
        return Ok(Submitted {
            created: false,
            submission: view(&row, &rec, &progress_of(&row)?),
        });
    }
    let section_id = SectionId::from_db(env.section_id.clone());
    let bidder_tag = confidential::bidder(&svc.atrest, &section_id, &bidder);
    let chain = repo::chain(c, &bidder_tag)?;
    let conflict = |m: String| AppError::new(ErrorCode::RevisionConflict, m);
    match chain.last() {
        None => {
            if env.revision != 1 {
                return Err(conflict("a new bid starts at revision 1".into()));
            }
        }
        Some(last) => {
            let first = open_record(svc, &chain[0])?;
            if env.bid_id != first.bid_id {
                return Err(conflict(
                    "you already have a bid in this section: submit a new revision of it".into(),
                ));
            }
            if env.revision as i32 != last.revision + 1 {
                return Err(conflict(format!(
                    "the next revision is {}; revision {} would roll back or skip",
                    last.revision + 1,
                    env.revision
                )));
            }
            if env.supersedes.as_deref() != Some(last.envelope_hash.as_str()) {
                return Err(conflict("a revision must supersede the latest one".into()));
            }
            // Unfinished uploads of earlier revisions will never count.
            for old in chain
                .iter()
                .filter(|r| r.state == SubmissionState::Receiving)
            {
                transition::submission(c, &old.id, old.state, SubmissionState::Abandoned)?;
            }
        }
    }
    let id = SubmissionId::new();
    let progress: Vec<PartProgress> = env
        .parts
        .iter()
        .map(|p| PartProgress {
            name: p.name.clone(),
            length: p.length,
            received: 0,
            stored: false,
        })
        .collect();
    let rec = Record {
        section_id: section_id.clone(),
        bidder: bidder.clone(),
        user_id: user,
        request_id,
        bid_id: env.bid_id.clone(),
        signed,
        logged: Vec::new(),
        receipt: None,
        withdrawal: None,
        withdrawal_receipt: None,
        promise: None,
        withdrawal_promise: None,
    };
    let row = SubmissionRow {
        id: id.clone(),
        section_tag: confidential::section(&svc.atrest, &section_id),
        bidder_tag,
        owner_tag: confidential::owner(&svc.atrest, &bidder),
        envelope_hash: hash,
        revision: env.revision as i32,
        state: SubmissionState::Receiving,
        record: svc.atrest.seal_json(id.as_str(), &rec),
        progress: serde_json::to_string(&progress).expect("progress"),
        received_at: now,
        completed_at: None,
    };
    repo::insert_submission(c, &row).map_err(|e| {
        if is_unique_violation(&e) {
            conflict("another submission of this revision arrived at the same time".into())
        } else {
            e.into()
        }
    })?;
    audit::record(
        c,
        now,
        &blind(&rec),
        "bid.envelope",
        id.as_str(),
        &json!({}),
    )?;
    Ok(Submitted {
        created: true,
        submission: view(&row, &rec, &progress),
    })
}
