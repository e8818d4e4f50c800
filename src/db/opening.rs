//! The opening (开标): its window and record, sign-ins (blind until the
//! deadline), key releases, each bid's decryption, incidents, objections,
//! confirmations.

use diesel::prelude::*;

use super::schema::{
    bid_openings, confirmations, incidents, key_releases, objections, openings, signins,
};
use super::DbConn;
use crate::domain::ids::{IncidentId, ObjectionId, OrgId, SectionId, SigninId, UserId};
use crate::domain::states::{DecryptedVia, Fault, OpeningStatus};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = openings, treat_none_as_null = true)]
pub struct OpeningRow {
    pub section_id: SectionId,
    pub signin_open: bool,
    pub window_started_at: Option<i64>,
    pub window_ends_at: Option<i64>,
    pub paused_since: Option<i64>,
    /// The window is over and platform-fault bids wait for the custodians.
    pub escrow: bool,
    pub record_json: Option<String>,
    pub record_hash: Option<String>,
    pub announced_at: Option<i64>,
    pub closing_json: Option<String>,
    pub closing_hash: Option<String>,
    pub platform_signature: Option<String>,
    pub closed_at: Option<i64>,
    pub countersigned_by: Option<UserId>,
    pub countersignature: Option<String>,
    pub countersigned_at: Option<i64>,
}

impl OpeningRow {
    pub fn new(section_id: &SectionId) -> Self {
        Self {
            section_id: section_id.clone(),
            signin_open: false,
            window_started_at: None,
            window_ends_at: None,
            paused_since: None,
            escrow: false,
            record_json: None,
            record_hash: None,
            announced_at: None,
            closing_json: None,
            closing_hash: None,
            platform_signature: None,
            closed_at: None,
            countersigned_by: None,
            countersignature: None,
            countersigned_at: None,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = key_releases)]
pub struct KeyReleaseRow {
    pub section_id: SectionId,
    pub custodian: UserId,
    pub position: i32,
    /// The signed release, sealed at rest until the announcement.
    pub sealed_secret: String,
    /// The signed release in clear, from the announcement on.
    pub secret_key: Option<String>,
    pub signature: String,
    pub released_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = bid_openings, treat_none_as_null = true)]
pub struct BidOpeningRow {
    pub envelope_hash: String,
    pub section_id: SectionId,
    pub status: OpeningStatus,
    pub fault: Option<Fault>,
    pub reason: Option<String>,
    pub via: Option<DecryptedVia>,
    /// The decrypted summary, sealed at rest until the announcement.
    pub sealed_result: Option<String>,
    /// The decrypted summary in clear, from the announcement on.
    pub summary: Option<String>,
    /// The BMK, always sealed at rest (it opens the documents).
    pub bmk: Option<String>,
    pub decrypted_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = incidents)]
pub struct IncidentRow {
    pub id: IncidentId,
    pub section_id: SectionId,
    pub reason: String,
    /// JSON array of organisation ids (empty: every bidder).
    pub bidders: String,
    pub declared_by: UserId,
    pub declared_at: i64,
    pub countersigned_by: Option<UserId>,
    pub countersignature: Option<String>,
    pub countersigned_at: Option<i64>,
    pub resolved_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = objections)]
pub struct ObjectionRow {
    pub id: ObjectionId,
    pub section_id: SectionId,
    pub bidder: OrgId,
    pub raised_by: UserId,
    pub text: String,
    pub raised_at: i64,
    pub answer: Option<String>,
    pub answered_by: Option<UserId>,
    pub answered_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = confirmations)]
pub struct ConfirmationRow {
    pub section_id: SectionId,
    pub bidder: OrgId,
    pub record_hash: String,
    pub signature: String,
    pub confirmed_by: UserId,
    pub confirmed_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signins)]
pub struct SigninRow {
    pub id: SigninId,
    pub section_tag: String,
    pub member_tag: String,
    pub record: String,
    pub created_at: i64,
}

// ----------------------------------------------------------------- opening

pub fn find(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Option<OpeningRow>> {
    openings::table
        .find(section_id)
        .select(OpeningRow::as_select())
        .first(c)
        .optional()
}

/// The opening row, made on first use (sign-in may open before the deadline).
pub fn get_or_create(c: &mut DbConn, section_id: &SectionId) -> QueryResult<OpeningRow> {
    if let Some(row) = find(c, section_id)? {
        return Ok(row);
    }
    let row = OpeningRow::new(section_id);
    diesel::insert_into(openings::table)
        .values(&row)
        .execute(c)?;
    Ok(row)
}

pub fn save(c: &mut DbConn, row: &OpeningRow) -> QueryResult<usize> {
    diesel::update(openings::table.find(&row.section_id))
        .set(row)
        .execute(c)
}

// ---------------------------------------------------------------- sign-ins

pub fn insert_signin(c: &mut DbConn, row: &SigninRow) -> QueryResult<bool> {
    let exists: bool = diesel::select(diesel::dsl::exists(
        signins::table.filter(signins::member_tag.eq(&row.member_tag)),
    ))
    .get_result(c)?;
    if exists {
        return Ok(false);
    }
    diesel::insert_into(signins::table).values(row).execute(c)?;
    Ok(true)
}

pub fn signin_exists(c: &mut DbConn, member_tag: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        signins::table.filter(signins::member_tag.eq(member_tag)),
    ))
    .get_result(c)
}

pub fn signins_of(c: &mut DbConn, section_tag: &str) -> QueryResult<Vec<SigninRow>> {
    signins::table
        .filter(signins::section_tag.eq(section_tag))
        .select(SigninRow::as_select())
        .order(signins::created_at.asc())
        .load(c)
}

