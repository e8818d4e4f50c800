//! The announcement (唱标): when no bid is pending any more, every result is
//! announced at once in the opening record (`kaibiao-opening-record/1`),
//! the custodians' released keys are published with it (anyone can now
//! check every BMK), and the confirmations open; or the section fails (流标)
//! when fewer than `min_bidders` bids decrypted.

use serde_json::json;

use super::load;
use super::org_name;
use super::start::fail_notices;
use crate::crypto::envelope::SummaryFields;
use crate::crypto::opening::{self as fmt, OpeningRecord, RecordBid, RecordRelease};
use crate::db::bids as bids_repo;
use crate::db::opening as repo;
use crate::domain::ids::SectionId;
use crate::domain::section::SectionState;
use crate::domain::states::{OpeningStatus, RecordOutcome};
use crate::error::{AppError, AppResult};
use crate::service::action::{Change, Tx};
use crate::service::transition;

/// Announces when every bid is settled (a no-op otherwise).
pub(super) fn maybe_finish(tx: &mut Tx<'_>, section_id: &SectionId) -> AppResult<()> {
    let now = tx.now;
    let x = load(tx.c, section_id)?;
    if x.state() != SectionState::Decrypting {
        return Ok(());
    }
    let rows = repo::bid_openings_of(tx.c, section_id)?;
    if rows.iter().any(|b| b.status == OpeningStatus::Pending) {
        return Ok(());
    }
    let mut o = repo::get_or_create(tx.c, section_id)?;
    let decrypted = rows
        .iter()
        .filter(|b| b.status == OpeningStatus::Decrypted)
        .count() as i32;
    let failed = decrypted < x.params.min_bidders;
    let manifest = bids_repo::manifest(tx.c, section_id)?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("no manifest")))?;
    let mut bids = Vec::new();
    for b in &rows {
        let bid = bids_repo::bid(tx.c, &b.envelope_hash)?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("bid row missing")))?;
        let summary: Option<SummaryFields> = match (&b.sealed_result, failed) {
            (Some(sealed), false) => Some(
                tx.svc
                    .atrest
                    .open_json(&format!("result/{}", b.envelope_hash), sealed)
                    .map_err(AppError::internal)?,
            ),
            _ => None,
        };
        if let Some(s) = &summary {
            let mut row = b.clone();
            row.summary = Some(serde_json::to_string(s).expect("summary"));
            repo::update_bid_opening(tx.c, &row)?;
        }
        bids.push(RecordBid {
            bidder_name: org_name(tx.c, &bid.bidder)?,
            envelope_hash: b.envelope_hash.clone(),
            bidder: bid.bidder.to_string(),
            bid_id: bid.bid_id,
            revision: bid.revision,
            status: b.status,
            fault: b.fault,
            reason: b.reason.clone(),
            via: b.via,
            summary,
            settled_at_ms: b.decrypted_at,
        });
    }
    // The keys come out with the prices: anyone can now check every BMK.
    let mut key_releases = Vec::new();
    for r in repo::releases_of(tx.c, section_id)? {
        let bytes = tx
            .svc
            .atrest
            .open(&format!("{section_id}/{}", r.custodian), &r.sealed_secret)
            .map_err(AppError::internal)?;
        let text = String::from_utf8(bytes.to_vec()).map_err(AppError::internal)?;
        repo::publish_release(tx.c, section_id, &r.custodian, &text)?;
        key_releases.push(RecordRelease {
            position: r.position,
            custodian: r.custodian.to_string(),
            released_at_ms: r.released_at,
        });
    }
    let record = OpeningRecord {
        format: fmt::RECORD_FORMAT.into(),
        section_id: section_id.to_string(),
        section_code: x.s.code.clone(),
        section_name: x.s.name.clone(),
        project_name: x.p.name.clone(),
        params_hash: x.s.params_hash.clone(),
        deadline_ms: x.s.deadline_at,
        manifest_root: manifest.root,
        decryption_mode: x.mode(),
        window_started_at_ms: o.window_started_at,
        window_ends_at_ms: o.window_ends_at,
        summary_fields: x.params.summary_fields.clone(),
        key_releases,
        bids,
        outcome: if failed {
            RecordOutcome::Failed
        } else {
            RecordOutcome::Announced
        },
        announced_at_ms: now,
    };
    let hash = record.hash();
    o.record_json = Some(record.canonical());
    o.record_hash = Some(hash.clone());
    o.announced_at = Some(now);
    repo::save(tx.c, &o)?;
    if failed {
        transition::section(
            tx.c,
            section_id,
            SectionState::Decrypting,
            SectionState::Failed,
            now,
        )?;
        let reason = format!(
            "{decrypted} bid(s) decrypted, fewer than the {} required",
            x.params.min_bidders
        );
        fail_notices(tx, &x, &reason)?;
        tx.record(
            Change::new(section_id, "section.failed")
                .data(json!({"reason": "too_few_valid_bids", "bids": decrypted,
                             "min_bidders": x.params.min_bidders, "record": record,
                             "record_hash": hash}))
                .logged(json!({"reason": "too_few_valid_bids", "record_hash": hash,
                               "record": record}))
                .by(crate::db::audit::Who::system()),
        )?;
        return Ok(());
    }
    transition::section(
        tx.c,
        section_id,
        SectionState::Decrypting,
        SectionState::Announced,
        now,
    )?;
    transition::section(
        tx.c,
        section_id,
        SectionState::Announced,
        SectionState::Confirming,
        now,
    )?;
    tx.record(
        Change::new(section_id, "opening.announced")
            .data(json!({"record": record, "record_hash": hash}))
            .logged(json!({"record_hash": hash, "record": record}))
            .by(crate::db::audit::Who::system()),
    )?;
    tx.record(
        Change::new(section_id, "opening.confirming")
            .data(json!({"record_hash": hash}))
            .by(crate::db::audit::Who::system()),
    )?;
    Ok(())
}
