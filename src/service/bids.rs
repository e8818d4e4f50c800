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

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::sections::SectionParams;
use super::{confidential, translog, Actor, Services};
use crate::crypto::envelope::{
    self, Envelope, EnvelopeError, Expectations, SectionKeys, SignedEnvelope, SignedWithdrawal,
};
use crate::crypto::merkle;
use crate::crypto::translog::{self as fmt, Opening, Receipt, ReceiptPart, SignedReceipt};
use crate::db::audit::{self, Who};
use crate::db::bids::{self as repo, BidRow, LateRow, ManifestRow, SubmissionRow};
use crate::db::{
    events, is_unique_violation, keys as keys_repo, sections as sections_repo, DbConn,
};
use crate::domain::identity::{KeyPurpose, Role};
use crate::domain::ids::{LateId, SubmissionId};
use crate::domain::section::SectionState;
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::storage::BlobError;

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
    section_id: String,
    bidder: String,
    user_id: String,
    request_id: String,
    signed: SignedEnvelope,
    bid_id: String,
    /// Commitments logged for this submission: `(leaf index, opening)`.
    logged: Vec<(u64, Opening)>,
    receipt: Option<SignedReceipt>,
    withdrawal: Option<SignedWithdrawal>,
    withdrawal_receipt: Option<SignedReceipt>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PartProgress {
    name: String,
    length: u64,
    received: u64,
    stored: bool,
}

#[derive(Debug, Serialize)]
pub struct SubmissionView {
    pub envelope_hash: String,
    pub section_id: String,
    pub bid_id: String,
    pub revision: i32,
    pub state: String,
    pub parts: Vec<PartView>,
    pub received_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<SignedReceipt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawal_receipt: Option<SignedReceipt>,
}

#[derive(Debug, Serialize)]
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
        state: row.state.clone(),
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
        receipt: rec.receipt.clone(),
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

struct Section {
    id: String,
    state: SectionState,
    deadline: i64,
    grace: i64,
    params: Option<(SectionParams, String)>,
}

fn load_section(c: &mut DbConn, id: &str) -> AppResult<Option<Section>> {
    let Some(s) = sections_repo::find_section(c, id)? else {
        return Ok(None);
    };
    let state = SectionState::from_db(&s.state).map_err(AppError::internal)?;
    let params = match (&s.params_json, &s.params_hash) {
        (Some(j), Some(h)) => Some((
            serde_json::from_str(j).map_err(AppError::internal)?,
            h.clone(),
        )),
        _ => None,
    };
    Ok(Some(Section {
        id: s.id,
        state,
        deadline: s.deadline_at.unwrap_or(i64::MIN),
        grace: s.grace_secs * 1000,
        params,
    }))
}

fn open_record(svc: &Services, row: &SubmissionRow) -> AppResult<Record> {
    svc.atrest
        .open_json(&row.id, &row.record)
        .map_err(AppError::internal)
}

fn progress_of(row: &SubmissionRow) -> AppResult<Vec<PartProgress>> {
    serde_json::from_str(&row.progress).map_err(AppError::internal)
}

/// Records a refused late attempt in its own transaction (it must survive
/// the refusal) and in the log, in the clear: after the deadline it is no
/// longer confidential.
async fn record_late(
    svc: &Services,
    section_id: String,
    bidder: String,
    envelope_hash: String,
    stage: &'static str,
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
            let pos = translog::append(&s, c, &leaf, "bid.late", Some(&section_id), now)?;
            repo::insert_late(
                c,
                &LateRow {
                    id: LateId::new().into_string(),
                    section_id: section_id.clone(),
                    bidder,
                    envelope_hash,
                    stage: stage.into(),
                    at: now,
                    log_idx: pos.index as i64,
                },
            )?;
            audit::record(c, now, &Who::system(), "bid.late", &section_id, &json!({"stage": stage}))?;
            Ok(())
        })
        .await?;
    svc.metrics
        .inc("kaibiao_bid_late_attempts_total", &[("stage", stage)]);
    Ok(())
}

// ---------------------------------------------------------------- envelope