// ------------------------------------------------------------ key releases

pub fn insert_release(c: &mut DbConn, row: &KeyReleaseRow) -> QueryResult<()> {
    diesel::insert_into(key_releases::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn releases_of(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<KeyReleaseRow>> {
    key_releases::table
        .filter(key_releases::section_id.eq(section_id))
        .select(KeyReleaseRow::as_select())
        .order(key_releases::position.asc())
        .load(c)
}

pub fn publish_release(
    c: &mut DbConn,
    section_id: &SectionId,
    custodian: &UserId,
    clear: &str,
) -> QueryResult<usize> {
    diesel::update(key_releases::table.find((section_id, custodian)))
        .set(key_releases::secret_key.eq(clear))
        .execute(c)
}

// ------------------------------------------------------------ bid openings

pub fn insert_bid_opening(c: &mut DbConn, row: &BidOpeningRow) -> QueryResult<()> {
    diesel::insert_into(bid_openings::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn bid_openings_of(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<BidOpeningRow>> {
    bid_openings::table
        .filter(bid_openings::section_id.eq(section_id))
        .select(BidOpeningRow::as_select())
        .order(bid_openings::envelope_hash.asc())
        .load(c)
}

pub fn bid_opening(c: &mut DbConn, envelope_hash: &str) -> QueryResult<Option<BidOpeningRow>> {
    bid_openings::table
        .find(envelope_hash)
        .select(BidOpeningRow::as_select())
        .first(c)
        .optional()
}

/// Settles a pending bid: a compare-and-set from `pending`, so a bid is
/// decided exactly once even when two nodes decrypt it at the same time.
pub fn settle_bid(c: &mut DbConn, row: &BidOpeningRow) -> QueryResult<usize> {
    diesel::update(
        bid_openings::table
            .filter(bid_openings::envelope_hash.eq(&row.envelope_hash))
            .filter(bid_openings::status.eq(OpeningStatus::Pending)),
    )
    .set(row)
    .execute(c)
}

pub fn update_bid_opening(c: &mut DbConn, row: &BidOpeningRow) -> QueryResult<usize> {
    diesel::update(bid_openings::table.find(&row.envelope_hash))
        .set(row)
        .execute(c)
}

// --------------------------------------------------------------- incidents

pub fn insert_incident(c: &mut DbConn, row: &IncidentRow) -> QueryResult<()> {
    diesel::insert_into(incidents::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn incidents_of(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<IncidentRow>> {
    incidents::table
        .filter(incidents::section_id.eq(section_id))
        .select(IncidentRow::as_select())
        .order(incidents::declared_at.asc())
        .load(c)
}

pub fn find_incident(c: &mut DbConn, id: &IncidentId) -> QueryResult<Option<IncidentRow>> {
    incidents::table
        .find(id)
        .select(IncidentRow::as_select())
        .first(c)
        .optional()
}

pub fn countersign_incident(
    c: &mut DbConn,
    id: &IncidentId,
    by: &UserId,
    signature: &str,
    at: i64,
) -> QueryResult<usize> {
    diesel::update(
        incidents::table
            .find(id)
            .filter(incidents::countersigned_by.is_null()),
    )
    .set((
        incidents::countersigned_by.eq(by),
        incidents::countersignature.eq(signature),
        incidents::countersigned_at.eq(at),
    ))
    .execute(c)
}

pub fn resolve_incidents(c: &mut DbConn, section_id: &SectionId, at: i64) -> QueryResult<usize> {
    diesel::update(
        incidents::table
            .filter(incidents::section_id.eq(section_id))
            .filter(incidents::resolved_at.is_null()),
    )
    .set(incidents::resolved_at.eq(at))
    .execute(c)
}

// -------------------------------------------------------------- objections

pub fn insert_objection(c: &mut DbConn, row: &ObjectionRow) -> QueryResult<()> {
    diesel::insert_into(objections::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn objections_of(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<ObjectionRow>> {
    objections::table
        .filter(objections::section_id.eq(section_id))
        .select(ObjectionRow::as_select())
        .order((objections::raised_at.asc(), objections::id.asc()))
        .load(c)
}

pub fn find_objection(c: &mut DbConn, id: &ObjectionId) -> QueryResult<Option<ObjectionRow>> {
    objections::table
        .find(id)
        .select(ObjectionRow::as_select())
        .first(c)
        .optional()
}

/// Records the answer; a compare-and-set, so an objection is answered once.
pub fn answer_objection(
    c: &mut DbConn,
    id: &ObjectionId,
    answer: &str,
    by: &UserId,
    at: i64,
) -> QueryResult<usize> {
    diesel::update(
        objections::table
            .find(id)
            .filter(objections::answer.is_null()),
    )
    .set((
        objections::answer.eq(answer),
        objections::answered_by.eq(by),
        objections::answered_at.eq(at),
    ))
    .execute(c)
}

// ----------------------------------------------------------- confirmations

pub fn insert_confirmation(c: &mut DbConn, row: &ConfirmationRow) -> QueryResult<()> {
    diesel::insert_into(confirmations::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn confirmations_of(
    c: &mut DbConn,
    section_id: &SectionId,
) -> QueryResult<Vec<ConfirmationRow>> {
    confirmations::table
        .filter(confirmations::section_id.eq(section_id))
        .select(ConfirmationRow::as_select())
        .order(confirmations::confirmed_at.asc())
        .load(c)
}
