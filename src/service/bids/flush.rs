//! Steady flushes (ADR 9): a completed submission or a withdrawal does not
//! append its commitment at its own time — that would let anyone count a
//! section's bids in the log before the deadline (招标投标法 §22). It queues
//! the commitment (sealed at rest, under a random id) and gets a signed
//! promise at once. At fixed times — multiples of `translog.flush_seconds`
//! since the epoch, while any section takes bids — a flush appends the queue
//! and cover leaves, `B·k` in all, in random places, every leaf with the
//! flush's time, under one checkpoint; then the promises are fulfilled with
//! receipts. The sealing flushes first, in its own transaction, so that the
//! manifest follows every accepted commitment.

use serde::{Deserialize, Serialize};

use super::{open_record, Record};
use crate::crypto::translog::{self as fmt, SignedReceipt};
use crate::db::bids as repo;
use crate::db::translog as log_repo;
use crate::db::{sections as sections_repo, DbConn};
use crate::domain::ids::{SectionId, SubmissionId};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::translog::{self, Scope};
use crate::service::Services;

/// What the queue holds for one commitment, sealed at rest.
#[derive(Debug, Serialize, Deserialize)]
struct Queued {
    submission_id: SubmissionId,
    promise: SignedReceipt,
}

/// The time of the first scheduled flush after `now`.
pub(super) fn next_flush(svc: &Services, now: i64) -> i64 {
    let grid = svc.config.translog.flush_seconds as i64 * 1000;
    (now.div_euclid(grid) + 1) * grid
}

/// Queues `promise`'s commitment for the next flush, in the caller's
/// transaction.
pub(super) fn enqueue(
    svc: &Services,
    c: &mut DbConn,
    submission_id: &SubmissionId,
    promise: &SignedReceipt,
) -> AppResult<()> {
    let id = hex::encode(crate::crypto::random_bytes::<16>());
    let item = Queued {
        submission_id: submission_id.clone(),
        promise: promise.clone(),
    };
    log_repo::enqueue(c, &id, &svc.atrest.seal_json(&id, &item))?;
    Ok(())
}

/// Appends everything queued, padded with cover leaves to a multiple of
/// `translog.flush_batch` (at least one batch), in the caller's transaction
/// at time `now`, and fulfils the promises. Returns how many were queued.
pub(super) fn flush(svc: &Services, c: &mut DbConn, now: i64) -> AppResult<usize> {
    let mut items = Vec::new();
    for (id, sealed) in log_repo::queued(c)? {
        let item: Queued = svc
            .atrest
            .open_json(&id, &sealed)
            .map_err(AppError::internal)?;
        items.push((id, item));
    }
    // Causal order among the real leaves: a revision after the one it
    // supersedes, a withdrawal after the completion it withdraws.
    items.sort_by_key(|(_, q)| {
        let r = &q.promise.receipt;
        (r.completed_at_ms, r.revision, r.kind == "withdrawal")
    });
    let batch = svc.config.translog.flush_batch as usize;
    let total = batch * items.len().div_ceil(batch).max(1);
    let mut real = rand::seq::index::sample(&mut rand::rngs::OsRng, total, items.len()).into_vec();
    real.sort_unstable();
    let mut real = real.into_iter().peekable();
    let mut items = items.into_iter();
    let mut appended = Vec::new();
    for slot in 0..total {
        if real.next_if_eq(&slot).is_some() {
            let (id, q) = items.next().expect("one item per real slot");
            let r = &q.promise.receipt;
            let commitment = r.opening.commitment().ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("queued promise with a malformed opening"))
            })?;
            let section = SectionId::from_db(r.section_id.clone());
            let leaf = fmt::commitment_leaf(&commitment, now);
            let (idx, leaf) = translog::put_leaf(
                svc,
                c,
                &leaf,
                "commitment",
                Some(Scope::Sealed(&section)),
                now,
            )?;
            appended.push((idx, leaf, id, q));
        } else {
            // A cover leaf: a commitment to nothing anybody keeps.
            let cover = hex::encode(crate::crypto::random_bytes::<32>());
            translog::put_leaf(
                svc,
                c,
                &fmt::commitment_leaf(&cover, now),
                "commitment",
                None,
                now,
            )?;
        }
    }
    let checkpoint = translog::sign_checkpoint(svc, c, now)?;
    let n = appended.len();
    for (idx, leaf, id, q) in appended {
        let pos = translog::position(c, idx, leaf, checkpoint.clone())?;
        settle(svc, c, &q, idx, pos)?;
        if log_repo::dequeue(c, &id)? != 1 {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "the queue was flushed by another node meanwhile",
            ));
        }
    }
    Ok(n)
}

/// Files the receipt that fulfils `q`'s promise, and the commitment's log
/// index, in the submission's sealed record.
fn settle(
    svc: &Services,
    c: &mut DbConn,
    q: &Queued,
    idx: u64,
    pos: fmt::LogPosition,
) -> AppResult<()> {
    let row = repo::submission_by_id(c, &q.submission_id)?.ok_or_else(|| {
        AppError::internal(anyhow::anyhow!("a queued commitment's submission is gone"))
    })?;
    let mut rec: Record = open_record(svc, &row)?;
    let receipt = q.promise.fulfil(pos, &svc.platform_key);
    rec.logged.push((idx, q.promise.receipt.opening.clone()));
    if q.promise.receipt.kind == "withdrawal" {
        rec.withdrawal_receipt = Some(receipt);
    } else {
        rec.receipt = Some(receipt);
    }
    repo::set_record(c, &row.id, &svc.atrest.seal_json(row.id.as_str(), &rec))?;
    Ok(())
}

/// Flushes the queue now, whatever the schedule, in the caller's
/// transaction (the sealing does, before its manifest).
pub(crate) fn flush_in(svc: &Services, c: &mut DbConn, now: i64) -> AppResult<usize> {
    log_repo::claim_flush(c, None, now)?;
    flush(svc, c, now)
}

/// Flushes the queue now, in its own transaction: what the scheduled flush
/// does, for an operator's command and for tests that hold the clock.
pub async fn flush_now(svc: &Services) -> AppResult<usize> {
    let s = svc.clone();
    let now = svc.now().millis();
    svc.db.write(move |c| flush_in(&s, c, now)).await
}

/// The chronograph's part: performs the scheduled flush if one is due (once,
/// across nodes, however many were missed) and says when the next is due —
/// none while no section takes bids and nothing is queued.
pub async fn flush_due(svc: &Services) -> AppResult<Option<i64>> {
    let s = svc.clone();
    let now = svc.now().millis();
    let performed = svc
        .db
        .write(move |c| {
            let queued = log_repo::any_queued(c)?;
            if !queued && !sections_repo::any_taking_bids(c, now)? {
                return Ok(None);
            }
            let last = log_repo::flushed_at(c)?;
            if now < next_flush(&s, last) || !log_repo::claim_flush(c, Some(last), now)? {
                return Ok(Some(false));
            }
            flush(&s, c, now)?;
            Ok(Some(true))
        })
        .await?;
    if performed == Some(true) {
        svc.metrics.inc("kaibiao_log_flushes_total", &[]);
    }
    Ok(performed.map(|_| next_flush(svc, now)))
}