/// Accepts a signed envelope (the first step of a submission).
pub async fn submit_envelope(
    svc: &Services,
    actor: &Actor,
    signed: SignedEnvelope,
) -> AppResult<(bool, SubmissionView)> {
    actor.require(&[Role::Bidder])?;
    let org = actor.org()?.to_string();
    let (env, hash) = envelope::parse_signed(&signed).map_err(envelope_error)?;
    if env.bidder != org {
        return Err(AppError::new(
            ErrorCode::EnvelopeInvalid,
            "the envelope names another bidder",
        ));
    }
    let now = svc.now().millis();
    let section_id = env.section_id.clone();
    let section = svc.db.run(move |c| load_section(c, &section_id)).await?;
    let section = match section {
        Some(s) if s.state.is_public() => s,
        _ => return Err(AppError::not_found("section")),
    };
    if section.state != SectionState::Published || now >= section.deadline {
        record_late(svc, section.id, org, hash, "envelope", section.deadline).await?;
        return Err(deadline_passed());
    }
    let (params, params_hash) = section.params.expect("published sections have parameters");
    let keys = section_keys(&params, &params_hash)?;
    let s = svc.clone();
    let user = actor.user.id.to_string();
    let request_id = actor.request_id.clone();
    let max_docs = svc.config.server.max_bid_bytes;
    let r = svc
        .db
        .write(move |c| {
            let signing = keys_repo::active_key(c, &org, KeyPurpose::BidderSigning.as_str())?
                .ok_or_else(|| {
                    AppError::new(
                        ErrorCode::KeyRejected,
                        "register your organisation's signing key first",
                    )
                })?;
            let encryption = keys_repo::active_key(c, &org, KeyPurpose::BidderEncryption.as_str())?
                .ok_or_else(|| {
                    AppError::new(
                        ErrorCode::KeyRejected,
                        "register your organisation's encryption key first",
                    )
                })?;
            envelope::check(
                &env,
                &Expectations {
                    section: &keys,
                    signer_key: &signing.public_key,
                    encryption_key: &encryption.public_key,
                    max_documents_bytes: max_docs,
                },
            )
            .map_err(envelope_error)?;
            accept_envelope(&s, c, env, hash, signed, user, request_id, now)
        })
        .await?;
    if r.0 {
        svc.metrics.inc("kaibiao_bid_envelopes_total", &[]);
    }
    Ok(r)
}

#[allow(clippy::too_many_arguments)]
fn accept_envelope(
    svc: &Services,
    c: &mut DbConn,
    env: Envelope,
    hash: String,
    signed: SignedEnvelope,
    user: String,
    request_id: String,
    now: i64,
) -> AppResult<(bool, SubmissionView)> {
    // The same envelope again: report where it stands (idempotent).
    if let Some(row) = repo::submission_by_hash(c, &hash)? {
        let rec = open_record(svc, &row)?;
        if rec.bidder != env.bidder {
            return Err(not_found());
        }
        return Ok((false, view(&row, &rec, &progress_of(&row)?)));
    }
    let bidder_tag = confidential::bidder(&svc.atrest, &env.section_id, &env.bidder);
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
            for old in chain.iter().filter(|r| r.state == "receiving") {
                repo::set_state(c, &old.id, "receiving", "abandoned")?;
            }
        }
    }
    let id = SubmissionId::new().into_string();
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
        section_id: env.section_id.clone(),
        bidder: env.bidder.clone(),
        user_id: user,
        request_id,
        bid_id: env.bid_id.clone(),
        signed,
        logged: Vec::new(),
        receipt: None,
        withdrawal: None,
        withdrawal_receipt: None,
    };
    let row = SubmissionRow {
        id: id.clone(),
        section_tag: confidential::section(&svc.atrest, &env.section_id),
        bidder_tag,
        owner_tag: confidential::owner(&svc.atrest, &env.bidder),
        envelope_hash: hash,
        revision: env.revision as i32,
        state: "receiving".into(),
        record: svc.atrest.seal_json(&id, &rec),
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
    let who = Who {
        actor_id: None,
        request_id: Some(rec.request_id.clone()),
    };
    audit::record(c, now, &who, "bid.envelope", &id, &json!({}))?;
    Ok((true, view(&row, &rec, &progress)))
}

