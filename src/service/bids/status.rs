//! A bidder's submissions: before the deadline from the sealed records
//! (only its organisation can find them), after it from the opened record.

use serde::Deserialize;

use super::upload::find_own;
use super::{not_found, open_record, progress_of, view, BidState, PartView, SubmissionView};
use crate::crypto::envelope::{self, SignedEnvelope, SignedWithdrawal};
use crate::crypto::translog::SignedReceipt;
use crate::db::bids::{self as repo, BidRow};
use crate::domain::identity::Role;
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult};
use crate::service::{confidential, Actor, Services};

/// One of the caller's submissions, with its receipt once complete.
pub async fn status(
    svc: &Services,
    actor: &Actor,
    envelope_hash: String,
) -> AppResult<SubmissionView> {
    actor.require(&[Role::Bidder])?;
    // After the deadline, the bid lives in the opened record.
    let org = actor.org()?.clone();
    let h = envelope_hash.clone();
    if let Some(b) = svc.db.run(move |c| Ok(repo::bid(c, &h)?)).await? {
        if b.bidder != org {
            return Err(not_found());
        }
        return opened_view(&b);
    }
    let (row, rec) = find_own(svc, actor, envelope_hash).await?;
    Ok(view(&row, &rec, &progress_of(&row)?))
}

/// A withdrawal as the opened record keeps it.
#[derive(Deserialize)]
struct KeptWithdrawal {
    #[allow(dead_code)]
    statement: SignedWithdrawal,
    receipt: Option<SignedReceipt>,
}

fn opened_view(b: &BidRow) -> AppResult<SubmissionView> {
    let signed: SignedEnvelope =
        serde_json::from_str(&b.signed_envelope).map_err(AppError::internal)?;
    let (env, _) = envelope::parse_signed(&signed).map_err(AppError::internal)?;
    let receipt: Option<SignedReceipt> = b
        .receipt
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(AppError::internal)?;
    let withdrawal: Option<KeptWithdrawal> = b
        .withdrawal
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(AppError::internal)?;
    let complete = b.completed_at.is_some();
    Ok(SubmissionView {
        envelope_hash: b.envelope_hash.clone(),
        section_id: b.section_id.clone(),
        bid_id: b.bid_id.clone(),
        revision: b.revision,
        state: BidState::Opened(b.status),
        parts: env
            .parts
            .iter()
            .map(|p| PartView {
                name: p.name.clone(),
                length: p.length,
                received: if complete { p.length } else { 0 },
                complete,
            })
            .collect(),
        received_at: Timestamp::from_millis(b.received_at),
        completed_at: b.completed_at.map(Timestamp::from_millis),
        promise: None,
        receipt,
        withdrawal_promise: None,
        withdrawal_receipt: withdrawal.and_then(|w| w.receipt),
    })
}

/// The caller's organisation's submissions, everywhere.
pub async fn list_mine(svc: &Services, actor: &Actor) -> AppResult<Vec<SubmissionView>> {
    actor.require(&[Role::Bidder])?;
    let org = actor.org()?.clone();
    let owner = confidential::owner(&svc.atrest, &org);
    let s = svc.clone();
    svc.db
        .run(move |c| {
            let mut out = Vec::new();
            for row in repo::of_owner(c, &owner)? {
                let rec = open_record(&s, &row)?;
                out.push(view(&row, &rec, &progress_of(&row)?));
            }
            for b in repo::bids_of_bidder(c, &org)? {
                out.push(opened_view(&b)?);
            }
            Ok(out)
        })
        .await
}
