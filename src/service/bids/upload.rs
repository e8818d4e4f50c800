//! Part uploads: resumable from the stored offset, one writer per part,
//! streamed to disk and hashed in one pass, acknowledged only once fsynced
//! and recorded; when the last part checks out, the bid is complete and the
//! receipt is signed.
//!
//! The deadline is exact to the millisecond, and the sealing may land in
//! the middle of an upload: a part that loses that race — whether it finds
//! the bid filed away before it starts, finds its file removed by the
//! sealing when it ends, or can no longer save its progress because the
//! sealing took the submission meanwhile — is a late attempt, refused as
//! `deadline_passed` and recorded like any other.

use bytes::Bytes;
use futures_util::Stream;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::flush;
use super::{
    deadline_passed, filed_away, load_section, not_found, open_record, progress_of, record_late,
    view, PartProgress, Record, SubmissionView,
};
use crate::crypto::envelope;
use crate::crypto::translog::{self as fmt, Receipt, ReceiptPart, SignedReceipt};
use crate::db::bids::{self as repo, SubmissionRow};
use crate::domain::identity::Role;
use crate::domain::ids::SubmissionId;
use crate::domain::states::{LateStage, SubmissionState};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::{confidential, transition, translog, Actor, Services};
use crate::storage::BlobError;

/// The answer to a part upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadResult {
    #[serde(flatten)]
    pub submission: SubmissionView,
    /// Bytes of this part now stored.
    pub received: u64,
}

fn parts_open(now: i64, received_at: i64, deadline: i64, grace: i64) -> bool {
    now < deadline || (grace > 0 && received_at < deadline && now < deadline + grace)
}

pub(super) async fn find_own(
    svc: &Services,
    actor: &Actor,
    envelope_hash: String,
) -> AppResult<(SubmissionRow, Record)> {
    actor.require(&[Role::Bidder])?;
    let owner = confidential::owner(&svc.atrest, actor.org()?);
    let row = svc
        .db
        .run(move |c| Ok(repo::submission_by_hash(c, &envelope_hash)?))
        .await?
        .filter(|r| r.owner_tag == owner)
        .ok_or_else(not_found)?;
    let rec = open_record(svc, &row)?;
    Ok((row, rec))
}

/// When the sealing has filed the caller's bid away, the attempt is late:
/// recorded, and `deadline_passed` is the answer. Otherwise `fallback`.
async fn late_if_sealed(
    svc: &Services,
    actor: &Actor,
    envelope_hash: &str,
    fallback: AppError,
) -> AppResult<AppError> {
    let org = actor.org()?.clone();
    match filed_away(svc, &org, envelope_hash).await? {
        Some((section, deadline)) => {
            record_late(
                svc,
                section,
                org,
                envelope_hash.to_string(),
                LateStage::Part,
                deadline,
            )
            .await?;
            Ok(deadline_passed())
        }
        None => Ok(fallback),
    }
}

/// [`find_own`] for a part upload: a bid the sealing filed away meanwhile
/// makes the attempt late rather than unknown.
async fn find_own_receiving(
    svc: &Services,
    actor: &Actor,
    envelope_hash: String,
) -> AppResult<(SubmissionRow, Record)> {
    match find_own(svc, actor, envelope_hash.clone()).await {
        Err(e) if e.code == ErrorCode::NotFound => {
            Err(late_if_sealed(svc, actor, &envelope_hash, e).await?)
        }
        other => other,
    }
}