// ------------------------------------------------------------------- parts

#[derive(Debug, Serialize)]
pub struct UploadResult {
    #[serde(flatten)]
    pub submission: SubmissionView,
    /// Bytes of this part now stored.
    pub received: u64,
}

fn parts_open(now: i64, received_at: i64, deadline: i64, grace: i64) -> bool {
    now < deadline || (grace > 0 && received_at < deadline && now < deadline + grace)
}

async fn find_own(
    svc: &Services,
    actor: &Actor,
    envelope_hash: String,
) -> AppResult<(SubmissionRow, Record)> {
    actor.require(&[Role::Bidder])?;
    let owner = confidential::owner(&svc.atrest, actor.org()?.as_str());
    let row = svc
        .db
        .run(move |c| Ok(repo::submission_by_hash(c, &envelope_hash)?))
        .await?
        .filter(|r| r.owner_tag == owner)
        .ok_or_else(not_found)?;
    let rec = open_record(svc, &row)?;
    Ok((row, rec))
}

/// [`find_own`] for a part upload: a bid the sealing filed away meanwhile
/// makes the attempt late rather than unknown.
async fn find_own_receiving(
    svc: &Services,
    actor: &Actor,
    envelope_hash: String,
) -> AppResult<(SubmissionRow, Record)> {
    match find_own(svc, actor, envelope_hash.clone()).await {
        Err(e) if e.code == ErrorCode::NotFound => Err(sealed_meanwhile(svc, actor, envelope_hash)
            .await?
            .unwrap_or(e)),
        other => other,
    }
}

/// A part arriving after the deadline for a bid of the caller that the
/// sealing has meanwhile filed away (as incomplete): the attempt is late —
/// recorded and answered as such, not as an unknown bid.
async fn sealed_meanwhile(
    svc: &Services,
    actor: &Actor,
    envelope_hash: String,
) -> AppResult<Option<AppError>> {
    let org = actor.org()?.to_string();
    let hash = envelope_hash.clone();
    let found = svc
        .db
        .run(move |c| {
            let Some(bid) = repo::bid(c, &hash)?.filter(|b| b.bidder == org) else {
                return Ok(None);
            };
            let deadline = sections_repo::find_section(c, &bid.section_id)?
                .and_then(|s| s.deadline_at)
                .unwrap_or(0);
            Ok(Some((bid.section_id, bid.bidder, deadline)))
        })
        .await?;
    match found {
        Some((section, bidder, deadline)) => {
            record_late(svc, section, bidder, envelope_hash, "part", deadline).await?;
            Ok(Some(deadline_passed()))
        }
        None => Ok(None),
    }
}

