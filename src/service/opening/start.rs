//! What the sealing starts, in the chronograph's transaction right after
//! the manifest: the sign-ins made before the deadline come out of hiding;
//! then either the section fails (流标, fewer bids than `min_bidders`) or the
//! decryption window opens with a pending row per bid.

use std::collections::BTreeSet;

use serde_json::json;

use super::signin::SigninRecord;
use super::{load, org_name, PublishedSection};
use crate::db::jobs;
use crate::db::opening::{self as repo, BidOpeningRow};
use crate::domain::ids::{OrgId, SectionId};
use crate::domain::section::SectionState;
use crate::domain::states::{JobKind, OpeningStatus};
use crate::error::{AppError, AppResult};
use crate::notify::templates::{self, SectionRef};
use crate::service::action::{Change, Tx};
use crate::service::{confidential, sections, transition};

/// Starts the opening of a sealed section whose `accepted` bids are
/// `(envelope hash, bidder)`.
pub fn begin(
    tx: &mut Tx<'_>,
    section_id: &SectionId,
    accepted: &[(String, OrgId)],
) -> AppResult<()> {
    let x = load(tx.c, section_id)?;
    let now = tx.now;
    let mut opening = repo::get_or_create(tx.c, section_id)?;

    // Sign-ins made before the deadline come out of hiding.
    let tag = confidential::section(&tx.svc.atrest, section_id);
    let bidders: BTreeSet<&OrgId> = accepted.iter().map(|(_, b)| b).collect();
    let mut signed = Vec::new();
    for row in repo::signins_of(tx.c, &tag)? {
        let rec: SigninRecord = tx
            .svc
            .atrest
            .open_json(row.id.as_str(), &row.record)
            .map_err(AppError::internal)?;
        if bidders.contains(&rec.bidder) {
            let name = org_name(tx.c, &rec.bidder)?;
            signed.push(json!({"bidder": rec.bidder, "name": name, "at_ms": rec.at_ms}));
        }
    }
    if !signed.is_empty() {
        tx.record(Change::new(section_id, "opening.signins").data(json!({ "bidders": signed })))?;
    }

    let n = accepted.len() as i32;
    if n < x.params.min_bidders {
        transition::section(
            tx.c,
            section_id,
            SectionState::Sealed,
            SectionState::Failed,
            now,
        )?;
        let reason = format!(
            "{n} bid(s) received, fewer than the {} required",
            x.params.min_bidders
        );
        fail_notices(tx, &x, &reason)?;
        let why = json!({"reason": "too_few_bids", "bids": n, "min_bidders": x.params.min_bidders});
        tx.record(
            Change::new(section_id, "section.failed")
                .data(why.clone())
                .logged(why),
        )?;
        return Ok(());
    }

    transition::section(
        tx.c,
        section_id,
        SectionState::Sealed,
        SectionState::Decrypting,
        now,
    )?;
    let ends = now + x.params.window_ms;
    opening.window_started_at = Some(now);
    opening.window_ends_at = Some(ends);
    repo::save(tx.c, &opening)?;
    let mut bids = Vec::new();
    for (hash, bidder) in accepted {
        repo::insert_bid_opening(
            tx.c,
            &BidOpeningRow {
                envelope_hash: hash.clone(),
                section_id: section_id.clone(),
                status: OpeningStatus::Pending,
                fault: None,
                reason: None,
                via: None,
                sealed_result: None,
                summary: None,
                bmk: None,
                decrypted_at: None,
            },
        )?;
        let name = org_name(tx.c, bidder)?;
        bids.push(json!({"envelope_hash": hash, "bidder": bidder, "name": name}));
    }
    jobs::schedule(tx.c, section_id, JobKind::OpeningWindowEnd, ends, now)?;
    let mode = x.mode();
    tx.record(
        Change::new(section_id, "opening.started")
            .data(json!({
                "mode": mode, "threshold": x.params.threshold,
                "custodians": x.params.custodians.len(), "min_bidders": x.params.min_bidders,
                "window_started_at_ms": now, "window_ends_at_ms": ends, "bids": bids,
            }))
            .logged(json!({"mode": mode, "window_ends_at_ms": ends, "bids": n})),
    )?;
    Ok(())
}

/// Tells every registered bidder the section failed (流标), and why.
pub(super) fn fail_notices(tx: &mut Tx<'_>, x: &PublishedSection, reason: &str) -> AppResult<()> {
    let link = format!("{}/?section={}", tx.svc.public_url, x.s.id);
    let mail = templates::failed(
        &SectionRef {
            project_name: &x.p.name,
            section_code: &x.s.code,
            section_name: &x.s.name,
            link: &link,
        },
        reason,
    );
    sections::notify_registered(tx.svc, tx.c, x.id(), &mail, tx.now)?;
    Ok(())
}
