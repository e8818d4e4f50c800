//! Submissions before the deadline (blind tags, sealed records) and the
//! opened record after it: bids, log openings, late attempts, manifests.

use diesel::prelude::*;

use super::schema::{bids, late_attempts, log_openings, manifests, submissions};
use super::DbConn;
use crate::domain::ids::{LateId, OrgId, SectionId, SubmissionId};
use crate::domain::states::{BidStatus, LateStage, SubmissionState};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = submissions)]
pub struct SubmissionRow {
    pub id: SubmissionId,
    pub section_tag: String,
    pub bidder_tag: String,
    pub owner_tag: String,
    pub envelope_hash: String,
    pub revision: i32,
    pub state: SubmissionState,
    pub record: String,
    pub progress: String,
    pub received_at: i64,
    pub completed_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = bids)]
pub struct BidRow {
    pub envelope_hash: String,
    pub section_id: SectionId,
    pub bidder: OrgId,
    pub bid_id: String,
    pub revision: i32,
    pub status: BidStatus,
    pub signed_envelope: String,
    pub received_at: i64,
    pub completed_at: Option<i64>,
    pub receipt: Option<String>,
    pub withdrawal: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = late_attempts)]
pub struct LateRow {
    pub id: LateId,
    pub section_id: SectionId,
    pub bidder: OrgId,
    pub envelope_hash: String,
    pub stage: LateStage,
    pub at: i64,
    pub log_idx: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = manifests)]
pub struct ManifestRow {
    pub section_id: SectionId,
    pub manifest: String,
    pub root: String,
    pub bid_count: i32,
    pub log_idx: i64,
    pub sealed_at: i64,
}

pub fn insert_submission(c: &mut DbConn, row: &SubmissionRow) -> QueryResult<()> {
    diesel::insert_into(submissions::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn submission_by_hash(
    c: &mut DbConn,
    envelope_hash: &str,
) -> QueryResult<Option<SubmissionRow>> {
    submissions::table
        .filter(submissions::envelope_hash.eq(envelope_hash))
        .select(SubmissionRow::as_select())
        .first(c)
        .optional()
}

pub fn submission_by_id(c: &mut DbConn, id: &SubmissionId) -> QueryResult<Option<SubmissionRow>> {
    submissions::table
        .find(id)
        .select(SubmissionRow::as_select())
        .first(c)
        .optional()
}

/// One bidder's chain of revisions in one section, oldest first.
pub fn chain(c: &mut DbConn, bidder_tag: &str) -> QueryResult<Vec<SubmissionRow>> {
    submissions::table
        .filter(submissions::bidder_tag.eq(bidder_tag))
        .select(SubmissionRow::as_select())
        .order(submissions::revision.asc())
        .load(c)
}

pub fn of_owner(c: &mut DbConn, owner_tag: &str) -> QueryResult<Vec<SubmissionRow>> {
    submissions::table
        .filter(submissions::owner_tag.eq(owner_tag))
        .select(SubmissionRow::as_select())
        .order(submissions::received_at.desc())
        .load(c)
}

pub fn of_section(c: &mut DbConn, section_tag: &str) -> QueryResult<Vec<SubmissionRow>> {
    submissions::table
        .filter(submissions::section_tag.eq(section_tag))
        .select(SubmissionRow::as_select())
        .order(submissions::received_at.asc())
        .load(c)
}

/// Compare-and-set of upload progress: 1 row only if nobody moved it.
pub fn set_progress(c: &mut DbConn, id: &SubmissionId, old: &str, new: &str) -> QueryResult<usize> {
    diesel::update(
        submissions::table
            .find(id)
            .filter(submissions::progress.eq(old))
            .filter(submissions::state.eq(SubmissionState::Receiving)),
    )
    .set(submissions::progress.eq(new))
    .execute(c)
}

/// Compare-and-set of a submission's state (through `service::transition`).
pub fn set_state(
    c: &mut DbConn,
    id: &SubmissionId,
    from: SubmissionState,
    to: SubmissionState,
) -> QueryResult<usize> {
    diesel::update(
        submissions::table
            .find(id)
            .filter(submissions::state.eq(from)),
    )
    .set(submissions::state.eq(to))
    .execute(c)
}

pub fn complete(c: &mut DbConn, id: &SubmissionId, at: i64, record: &str) -> QueryResult<usize> {
    diesel::update(
        submissions::table
            .find(id)
            .filter(submissions::state.eq(SubmissionState::Receiving)),
    )
    .set((
        submissions::state.eq(SubmissionState::Complete),
        submissions::completed_at.eq(Some(at)),
        submissions::record.eq(record),
    ))
    .execute(c)
}

pub fn set_record(c: &mut DbConn, id: &SubmissionId, record: &str) -> QueryResult<usize> {
    diesel::update(submissions::table.find(id))
        .set(submissions::record.eq(record))
        .execute(c)
}

pub fn delete_section_submissions(c: &mut DbConn, section_tag: &str) -> QueryResult<usize> {
    diesel::delete(submissions::table.filter(submissions::section_tag.eq(section_tag))).execute(c)
}

pub fn insert_bid(c: &mut DbConn, row: &BidRow) -> QueryResult<()> {
    diesel::insert_into(bids::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn bids_of(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<BidRow>> {
    bids::table
        .filter(bids::section_id.eq(section_id))
        .select(BidRow::as_select())
        .order((bids::bidder.asc(), bids::revision.asc()))
        .load(c)
}

pub fn bid(c: &mut DbConn, envelope_hash: &str) -> QueryResult<Option<BidRow>> {
    bids::table
        .find(envelope_hash)
        .select(BidRow::as_select())
        .first(c)
        .optional()
}

pub fn bids_of_bidder(c: &mut DbConn, bidder: &OrgId) -> QueryResult<Vec<BidRow>> {
    bids::table
        .filter(bids::bidder.eq(bidder))
        .select(BidRow::as_select())
        .order(bids::received_at.desc())
        .load(c)
}

pub fn insert_opening(
    c: &mut DbConn,
    leaf_idx: i64,
    section_id: &SectionId,
    opening: &str,
) -> QueryResult<()> {
    diesel::insert_into(log_openings::table)
        .values((
            log_openings::leaf_idx.eq(leaf_idx),
            log_openings::section_id.eq(section_id),
            log_openings::opening.eq(opening),
        ))
        .execute(c)
        .map(|_| ())
}

pub fn openings_of(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<(i64, String)>> {
    log_openings::table
        .filter(log_openings::section_id.eq(section_id))
        .select((log_openings::leaf_idx, log_openings::opening))
        .order(log_openings::leaf_idx.asc())
        .load(c)
}

pub fn insert_late(c: &mut DbConn, row: &LateRow) -> QueryResult<()> {
    diesel::insert_into(late_attempts::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn late_of(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<LateRow>> {
    late_attempts::table
        .filter(late_attempts::section_id.eq(section_id))
        .select(LateRow::as_select())
        .order(late_attempts::log_idx.asc())
        .load(c)
}

pub fn insert_manifest(c: &mut DbConn, row: &ManifestRow) -> QueryResult<()> {
    diesel::insert_into(manifests::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn manifest(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Option<ManifestRow>> {
    manifests::table
        .find(section_id)
        .select(ManifestRow::as_select())
        .first(c)
        .optional()
}
