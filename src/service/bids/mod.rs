//! Submission of sealed bids (DESIGN §3): the signed envelope first, then its
//! parts, streamed in resumable uploads, hashed on the fly and stored
//! durably; a bid counts only when complete; revisions supersede, a signed
//! withdrawal withdraws; late attempts are refused and logged; receipts are
//! signed by the platform and bound to the transparency log.
//!
//! Before the deadline nothing here names a bidder or a section in the
//! clear: rows carry blind tags, records are sealed (`crypto::atrest`), log
//! entries are commitments, audit records have no actor. At the deadline
//! [`seal_section`] opens the section's records into the public `bids` table
//! and logs the manifest.
//!
//! | file          | owns                                                          |
//! |---------------|---------------------------------------------------------------|
//! | `mod.rs`      | the sealed record, the submission's view, late attempts       |
//! | `envelope.rs` | accepting a signed envelope, the revision chain               |
//! | `upload.rs`   | resumable part uploads, completion and the receipt            |
//! | `status.rs`   | a bidder's submissions, before and after the deadline         |
//! | `withdraw.rs` | signed withdrawals                                            |
//! | `flush.rs`    | the queue of commitments and its steady flushes (ADR 9)       |
//! | `seal.rs`     | the sealing: the opened record and the manifest               |
//! | `public.rs`   | the manifest and its inclusion proofs, for anyone             |

mod envelope;
mod flush;
mod public;
mod seal;
mod status;
mod upload;
mod withdraw;

pub use envelope::{submit_envelope, Submitted};
pub use flush::{flush_due, flush_now};
pub use public::{manifest, manifest_proof, ManifestProof, ManifestView};
pub use seal::{manifest_root, seal_section, Manifest, ManifestBid};
pub use status::{list_mine, status};
pub use upload::{upload_part, UploadResult};
pub use withdraw::withdraw;

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::sections::SectionParams;
use super::{translog, Services};
use crate::crypto::envelope::{EnvelopeError, SectionKeys, SignedEnvelope, SignedWithdrawal};
use crate::crypto::translog::{Opening, SignedReceipt};
use crate::db::audit::{self, Who};
use crate::db::bids::{self as repo, LateRow, SubmissionRow};
use crate::db::{sections as sections_repo, DbConn};
use crate::domain::ids::{LateId, OrgId, SectionId, UserId};
use crate::domain::section::SectionState;
use crate::domain::states::{BidStatus, LateStage, SubmissionState};
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult, ErrorCode};

/// Hashing state of uploads in progress on this node, so a resumed upload
/// does not re-read what it already hashed. Lost on restart (then the file
/// is re-hashed from disk).
#[derive(Default)]
pub struct UploadHashes(Mutex<HashMap<String, (u64, openssl::sha::Sha256)>>);

impl UploadHashes {
    fn take(&self, key: &str, at: u64) -> Option<openssl::sha::Sha256> {
        let mut m = self.0.lock().expect("upload hashes");
        match m.remove(key) {
            Some((offset, h)) if offset == at => Some(h),
            _ => None,
        }
    }
    fn put(&self, key: String, at: u64, h: openssl::sha::Sha256) {
        self.0.lock().expect("upload hashes").insert(key, (at, h));
    }
}

/// What is kept, sealed, for each submission until the deadline.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    section_id: SectionId,
    bidder: OrgId,
    user_id: UserId,
    request_id: String,
    signed: SignedEnvelope,
    bid_id: String,
    /// Commitments logged for this submission: `(leaf index, opening)`.
    logged: Vec<(u64, Opening)>,
    receipt: Option<SignedReceipt>,
    withdrawal: Option<SignedWithdrawal>,
    withdrawal_receipt: Option<SignedReceipt>,
    /// The promises given at once, before their flush (ADR 9).
    #[serde(default)]
    promise: Option<SignedReceipt>,
    #[serde(default)]
    withdrawal_promise: Option<SignedReceipt>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PartProgress {
    name: String,
    length: u64,
    received: u64,
    stored: bool,
}

/// Where a submission stands: before the deadline its upload's state, after
/// it what the sealing found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BidState {
    Submission(SubmissionState),
    Opened(BidStatus),
}

/// A bidder's submission and its upload's progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmissionView {
    pub envelope_hash: String,
    pub section_id: SectionId,
    pub bid_id: String,
    pub revision: i32,
    pub state: BidState,
    pub parts: Vec<PartView>,
    pub received_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// The promise of the receipt, given when the submission completed
    /// (ADR 9); the receipt follows after the flush it names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promise: Option<SignedReceipt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<SignedReceipt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawal_promise: Option<SignedReceipt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawal_receipt: Option<SignedReceipt>,
}

/// One part's upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartView {
    pub name: String,
    pub length: u64,
    pub received: u64,
    pub complete: bool,
}