/// Streams bytes of one part, from `offset`, into durable storage. When the
/// last part completes and checks out, the bid is complete and the receipt
/// is returned.
pub async fn upload_part<S, E>(
    svc: &Services,
    actor: &Actor,
    envelope_hash: String,
    part_name: String,
    offset: u64,
    body: S,
) -> AppResult<UploadResult>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let (row, _) = find_own_receiving(svc, actor, envelope_hash.clone()).await?;
    // The lock is named by the part as the envelope declares it, never by
    // the client's spelling of it.
    let part_name = progress_of(&row)?
        .into_iter()
        .map(|p| p.name)
        .find(|n| *n == part_name)
        .ok_or_else(|| AppError::not_found("part"))?;
    // One writer per part: a resume that arrives while a broken request is
    // still cutting its file back waits its turn instead of interleaving.
    let _lock = svc
        .blobs
        .lock_upload(&format!("{}.{}", row.id, part_name))
        .await
        .map_err(AppError::internal)?
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::UploadInProgress,
                "another upload of this part is still in progress; retry in a moment",
            )
        })?;
    // Read the progress again under the lock: it is the truth now.
    let (row, rec) = find_own_receiving(svc, actor, envelope_hash).await?;
    let progress = progress_of(&row)?;
    let part = progress
        .iter()
        .position(|p| p.name == part_name)
        .ok_or_else(|| AppError::not_found("part"))?;
    let sid = rec.section_id.clone();
    let section = svc
        .db
        .run(move |c| load_section(c, &sid))
        .await?
        .ok_or_else(|| AppError::not_found("section"))?;
    let now = svc.now().millis();
    if !parts_open(now, row.received_at, section.deadline, section.grace) {
        let e = row.envelope_hash.clone();
        record_late(svc, section.id, rec.bidder, e, "part", section.deadline).await?;
        return Err(deadline_passed());
    }
    if row.state != "receiving" {
        return Err(AppError::new(
            ErrorCode::InvalidTransition,
            format!(
                "this submission is {}; nothing more can be uploaded to it",
                row.state
            ),
        ));
    }
    let p = &progress[part];
    if p.stored || offset != p.received {
        return Err(AppError {
            details: vec![crate::domain::problems::Problem {
                field: "offset".into(),
                message: format!("{}", p.received),
            }],
            ..AppError::new(
                ErrorCode::UploadOffset,
                format!("resume this part at byte {} (of {})", p.received, p.length),
            )
        });
    }
    let key = format!("{}.{}", row.id, p.name);
    let path = svc.blobs.upload_path(&key);
    let hasher = match svc.uploads.take(&key, offset) {
        Some(h) => h,
        None if offset == 0 => openssl::sha::Sha256::new(),
        None => svc
            .blobs
            .rehash(path.clone(), offset)
            .await
            .map_err(AppError::internal)?,
    };
    let remaining = p.length - offset;
    let (written, hasher) = svc
        .blobs
        .append_stream(path.clone(), offset, hasher, body, remaining)
        .await
        .map_err(|e| match e {
            BlobError::TooLarge(_) => AppError::new(
                ErrorCode::PayloadTooLarge,
                format!("this part has {remaining} bytes left; the upload was longer"),
            ),
            BlobError::Interrupted => AppError::new(
                ErrorCode::UploadInterrupted,
                "the upload was interrupted; ask for the status and resume from the stored offset",
            ),
            BlobError::Io(io) if io.raw_os_error() == Some(28) => AppError {
                source: Some(io.into()),
                ..AppError::new(ErrorCode::StorageFull, "the platform's storage is full; nothing of this upload was kept; try again later")
            },
            BlobError::Io(io) => AppError::unavailable(io),
        })?;
    let received = offset + written;
    let mut new_progress = progress.clone();
    new_progress[part].received = received;
    let complete_part = received == p.length;
    if complete_part {
        let got = hex::encode(hasher.finish());
        let want = envelope::parse_signed(&rec.signed)
            .map_err(AppError::internal)?
            .0
            .part(&p.name)
            .map(|x| x.sha256.clone())
            .unwrap_or_default();
        if got != want {
            svc.blobs.discard(&path);
            new_progress[part].received = 0;
            save_progress(svc, &row, &progress, &new_progress).await?;
            return Err(AppError::new(
                ErrorCode::PartHashMismatch,
                format!("part {} does not hash to the value in the envelope; it was discarded, upload it again", p.name),
            ));
        }
        svc.blobs
            .adopt(path, got)
            .await
            .map_err(|e| AppError::unavailable(anyhow::anyhow!("{e}")))?;
        new_progress[part].stored = true;
    } else {
        svc.uploads.put(key, received, hasher);
    }
    save_progress(svc, &row, &progress, &new_progress).await?;
    if new_progress.iter().all(|p| p.stored) {
        let done = complete(svc, row.id.clone(), section.deadline, section.grace).await?;
        return Ok(UploadResult {
            received,
            submission: done,
        });
    }
    let mut row = row;
    row.progress = serde_json::to_string(&new_progress).expect("progress");
    Ok(UploadResult {
        received,
        submission: view(&row, &rec, &new_progress),
    })
}

