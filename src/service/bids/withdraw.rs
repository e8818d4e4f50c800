//! Withdrawal (撤回投标) before the deadline: a statement signed with the
//! bidder's key, queued for the log like a submission (ADR 9), with its
//! promise at once and its receipt after the flush.

use serde_json::json;

use super::flush::{enqueue, next_flush};
use super::upload::find_own;
use super::{
    deadline_passed, load_section, not_found, open_record, progress_of, record_late, view,
    SubmissionView,
};
use crate::crypto::envelope::{self, SignedWithdrawal};
use crate::crypto::translog::{self as fmt, Receipt, SignedReceipt};
use crate::db::bids as repo;
use crate::db::keys as keys_repo;
use crate::domain::identity::KeyPurpose;
use crate::domain::section::SectionState;
use crate::domain::states::{LateStage, SubmissionState};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::{transition, translog, Actor, Services};

/// Withdraws the caller's bid with a signed statement.
pub async fn withdraw(
    svc: &Services,
    actor: &Actor,
    envelope_hash: String,
    statement: SignedWithdrawal,
) -> AppResult<SubmissionView> {
    let (row, rec) = find_own(svc, actor, envelope_hash.clone()).await?;
    let w = &statement.withdrawal;
    if w.version != envelope::VERSION
        || w.section_id != rec.section_id.as_str()
        || w.bid_id != rec.bid_id
        || w.bidder != rec.bidder.as_str()
        || w.envelope_hash != envelope_hash
    {
        return Err(AppError::new(
            ErrorCode::EnvelopeInvalid,
            "the withdrawal does not name this bid",
        ));
    }
    let sid = rec.section_id.clone();
    let section = svc
        .db
        .run(move |c| load_section(c, &sid))
        .await?
        .ok_or_else(|| AppError::not_found("section"))?;
    let now = svc.now().millis();
    if section.state != SectionState::Published || now >= section.deadline {
        record_late(
            svc,
            section.id,
            rec.bidder,
            envelope_hash,
            LateStage::Withdrawal,
            section.deadline,
        )
        .await?;
        return Err(deadline_passed());
    }
    let s = svc.clone();
    let org = rec.bidder.clone();
    svc.db
        .write(move |c| {
            let signing = keys_repo::active_key(c, org.as_str(), KeyPurpose::BidderSigning)?
                .ok_or_else(|| {
                    AppError::new(ErrorCode::KeyRejected, "no registered signing key")
                })?;
            let key = crate::crypto::sign::parse_public(&signing.public_key)
                .map_err(AppError::internal)?;
            if !statement.verify(&key) {
                return Err(AppError::new(
                    ErrorCode::EnvelopeInvalid,
                    "the withdrawal's signature does not verify with your registered signing key",
                ));
            }
            let row = repo::submission_by_id(c, &row.id)?.ok_or_else(not_found)?;
            if row.state != SubmissionState::Complete {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    format!(
                        "only the bid's current complete revision can be withdrawn; this one is {}",
                        row.state
                    ),
                ));
            }
            let mut rec = open_record(&s, &row)?;
            for other in repo::chain(c, &row.bidder_tag)?
                .iter()
                .filter(|r| r.state == SubmissionState::Receiving)
            {
                transition::submission(c, &other.id, other.state, SubmissionState::Abandoned)?;
            }
            transition::submission(
                c,
                &row.id,
                SubmissionState::Complete,
                SubmissionState::Withdrawn,
            )?;
            let event = json!({
                "type": "bid.withdrawn", "section_id": rec.section_id, "bidder": rec.bidder,
                "bid_id": rec.bid_id, "revision": row.revision, "envelope_hash": row.envelope_hash,
                "statement_signature": statement.signature, "withdrawn_at_ms": now,
            });
            let first = rec.receipt.as_ref().or(rec.promise.as_ref());
            let promise = SignedReceipt::sign(
                Receipt {
                    format: fmt::PROMISE_FORMAT.into(),
                    kind: "withdrawal".into(),
                    section_id: rec.section_id.to_string(),
                    bidder: rec.bidder.to_string(),
                    bid_id: rec.bid_id.clone(),
                    revision: row.revision as u32,
                    envelope_hash: row.envelope_hash.clone(),
                    parts: first.map(|r| r.receipt.parts.clone()).unwrap_or_default(),
                    deadline_ms: section.deadline,
                    grace_ms: section.grace,
                    envelope_received_at_ms: row.received_at,
                    completed_at_ms: now,
                    opening: translog::opening(event),
                    flush_at_ms: next_flush(&s, now),
                    log: None,
                    platform_key: s.platform_public_hex(),
                },
                &s.platform_key,
            );
            enqueue(&s, c, &row.id, &promise)?;
            rec.withdrawal = Some(statement);
            rec.withdrawal_promise = Some(promise);
            repo::set_record(c, &row.id, &s.atrest.seal_json(row.id.as_str(), &rec))?;
            let row = repo::submission_by_id(c, &row.id)?.ok_or_else(not_found)?;
            Ok(view(&row, &rec, &progress_of(&row)?))
        })
        .await
}