fn view(row: &SubmissionRow, rec: &Record, progress: &[PartProgress]) -> SubmissionView {
    SubmissionView {
        envelope_hash: row.envelope_hash.clone(),
        section_id: rec.section_id.clone(),
        bid_id: rec.bid_id.clone(),
        revision: row.revision,
        state: BidState::Submission(row.state),
        parts: progress
            .iter()
            .map(|p| PartView {
                name: p.name.clone(),
                length: p.length,
                received: p.received,
                complete: p.stored,
            })
            .collect(),
        received_at: Timestamp::from_millis(row.received_at),
        completed_at: row.completed_at.map(Timestamp::from_millis),
        promise: rec.promise.clone(),
        receipt: rec.receipt.clone(),
        withdrawal_promise: rec.withdrawal_promise.clone(),
        withdrawal_receipt: rec.withdrawal_receipt.clone(),
    }
}

fn envelope_error(e: EnvelopeError) -> AppError {
    AppError::new(ErrorCode::EnvelopeInvalid, e.to_string())
}

fn deadline_passed() -> AppError {
    AppError::new(
        ErrorCode::DeadlinePassed,
        "the bid deadline has passed; the attempt was refused and recorded",
    )
}

fn not_found() -> AppError {
    AppError::not_found("bid")
}

/// The section facts sealing and checking need, from its parameters.
pub fn section_keys(params: &SectionParams, params_hash: &str) -> AppResult<SectionKeys> {
    let mut custodians = Vec::new();
    for c in &params.custodians {
        let pk = crate::crypto::hex_array(&c.section_key).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("malformed custodian key in params"))
        })?;
        custodians.push((c.position as u32, pk));
    }
    Ok(SectionKeys {
        section_id: params.section_id.clone(),
        params_hash: params_hash.into(),
        threshold: params.threshold as u32,
        custodians,
        summary_fields: params.summary_fields.clone(),
    })
}

/// A section as submission needs it.
struct Section {
    id: SectionId,
    state: SectionState,
    deadline: i64,
    grace: i64,
    params: Option<(SectionParams, String)>,
}

fn load_section(c: &mut DbConn, id: &SectionId) -> AppResult<Option<Section>> {
    let Some(s) = sections_repo::find_section(c, id)? else {
        return Ok(None);
    };
    let params = match (&s.params_json, &s.params_hash) {
        (Some(_), Some(h)) => Some((SectionParams::of(&s)?, h.clone())),
        _ => None,
    };
    Ok(Some(Section {
        id: s.id,
        state: s.state,
        deadline: s.deadline_at.unwrap_or(i64::MIN),
        grace: s.grace_secs * 1000,
        params,
    }))
}

fn open_record(svc: &Services, row: &SubmissionRow) -> AppResult<Record> {
    svc.atrest
        .open_json(row.id.as_str(), &row.record)
        .map_err(AppError::internal)
}

fn progress_of(row: &SubmissionRow) -> AppResult<Vec<PartProgress>> {
    serde_json::from_str(&row.progress).map_err(AppError::internal)
}

/// Who a submission's actions are recorded as before the deadline: the
/// request only (the actor comes out at the sealing).
fn blind(rec: &Record) -> Who {
    Who {
        actor_id: None,
        request_id: Some(rec.request_id.clone()),
    }
}

/// Records a refused late attempt in its own transaction (it must survive
/// the refusal) and in the log, in the clear: after the deadline it is no
/// longer confidential.
async fn record_late(
    svc: &Services,
    section_id: SectionId,
    bidder: OrgId,
    envelope_hash: String,
    stage: LateStage,
    deadline: i64,
) -> AppResult<()> {
    let now = svc.now().millis();
    let s = svc.clone();
    svc.db
        .write(move |c| {
            let leaf = json!({
                "type": "bid.late", "section_id": section_id, "bidder": bidder,
                "envelope_hash": envelope_hash, "stage": stage, "deadline_ms": deadline, "at_ms": now,
            });
            let pos = translog::append(&s, c, &leaf, "bid.late", translog::Scope::Section(&section_id), now)?;
            repo::insert_late(
                c,
                &LateRow {
                    id: LateId::new(),
                    section_id: section_id.clone(),
                    bidder,
                    envelope_hash,
                    stage,
                    at: now,
                    log_idx: pos.index as i64,
                },
            )?;
            audit::record(
                c,
                now,
                &Who::system(),
                "bid.late",
                section_id.as_str(),
                &json!({"stage": stage}),
            )?;
            Ok(())
        })
        .await?;
    svc.metrics.inc(
        "kaibiao_bid_late_attempts_total",
        &[("stage", stage.as_str())],
    );
    Ok(())
}

/// A bid of `org` that the sealing filed away: its section and deadline.
/// A part or completion arriving for it is late, not an unknown bid.
async fn filed_away(
    svc: &Services,
    org: &OrgId,
    envelope_hash: &str,
) -> AppResult<Option<(SectionId, i64)>> {
    let (org, hash) = (org.clone(), envelope_hash.to_string());
    svc.db
        .run(move |c| {
            let Some(bid) = repo::bid(c, &hash)?.filter(|b| b.bidder == org) else {
                return Ok(None);
            };
            let deadline = sections_repo::find_section(c, &bid.section_id)?
                .and_then(|s| s.deadline_at)
                .unwrap_or(0);
            Ok(Some((bid.section_id, deadline)))
        })
        .await
}