async fn save_progress(
    svc: &Services,
    row: &SubmissionRow,
    old: &[PartProgress],
    new: &[PartProgress],
) -> AppResult<()> {
    let (id, old, new) = (
        row.id.clone(),
        serde_json::to_string(old).expect("progress"),
        serde_json::to_string(new).expect("progress"),
    );
    let n = svc
        .db
        .write(move |c| Ok(repo::set_progress(c, &id, &old, &new)?))
        .await?;
    if n != 1 {
        return Err(AppError::new(
            ErrorCode::UploadOffset,
            "this part was changed by another upload at the same time; ask for the status and resume",
        ));
    }
    Ok(())
}

/// Completes a submission whose parts are all stored: supersedes the
/// previous complete revision, logs the commitment, signs the receipt.
async fn complete(
    svc: &Services,
    id: String,
    deadline: i64,
    grace: i64,
) -> AppResult<SubmissionView> {
    let now = svc.now().millis();
    let s = svc.clone();
    let v = svc
        .db
        .write(move |c| {
            let row = crate::db::bids::submission_by_id(c, &id)?.ok_or_else(not_found)?;
            let mut rec = open_record(&s, &row)?;
            if row.state != "receiving" {
                return Ok(view(&row, &rec, &progress_of(&row)?));
            }
            if !parts_open(now, row.received_at, deadline, grace) {
                return Err(deadline_passed());
            }
            let (env, hash) = envelope::parse_signed(&rec.signed).map_err(AppError::internal)?;
            let mut superseded = None;
            for old in repo::chain(c, &row.bidder_tag)?
                .iter()
                .filter(|r| r.state == "complete")
            {
                repo::set_state(c, &old.id, "complete", "superseded")?;
                superseded = Some(old.envelope_hash.clone());
            }
            let event = json!({
                "type": "bid.completed", "section_id": env.section_id, "bidder": env.bidder,
                "bid_id": env.bid_id, "revision": env.revision, "envelope_hash": hash,
                "supersedes": superseded, "received_at_ms": row.received_at, "completed_at_ms": now,
            });
            let opening = Opening {
                salt: hex::encode(crate::crypto::random_bytes::<32>()),
                event,
            };
            let leaf = fmt::commitment_leaf(&opening.commitment().expect("own salt"), now);
            let pos = translog::append(&s, c, &leaf, "commitment", None, now)?;
            let receipt = SignedReceipt::sign(
                Receipt {
                    format: fmt::RECEIPT_FORMAT.into(),
                    kind: "submission".into(),
                    section_id: env.section_id.clone(),
                    bidder: env.bidder.clone(),
                    bid_id: env.bid_id.clone(),
                    revision: env.revision,
                    envelope_hash: hash,
                    parts: env
                        .parts
                        .iter()
                        .map(|p| ReceiptPart {
                            name: p.name.clone(),
                            length: p.length,
                            sha256: p.sha256.clone(),
                        })
                        .collect(),
                    deadline_ms: deadline,
                    grace_ms: grace,
                    envelope_received_at_ms: row.received_at,
                    completed_at_ms: now,
                    opening: opening.clone(),
                    log: pos.clone(),
                    platform_key: s.platform_public_hex(),
                },
                &s.platform_key,
            );
            rec.logged.push((pos.index, opening));
            rec.receipt = Some(receipt);
            if repo::complete(c, &row.id, now, &s.atrest.seal_json(&row.id, &rec))? != 1 {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    "the submission changed meanwhile",
                ));
            }
            let who = Who {
                actor_id: None,
                request_id: Some(rec.request_id.clone()),
            };
            audit::record(c, now, &who, "bid.complete", &row.id, &json!({}))?;
            let row = crate::db::bids::submission_by_id(c, &row.id)?.ok_or_else(not_found)?;
            Ok(view(&row, &rec, &progress_of(&row)?))
        })
        .await?;
    svc.metrics.inc("kaibiao_bid_completions_total", &[]);
    Ok(v)
}

// ------------------------------------------------------------ status, list

