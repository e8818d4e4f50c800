//! The sealing at the deadline (plus the grace period, if any): every
//! submission's record is opened into the public `bids` table with what the
//! deadline found, the commitments' openings are kept for the transcript,
//! the audit trail gets its actors and the times of the bid's steps, and
//! the manifest (the accepted envelope
//! hashes and their Merkle root) is logged — then the opening begins.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{open_record, progress_of};
use crate::crypto::merkle;
use crate::db::audit::{self, Who};
use crate::db::bids::{self as repo, BidRow, ManifestRow};
use crate::db::sections as sections_repo;
use crate::domain::ids::{OrgId, SectionId};
use crate::domain::states::{BidStatus, SubmissionState};
use crate::error::{AppError, AppResult};
use crate::service::action::{Change, Tx};
use crate::service::{confidential, translog};

/// The manifest of a sealed section (a log leaf of type `section.manifest`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Manifest {
    #[serde(rename = "type")]
    pub kind: String,
    pub section_id: SectionId,
    pub params_hash: Option<String>,
    pub deadline_ms: Option<i64>,
    pub grace_ms: i64,
    pub sealed_at_ms: i64,
    /// The accepted bids, by envelope hash.
    pub bids: Vec<ManifestBid>,
    pub count: usize,
    /// The Merkle root over the accepted envelope hashes, in this order.
    pub root: String,
    /// The section's chain key, hex, published now that the bids are
    /// (ADR 8): with it anyone checks that the section's leaves are all
    /// there.
    pub chain_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ManifestBid {
    pub envelope_hash: String,
    pub bidder: OrgId,
    pub bid_id: String,
    pub revision: i32,
}

/// The Merkle root over a manifest's envelope hashes.
pub fn manifest_root(hashes: &[String]) -> String {
    let leaves: Vec<merkle::Hash> = hashes
        .iter()
        .map(|h| merkle::leaf_hash(&crate::crypto::from_hex(h).unwrap_or_default()))
        .collect();
    hex::encode(merkle::root(&leaves))
}

/// What the deadline makes of a submission.
fn status_at_deadline(state: SubmissionState) -> BidStatus {
    match state {
        SubmissionState::Complete => BidStatus::Accepted,
        SubmissionState::Superseded => BidStatus::Superseded,
        SubmissionState::Withdrawn => BidStatus::Withdrawn,
        SubmissionState::Receiving | SubmissionState::Abandoned => BidStatus::Incomplete,
    }
}

/// Opens a section's submissions into the public record and logs its
/// manifest, in the chronograph's transaction. Returns the files of uploads
/// that will never complete, for the caller to remove after commit.
pub fn seal_section(tx: &mut Tx<'_>, section_id: &SectionId) -> AppResult<Vec<std::path::PathBuf>> {
    let (svc, now) = (tx.svc, tx.now);
    // Every accepted commitment is in the log before the manifest (ADR 9).
    super::flush::flush_in(svc, tx.c, now)?;
    let s = sections_repo::find_section(tx.c, section_id)?
        .ok_or_else(|| AppError::not_found("section"))?;
    let tag = confidential::section(&svc.atrest, section_id);
    let rows = repo::of_section(tx.c, &tag)?;
    let mut accepted: Vec<ManifestBid> = Vec::new();
    let mut leftovers = Vec::new();
    for row in &rows {
        let rec = open_record(svc, row)?;
        let status = status_at_deadline(row.state);
        if status == BidStatus::Incomplete {
            for p in progress_of(row)? {
                leftovers.push(svc.blobs.upload_path(&format!("{}.{}", row.id, p.name)));
            }
        }
        if status == BidStatus::Accepted {
            accepted.push(ManifestBid {
                envelope_hash: row.envelope_hash.clone(),
                bidder: rec.bidder.clone(),
                bid_id: rec.bid_id.clone(),
                revision: row.revision,
            });
        }
        let withdrawal = rec
            .withdrawal
            .as_ref()
            .map(|w| json!({"statement": w, "receipt": rec.withdrawal_receipt}).to_string());
        repo::insert_bid(
            tx.c,
            &BidRow {
                envelope_hash: row.envelope_hash.clone(),
                section_id: section_id.clone(),
                bidder: rec.bidder.clone(),
                bid_id: rec.bid_id.clone(),
                revision: row.revision,
                status,
                signed_envelope: serde_json::to_string(&rec.signed).expect("envelope"),
                received_at: row.received_at,
                completed_at: row.completed_at,
                receipt: rec
                    .receipt
                    .as_ref()
                    .map(|r| serde_json::to_string(r).expect("receipt")),
                withdrawal,
            },
        )?;
        for (idx, opening) in &rec.logged {
            repo::insert_opening(
                tx.c,
                *idx as i64,
                section_id,
                &serde_json::to_string(opening).expect("opening"),
            )?;
        }
        // The audit trail names the actors now that it may.
        let who = Who {
            actor_id: Some(rec.user_id.to_string()),
            request_id: Some(rec.request_id.clone()),
        };
        audit::record(
            tx.c,
            now,
            &who,
            "bid.opened_record",
            section_id.as_str(),
            &json!({
                "envelope_hash": row.envelope_hash, "status": status,
                "received_at_ms": row.received_at, "completed_at_ms": row.completed_at,
                "withdrawn": rec.withdrawal.is_some(),
            }),
        )?;
    }
    accepted.sort_by(|a, b| a.envelope_hash.cmp(&b.envelope_hash));
    let hashes: Vec<String> = accepted.iter().map(|b| b.envelope_hash.clone()).collect();
    let root = manifest_root(&hashes);
    let manifest = Manifest {
        kind: "section.manifest".into(),
        section_id: section_id.clone(),
        params_hash: s.params_hash.clone(),
        deadline_ms: s.deadline_at,
        grace_ms: s.grace_secs * 1000,
        sealed_at_ms: now,
        bids: accepted,
        count: hashes.len(),
        root: root.clone(),
        chain_key: hex::encode(svc.atrest.chain_key(section_id.as_str())),
    };
    let leaf = serde_json::to_value(&manifest).map_err(AppError::internal)?;
    let pos = translog::append(
        svc,
        tx.c,
        &leaf,
        "section.manifest",
        translog::Scope::Section(section_id),
        now,
    )?;
    repo::insert_manifest(
        tx.c,
        &ManifestRow {
            section_id: section_id.clone(),
            manifest: pos.leaf.to_string(),
            root: root.clone(),
            bid_count: hashes.len() as i32,
            log_idx: pos.index as i64,
            sealed_at: now,
        },
    )?;
    repo::delete_section_submissions(tx.c, &tag)?;
    tx.record(
        Change::new(section_id, "section.manifest")
            .data(json!({"root": root, "count": hashes.len(), "log_index": pos.index, "envelope_hashes": hashes}))
            .by(Who::system())
            .audited_as(
                "section.manifest",
                json!({"count": hashes.len(), "root": root}),
            ),
    )?;
    let accepted: Vec<(String, OrgId)> = manifest
        .bids
        .into_iter()
        .map(|b| (b.envelope_hash, b.bidder))
        .collect();
    crate::service::opening::begin(tx, section_id, &accepted)?;
    Ok(leftovers)
}