fn storage_error(e: BlobError, remaining: u64) -> AppError {
    match e {
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
            ..AppError::new(
                ErrorCode::StorageFull,
                "the platform's storage is full; nothing of this upload was kept; try again later",
            )
        },
        BlobError::Io(io) => AppError::unavailable(io),
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
    let (row, rec) = find_own_receiving(svc, actor, envelope_hash.clone()).await?;
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
        record_late(
            svc,
            section.id,
            rec.bidder,
            e,
            LateStage::Part,
            section.deadline,
        )
        .await?;
        return Err(deadline_passed());
    }
    if row.state != SubmissionState::Receiving {
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
        .map_err(|e| storage_error(e, remaining))?;
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
            save_progress(svc, actor, &row, &progress, &new_progress).await?;
            return Err(AppError::new(
                ErrorCode::PartHashMismatch,
                format!("part {} does not hash to the value in the envelope; it was discarded, upload it again", p.name),
            ));
        }
        if let Err(e) = svc.blobs.adopt(path, got).await {
            // The sealing removes the files of the uploads it filed away
            // unfinished: an upload it overtook finds its file gone.
            let e = AppError::unavailable(anyhow::anyhow!("{e}"));
            return Err(late_if_sealed(svc, actor, &row.envelope_hash, e).await?);
        }
        new_progress[part].stored = true;
    } else {
        svc.uploads.put(key, received, hasher);
    }
    save_progress(svc, actor, &row, &progress, &new_progress).await?;
    if new_progress.iter().all(|p| p.stored) {
        let done = complete(svc, actor, &row, section.deadline, section.grace).await?;
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

/// Records the part's new progress (compare-and-set from what this upload
/// read). If the sealing took the submission meanwhile, the upload is late.
async fn save_progress(
    svc: &Services,
    actor: &Actor,
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
        let moved = AppError::new(
            ErrorCode::UploadOffset,
            "this part was changed by another upload at the same time; ask for the status and resume",
        );
        return Err(late_if_sealed(svc, actor, &row.envelope_hash, moved).await?);
    }
    Ok(())
}

/// Completes a submission whose parts are all stored: supersedes the
/// previous complete revision, logs the commitment, signs the receipt.
async fn complete(
    svc: &Services,
    actor: &Actor,
    row: &SubmissionRow,
    deadline: i64,
    grace: i64,
) -> AppResult<SubmissionView> {
    let now = svc.now().millis();
    let s = svc.clone();
    let id: SubmissionId = row.id.clone();
    let r = svc
        .db
        .write(move |c| {
            let Some(row) = repo::submission_by_id(c, &id)? else {
                return Ok(None);
            };
            let mut rec = open_record(&s, &row)?;
            if row.state != SubmissionState::Receiving {
                return Ok(Some(view(&row, &rec, &progress_of(&row)?)));
            }
            if !parts_open(now, row.received_at, deadline, grace) {
                return Err(deadline_passed());
            }
            let (env, hash) = envelope::parse_signed(&rec.signed).map_err(AppError::internal)?;
            let mut superseded = None;
            for old in repo::chain(c, &row.bidder_tag)?
                .iter()
                .filter(|r| r.state == SubmissionState::Complete)
            {
                transition::submission(c, &old.id, old.state, SubmissionState::Superseded)?;
                superseded = Some(old.envelope_hash.clone());
            }
            let event = json!({
                "type": "bid.completed", "section_id": env.section_id, "bidder": env.bidder,
                "bid_id": env.bid_id, "revision": env.revision, "envelope_hash": hash,
                "supersedes": superseded, "received_at_ms": row.received_at, "completed_at_ms": now,
            });
            let promise = SignedReceipt::sign(
                Receipt {
                    format: fmt::PROMISE_FORMAT.into(),
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
                    opening: translog::opening(event),
                    flush_at_ms: flush::next_flush(&s, now),
                    log: None,
                    platform_key: s.platform_public_hex(),
                },
                &s.platform_key,
            );
            flush::enqueue(&s, c, &row.id, &promise)?;
            rec.promise = Some(promise);
            let sealed = s.atrest.seal_json(row.id.as_str(), &rec);
            if repo::complete(c, &row.id, now, &sealed)? != 1 {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    "the submission changed meanwhile",
                ));
            }
            let row = repo::submission_by_id(c, &row.id)?.ok_or_else(not_found)?;
            Ok(Some(view(&row, &rec, &progress_of(&row)?)))
        })
        .await?;
    match r {
        Some(v) => {
            svc.metrics.inc("kaibiao_bid_completions_total", &[]);
            Ok(v)
        }
        // The sealing filed the submission away between the last part and
        // its completion.
        None => Err(late_if_sealed(svc, actor, &row.envelope_hash, not_found()).await?),
    }
}