pub async fn status(
    svc: &Services,
    actor: &Actor,
    envelope_hash: String,
) -> AppResult<SubmissionView> {
    actor.require(&[Role::Bidder])?;
    // After the deadline, the bid lives in the opened record.
    let org = actor.org()?.to_string();
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

fn opened_view(b: &BidRow) -> AppResult<SubmissionView> {
    let signed: SignedEnvelope =
        serde_json::from_str(&b.signed_envelope).map_err(AppError::internal)?;
    let (env, _) = envelope::parse_signed(&signed).map_err(AppError::internal)?;
    let parse = |s: &Option<String>| -> AppResult<Option<SignedReceipt>> {
        s.as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(AppError::internal)
    };
    let withdrawal: Option<Value> = b
        .withdrawal
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(AppError::internal)?;
    let withdrawal_receipt = match withdrawal.as_ref().and_then(|w| w.get("receipt")) {
        Some(r) => Some(serde_json::from_value(r.clone()).map_err(AppError::internal)?),
        None => None,
    };
    Ok(SubmissionView {
        envelope_hash: b.envelope_hash.clone(),
        section_id: b.section_id.clone(),
        bid_id: b.bid_id.clone(),
        revision: b.revision,
        state: b.status.clone(),
        parts: env
            .parts
            .iter()
            .map(|p| PartView {
                name: p.name.clone(),
                length: p.length,
                received: if b.completed_at.is_some() {
                    p.length
                } else {
                    0
                },
                complete: b.completed_at.is_some(),
            })
            .collect(),
        received_at: Timestamp::from_millis(b.received_at),
        completed_at: b.completed_at.map(Timestamp::from_millis),
        receipt: parse(&b.receipt)?,
        withdrawal_receipt,
    })
}

/// The caller's organisation's submissions: before the deadline from the
/// sealed records (only it can find them), after it from the opened record.
pub async fn list_mine(svc: &Services, actor: &Actor) -> AppResult<Vec<SubmissionView>> {
    actor.require(&[Role::Bidder])?;
    let org = actor.org()?.to_string();
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

// -------------------------------------------------------------- withdrawal

pub async fn withdraw(
    svc: &Services,
    actor: &Actor,
    envelope_hash: String,
    statement: SignedWithdrawal,
) -> AppResult<SubmissionView> {
    let (row, rec) = find_own(svc, actor, envelope_hash.clone()).await?;
    let w = &statement.withdrawal;
    if w.version != envelope::VERSION
        || w.section_id != rec.section_id
        || w.bid_id != rec.bid_id
        || w.bidder != rec.bidder
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
            "withdrawal",
            section.deadline,
        )
        .await?;
        return Err(deadline_passed());
    }
    let s = svc.clone();
    let org = rec.bidder.clone();
    svc.db
        .write(move |c| {
            let signing = keys_repo::active_key(c, &org, KeyPurpose::BidderSigning.as_str())?
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
            let row = crate::db::bids::submission_by_id(c, &row.id)?.ok_or_else(not_found)?;
            if row.state != "complete" {
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
                .filter(|r| r.state == "receiving")
            {
                repo::set_state(c, &other.id, "receiving", "abandoned")?;
            }
            if repo::set_state(c, &row.id, "complete", "withdrawn")? != 1 {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    "the submission changed meanwhile",
                ));
            }
            let event = json!({
                "type": "bid.withdrawn", "section_id": rec.section_id, "bidder": rec.bidder,
                "bid_id": rec.bid_id, "revision": row.revision, "envelope_hash": row.envelope_hash,
                "statement_signature": statement.signature, "withdrawn_at_ms": now,
            });
            let opening = Opening {
                salt: hex::encode(crate::crypto::random_bytes::<32>()),
                event,
            };
            let leaf = fmt::commitment_leaf(&opening.commitment().expect("own salt"), now);
            let pos = translog::append(&s, c, &leaf, "commitment", None, now)?;
            let first = rec.receipt.as_ref().map(|r| r.receipt.clone());
            let receipt = SignedReceipt::sign(
                Receipt {
                    format: fmt::RECEIPT_FORMAT.into(),
                    kind: "withdrawal".into(),
                    section_id: rec.section_id.clone(),
                    bidder: rec.bidder.clone(),
                    bid_id: rec.bid_id.clone(),
                    revision: row.revision as u32,
                    envelope_hash: row.envelope_hash.clone(),
                    parts: first.map(|r| r.parts).unwrap_or_default(),
                    deadline_ms: section.deadline,
                    grace_ms: section.grace,
                    envelope_received_at_ms: row.received_at,
                    completed_at_ms: now,
                    opening: opening.clone(),
                    log: pos.clone(),
                    platform_key: s.platform_public_hex(),
                },
                &s.platform_key,
            );
            rec.logged.push((pos.index, opening));
            rec.withdrawal = Some(statement);
            rec.withdrawal_receipt = Some(receipt);
            repo::set_record(c, &row.id, &s.atrest.seal_json(&row.id, &rec))?;
            let who = Who {
                actor_id: None,
                request_id: Some(rec.request_id.clone()),
            };
            audit::record(c, now, &who, "bid.withdraw", &row.id, &json!({}))?;
            let row = crate::db::bids::submission_by_id(c, &row.id)?.ok_or_else(not_found)?;
            Ok(view(&row, &rec, &progress_of(&row)?))
        })
        .await
}

// ----------------------------------------------------------------- sealing

/// The manifest of a sealed section: every accepted envelope hash and the
/// Merkle root over them, as logged.
pub fn manifest_root(hashes: &[String]) -> String {
    let leaves: Vec<merkle::Hash> = hashes
        .iter()
        .map(|h| merkle::leaf_hash(&hex::decode(h).unwrap_or_default()))
        .collect();
    hex::encode(merkle::root(&leaves))
}

/// Opens a section's submissions into the public record and logs its
/// manifest. Runs in the chronograph's transaction at the deadline (plus
/// the grace period, if any). Returns the files of uploads that will never
/// complete, for the caller to remove after commit.
pub fn seal_section(
    svc: &Services,
    c: &mut DbConn,
    section_id: &str,
    now: i64,
) -> AppResult<Vec<std::path::PathBuf>> {
    let s = sections_repo::find_section(c, section_id)?
        .ok_or_else(|| AppError::not_found("section"))?;
    let tag = confidential::section(&svc.atrest, section_id);
    let rows = repo::of_section(c, &tag)?;
    let mut accepted: Vec<(String, Value)> = Vec::new();
    let mut leftovers = Vec::new();
    for row in &rows {
        let rec = open_record(svc, row)?;
        let status = match row.state.as_str() {
            "complete" => "accepted",
            "superseded" => "superseded",
            "withdrawn" => "withdrawn",
            _ => "incomplete",
        };
        if status == "incomplete" {
            for p in progress_of(row)? {
                leftovers.push(svc.blobs.upload_path(&format!("{}.{}", row.id, p.name)));
            }
        }
        if status == "accepted" {
            accepted.push((
                row.envelope_hash.clone(),
                json!({"envelope_hash": row.envelope_hash, "bidder": rec.bidder, "bid_id": rec.bid_id, "revision": row.revision}),
            ));
        }
        let withdrawal = rec
            .withdrawal
            .as_ref()
            .map(|w| json!({"statement": w, "receipt": rec.withdrawal_receipt}).to_string());
        repo::insert_bid(
            c,
            &BidRow {
                envelope_hash: row.envelope_hash.clone(),
                section_id: section_id.into(),
                bidder: rec.bidder.clone(),
                bid_id: rec.bid_id.clone(),
                revision: row.revision,
                status: status.into(),
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
                c,
                *idx as i64,
                section_id,
                &serde_json::to_string(opening).expect("opening"),
            )?;
        }
        // The audit trail names the actors now that it may.
        let who = Who {
            actor_id: Some(rec.user_id.clone()),
            request_id: Some(rec.request_id.clone()),
        };
        audit::record(
            c,
            now,
            &who,
            "bid.opened_record",
            section_id,
            &json!({"envelope_hash": row.envelope_hash, "status": status}),
        )?;
    }
    accepted.sort_by(|a, b| a.0.cmp(&b.0));
    let hashes: Vec<String> = accepted.iter().map(|(h, _)| h.clone()).collect();
    let root = manifest_root(&hashes);
    let manifest = json!({
        "type": "section.manifest",
        "section_id": section_id,
        "params_hash": s.params_hash,
        "deadline_ms": s.deadline_at,
        "grace_ms": s.grace_secs * 1000,
        "sealed_at_ms": now,
        "bids": accepted.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        "count": hashes.len(),
        "root": root,
    });
    let pos = translog::append(svc, c, &manifest, "section.manifest", Some(section_id), now)?;
    repo::insert_manifest(
        c,
        &ManifestRow {
            section_id: section_id.into(),
            manifest: manifest.to_string(),
            root: root.clone(),
            bid_count: hashes.len() as i32,
            log_idx: pos.index as i64,
            sealed_at: now,
        },
    )?;
    repo::delete_section_submissions(c, &tag)?;
    events::append(
        c,
        section_id,
        "section.manifest",
        &json!({"root": root, "count": hashes.len(), "log_index": pos.index, "envelope_hashes": hashes}),
        None,
        now,
    )?;
    audit::record(
        c,
        now,
        &Who::system(),
        "section.manifest",
        section_id,
        &json!({"count": hashes.len(), "root": root}),
    )?;
    let accepted: Vec<(String, String)> = accepted
        .iter()
        .map(|(h, v)| {
            (
                h.clone(),
                v["bidder"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    super::opening::begin(svc, c, section_id, &accepted, now)?;
    Ok(leftovers)
}

// ------------------------------------------------------------- public side

#[derive(Debug, Serialize)]
pub struct ManifestView {
    pub manifest: Value,
    pub log: crate::crypto::translog::LogPosition,
}

/// The manifest of a sealed section and its position in the log.
pub async fn manifest(svc: &Services, section_id: String) -> AppResult<ManifestView> {
    svc.db
        .run(move |c| {
            let m =
                repo::manifest(c, &section_id)?.ok_or_else(|| AppError::not_found("manifest"))?;
            let cp = crate::db::translog::latest_checkpoint(c)?
                .ok_or_else(|| AppError::not_found("checkpoint"))?;
            let proof = translog::inclusion_in(c, m.log_idx as u64, cp.size as u64)?;
            let manifest: Value = serde_json::from_str(&m.manifest).map_err(AppError::internal)?;
            Ok(ManifestView {
                log: crate::crypto::translog::LogPosition {
                    index: m.log_idx as u64,
                    leaf: manifest.clone(),
                    inclusion_proof: proof,
                    checkpoint: crate::crypto::translog::SignedCheckpoint {
                        checkpoint: crate::crypto::translog::Checkpoint {
                            log: fmt::LOG_NAME.into(),
                            size: cp.size as u64,
                            root: cp.root,
                            at_ms: cp.at,
                        },
                        signature: cp.signature,
                    },
                },
                manifest,
            })
        })
        .await
}

#[derive(Debug, Serialize)]
pub struct ManifestProof {
    pub envelope_hash: String,
    pub index: u64,
    pub size: u64,
    pub root: String,
    pub proof: Vec<String>,
}

/// The inclusion proof of one envelope hash in a section's manifest tree.
pub async fn manifest_proof(
    svc: &Services,
    section_id: String,
    envelope_hash: String,
) -> AppResult<ManifestProof> {
    svc.db
        .run(move |c| {
            let m =
                repo::manifest(c, &section_id)?.ok_or_else(|| AppError::not_found("manifest"))?;
            let manifest: Value = serde_json::from_str(&m.manifest).map_err(AppError::internal)?;
            let hashes: Vec<String> = manifest["bids"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|b| b["envelope_hash"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let index = hashes
                .iter()
                .position(|h| *h == envelope_hash)
                .ok_or_else(|| AppError::not_found("envelope in the manifest"))?;
            let leaves: Vec<merkle::Hash> = hashes
                .iter()
                .map(|h| merkle::leaf_hash(&hex::decode(h).unwrap_or_default()))
                .collect();
            let proof = merkle::inclusion_proof(
                &mut merkle::InMemory(&leaves),
                index as u64,
                leaves.len() as u64,
            )
            .map_err(AppError::internal)?;
            Ok(ManifestProof {
                envelope_hash,
                index: index as u64,
                size: leaves.len() as u64,
                root: m.root,
                proof: proof.iter().map(hex::encode).collect(),
            })
        })
        .await
}
