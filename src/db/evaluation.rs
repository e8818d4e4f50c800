//! Remote expert evaluation: the expert pool, each section's draw and
//! committee (seats), and the experts' signed reviews (votes) and scores.

use diesel::prelude::*;

use super::schema::{
    centre_registrations, clarifications, draw_contributions, draw_requests, eval_scores,
    eval_votes, evaluations, experts, outlier_flags, publicity_objections, recusals,
    report_signatures, seats,
};
use super::DbConn;
use crate::domain::ids::{
    ClarificationId, ExpertId, OrgId, PublicityObjectionId, SectionId, UserId,
};
use crate::domain::states::{EvaluationPhase, SeatStatus};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = experts)]
pub struct ExpertRow {
    pub id: ExpertId,
    pub centre: String,
    pub name: String,
    pub email: String,
    /// JSON array of specialty codes.
    pub specialties: String,
    pub employer: String,
    /// JSON array of credit codes.
    pub related_orgs: String,
    /// JSON array of person digests (never the identifiers themselves).
    pub related_people: String,
    pub available: bool,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = evaluations, treat_none_as_null = true)]
pub struct EvaluationRow {
    pub section_id: SectionId,
    pub phase: EvaluationPhase,
    pub request_json: String,
    pub parties_json: String,
    pub snapshot_json: String,
    pub snapshot_hash: String,
    pub seed_commitment: String,
    /// The draw's seed, sealed at rest until the result is published.
    pub sealed_seed: String,
    pub draw_json: String,
    pub k_coefficient: Option<String>,
    pub outcome_json: Option<String>,
    /// The evaluation report (canonical JSON) every expert signs, its hash.
    pub report_json: Option<String>,
    pub report_hash: Option<String>,
    pub signing_ends_at: Option<i64>,
    pub published_at: Option<i64>,
    /// Moves later by the time publicity spent paused on objections.
    pub publicity_ends_at: Option<i64>,
    pub paused_since: Option<i64>,
    pub awarded_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = seats, treat_none_as_null = true)]
pub struct SeatRow {
    pub section_id: SectionId,
    pub expert_id: ExpertId,
    pub specialty: String,
    /// The draw's order: members first, then reserves.
    pub position: i32,
    pub status: SeatStatus,
    /// SHA-256 of the answer link's token, while the expert is called.
    pub token_hash: Option<String>,
    /// The expert's key, from the pass the room admitted.
    pub expert_key: Option<String>,
    /// The admitted pass itself (JSON), for the transcript.
    pub pass_json: Option<String>,
    pub called_at: Option<i64>,
    pub responded_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = eval_votes)]
pub struct VoteRow {
    pub section_id: SectionId,
    pub expert_id: ExpertId,
    pub bid: String,
    pub pass: bool,
    pub reason: Option<String>,
    /// The signed statement (canonical JSON) and the expert's signature.
    pub statement: String,
    pub signature: String,
    pub at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = eval_scores)]
pub struct ScoreRow {
    pub section_id: SectionId,
    pub expert_id: ExpertId,
    pub bid: String,
    pub item: String,
    /// Hundredths of a point.
    pub points: i64,
    pub statement: String,
    pub signature: String,
    pub at: i64,
}

// ------------------------------------------------------------------ the pool

/// Inserts or replaces pool entries by id (one statement per row: the
/// multi-backend connection has no upsert).
pub fn upsert_experts(c: &mut DbConn, rows: &[ExpertRow]) -> QueryResult<usize> {
    for row in rows {
        let n = diesel::update(experts::table.find(&row.id))
            .set(row)
            .execute(c)?;
        if n == 0 {
            diesel::insert_into(experts::table).values(row).execute(c)?;
        }
    }
    Ok(rows.len())
}

pub fn all_experts(c: &mut DbConn) -> QueryResult<Vec<ExpertRow>> {
    experts::table
        .order(experts::id)
        .select(ExpertRow::as_select())
        .load(c)
}

pub fn find_expert(c: &mut DbConn, id: &ExpertId) -> QueryResult<Option<ExpertRow>> {
    experts::table
        .find(id)
        .select(ExpertRow::as_select())
        .first(c)
        .optional()
}

// ------------------------------------------------------------- evaluations

pub fn insert(c: &mut DbConn, row: &EvaluationRow) -> QueryResult<()> {
    diesel::insert_into(evaluations::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn find(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Option<EvaluationRow>> {
    evaluations::table
        .find(section_id)
        .select(EvaluationRow::as_select())
        .first(c)
        .optional()
}

/// Moves the evaluation from `from` to `to` (compare-and-set; through
/// `service::transition`).
pub fn cas_phase(
    c: &mut DbConn,
    section_id: &SectionId,
    from: EvaluationPhase,
    to: EvaluationPhase,
    at: i64,
) -> QueryResult<usize> {
    diesel::update(
        evaluations::table
            .filter(evaluations::section_id.eq(section_id))
            .filter(evaluations::phase.eq(from)),
    )
    .set((evaluations::phase.eq(to), evaluations::updated_at.eq(at)))
    .execute(c)
}

pub fn save(c: &mut DbConn, row: &EvaluationRow) -> QueryResult<usize> {
    diesel::update(evaluations::table.find(&row.section_id))
        .set(row)
        .execute(c)
}

// ------------------------------------------------------------------- seats

pub fn insert_seats(c: &mut DbConn, rows: &[SeatRow]) -> QueryResult<()> {
    for row in rows {
        diesel::insert_into(seats::table).values(row).execute(c)?;
    }
    Ok(())
}

pub fn seats_of(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<SeatRow>> {
    seats::table
        .filter(seats::section_id.eq(section_id))
        .order(seats::position)
        .select(SeatRow::as_select())
        .load(c)
}

pub fn seat_by_token(c: &mut DbConn, token_hash: &str) -> QueryResult<Option<SeatRow>> {
    seats::table
        .filter(seats::token_hash.eq(token_hash))
        .select(SeatRow::as_select())
        .first(c)
        .optional()
}

pub fn seat(
    c: &mut DbConn,
    section_id: &SectionId,
    expert_id: &ExpertId,
) -> QueryResult<Option<SeatRow>> {
    seats::table
        .find((section_id, expert_id))
        .select(SeatRow::as_select())
        .first(c)
        .optional()
}

/// Saves a seat whose status was `from` (compare-and-set); 0 when it moved.
pub fn update_seat(c: &mut DbConn, row: &SeatRow, from: SeatStatus) -> QueryResult<usize> {
    diesel::update(
        seats::table
            .find((&row.section_id, &row.expert_id))
            .filter(seats::status.eq(from)),
    )
    .set(row)
    .execute(c)
}

// ---------------------------------------------------------- votes and scores

pub fn insert_vote(c: &mut DbConn, row: &VoteRow) -> QueryResult<()> {
    diesel::insert_into(eval_votes::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn votes_of(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<VoteRow>> {
    eval_votes::table
        .filter(eval_votes::section_id.eq(section_id))
        .order((eval_votes::bid, eval_votes::expert_id))
        .select(VoteRow::as_select())
        .load(c)
}

pub fn insert_score(c: &mut DbConn, row: &ScoreRow) -> QueryResult<()> {
    diesel::insert_into(eval_scores::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn score_cell(
    c: &mut DbConn,
    section_id: &SectionId,
    expert_id: &ExpertId,
    bid: &str,
    item: &str,
) -> QueryResult<Option<ScoreRow>> {
    eval_scores::table
        .find((section_id, expert_id, bid, item))
        .select(ScoreRow::as_select())
        .first(c)
        .optional()
}

pub fn scores_of(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<ScoreRow>> {
    eval_scores::table
        .filter(eval_scores::section_id.eq(section_id))
        .order((eval_scores::bid, eval_scores::expert_id, eval_scores::item))
        .select(ScoreRow::as_select())
        .load(c)
}

// ------------------------------------------------------ report, publicity

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = report_signatures)]
pub struct ReportSignatureRow {
    pub section_id: SectionId,
    pub expert_id: ExpertId,
    pub agree: bool,
    pub dissent: Option<String>,
    /// Not signed when the signing time ended: recorded as agreement.
    pub deemed: bool,
    pub statement: Option<String>,
    pub signature: Option<String>,
    pub at: i64,
}

pub fn insert_report_signature(c: &mut DbConn, row: &ReportSignatureRow) -> QueryResult<()> {
    diesel::insert_into(report_signatures::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn report_signatures_of(
    c: &mut DbConn,
    section_id: &SectionId,
) -> QueryResult<Vec<ReportSignatureRow>> {
    report_signatures::table
        .filter(report_signatures::section_id.eq(section_id))
        .order(report_signatures::expert_id)
        .select(ReportSignatureRow::as_select())
        .load(c)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = publicity_objections, treat_none_as_null = true)]
pub struct PublicityObjectionRow {
    pub id: PublicityObjectionId,
    pub section_id: SectionId,
    pub bidder: OrgId,
    pub raised_by: UserId,
    pub text: String,
    pub raised_at: i64,
    pub answer_due_at: i64,
    pub answer: Option<String>,
    pub answered_by: Option<UserId>,
    pub answered_at: Option<i64>,
}

pub fn insert_objection(c: &mut DbConn, row: &PublicityObjectionRow) -> QueryResult<()> {
    diesel::insert_into(publicity_objections::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn objections_of(
    c: &mut DbConn,
    section_id: &SectionId,
) -> QueryResult<Vec<PublicityObjectionRow>> {
    publicity_objections::table
        .filter(publicity_objections::section_id.eq(section_id))
        .order(publicity_objections::raised_at)
        .select(PublicityObjectionRow::as_select())
        .load(c)
}

/// Answers an open objection (compare-and-set on "not answered yet").
pub fn answer_objection(
    c: &mut DbConn,
    id: &PublicityObjectionId,
    answer: &str,
    by: &UserId,
    at: i64,
) -> QueryResult<usize> {
    diesel::update(
        publicity_objections::table
            .find(id)
            .filter(publicity_objections::answered_at.is_null()),
    )
    .set((
        publicity_objections::answer.eq(answer),
        publicity_objections::answered_by.eq(by),
        publicity_objections::answered_at.eq(at),
    ))
    .execute(c)
}

// ------------------------------------------ outliers, recusals, clarifications

/// A member's signed recusal (回避), whole.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = recusals)]
pub struct RecusalRow {
    pub section_id: SectionId,
    pub expert_id: ExpertId,
    /// The statement's canonical JSON text, as signed.
    pub statement: String,
    pub signature: String,
    pub recused_at: i64,
}

pub fn insert_recusal(c: &mut DbConn, row: &RecusalRow) -> QueryResult<()> {
    diesel::insert_into(recusals::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn recusals_of(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<RecusalRow>> {
    recusals::table
        .filter(recusals::section_id.eq(section_id))
        .order(recusals::expert_id)
        .select(RecusalRow::as_select())
        .load(c)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = outlier_flags, treat_none_as_null = true)]
pub struct OutlierRow {
    pub section_id: SectionId,
    pub expert_id: ExpertId,
    pub bid: String,
    /// Hundredths of a point: the expert's total, the panel's median.
    pub total: i64,
    pub median: i64,
    pub flagged_at: i64,
    pub reason: Option<String>,
    pub statement: Option<String>,
    pub signature: Option<String>,
    pub confirmed_at: Option<i64>,
}

pub fn outliers_of(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<OutlierRow>> {
    outlier_flags::table
        .filter(outlier_flags::section_id.eq(section_id))
        .order((outlier_flags::bid, outlier_flags::expert_id))
        .select(OutlierRow::as_select())
        .load(c)
}

pub fn insert_outlier(c: &mut DbConn, row: &OutlierRow) -> QueryResult<()> {
    diesel::insert_into(outlier_flags::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

/// Confirms an open flag (compare-and-set on "not confirmed yet").
pub fn confirm_outlier(c: &mut DbConn, row: &OutlierRow) -> QueryResult<usize> {
    diesel::update(
        outlier_flags::table
            .find((&row.section_id, &row.expert_id, &row.bid))
            .filter(outlier_flags::confirmed_at.is_null()),
    )
    .set(row)
    .execute(c)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = clarifications, treat_none_as_null = true)]
pub struct ClarificationRow {
    pub id: ClarificationId,
    pub section_id: SectionId,
    pub expert_id: ExpertId,
    pub bid: String,
    pub bidder: OrgId,
    pub question: String,
    pub statement: String,
    pub signature: String,
    pub asked_at: i64,
    pub due_at: i64,
    pub answer: Option<String>,
    pub answer_statement: Option<String>,
    pub answer_signature: Option<String>,
    pub answered_by: Option<UserId>,
    pub answered_at: Option<i64>,
}

pub fn insert_clarification(c: &mut DbConn, row: &ClarificationRow) -> QueryResult<()> {
    diesel::insert_into(clarifications::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn clarification(
    c: &mut DbConn,
    id: &ClarificationId,
) -> QueryResult<Option<ClarificationRow>> {
    clarifications::table
        .find(id)
        .select(ClarificationRow::as_select())
        .first(c)
        .optional()
}

pub fn clarifications_of(
    c: &mut DbConn,
    section_id: &SectionId,
) -> QueryResult<Vec<ClarificationRow>> {
    clarifications::table
        .filter(clarifications::section_id.eq(section_id))
        .order(clarifications::asked_at)
        .select(ClarificationRow::as_select())
        .load(c)
}

/// Records the answer to an open clarification (compare-and-set).
pub fn answer_clarification(c: &mut DbConn, row: &ClarificationRow) -> QueryResult<usize> {
    diesel::update(
        clarifications::table
            .find(&row.id)
            .filter(clarifications::answered_at.is_null()),
    )
    .set(row)
    .execute(c)
}

// ------------------------------------------------- centres' registrations

/// A trading centre's registration as the platform took and logged it: the
/// file the centre signed, and its `centre.registered` leaf.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = centre_registrations)]
pub struct CentreRegistrationRow {
    /// SHA-256 of the registration's signed statement, hex.
    pub statement_hash: String,
    pub code: String,
    pub name: String,
    pub public_key: String,
    pub signature: String,
    pub idx: i64,
    pub registered_at: i64,
}

pub fn centre_registration(
    c: &mut DbConn,
    statement_hash: &str,
) -> QueryResult<Option<CentreRegistrationRow>> {
    centre_registrations::table
        .find(statement_hash)
        .select(CentreRegistrationRow::as_select())
        .first(c)
        .optional()
}

pub fn insert_centre_registration(c: &mut DbConn, row: &CentreRegistrationRow) -> QueryResult<()> {
    diesel::insert_into(centre_registrations::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

/// Centre `code`'s latest registration logged before leaf `before`.
pub fn centre_registered_before(
    c: &mut DbConn,
    code: &str,
    before: i64,
) -> QueryResult<Option<CentreRegistrationRow>> {
    centre_registrations::table
        .filter(centre_registrations::code.eq(code))
        .filter(centre_registrations::idx.lt(before))
        .order(centre_registrations::idx.desc())
        .select(CentreRegistrationRow::as_select())
        .first(c)
        .optional()
}

// ------------------------------------------------- the seed's contributions

/// A contributor's commitment to a value for the draw's seed, and the value
/// once revealed.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = draw_contributions, treat_none_as_null = true)]
pub struct ContributionRow {
    pub section_id: SectionId,
    /// `supervisor` or `centre:{code}`.
    pub party: String,
    /// The Ed25519 key the statement is signed with, hex.
    pub public_key: String,
    /// The statement's canonical JSON text, as signed.
    pub statement: String,
    pub signature: String,
    pub committed_at: i64,
    /// The value, hex, once revealed.
    pub value: Option<String>,
    pub revealed_at: Option<i64>,
    /// When the time to reveal ended without it.
    pub withheld_at: Option<i64>,
}

impl ContributionRow {
    /// Revealed or withheld: nothing more can happen to it.
    pub fn settled(&self) -> bool {
        self.revealed_at.is_some() || self.withheld_at.is_some()
    }
}

pub fn insert_contribution(c: &mut DbConn, row: &ContributionRow) -> QueryResult<()> {
    diesel::insert_into(draw_contributions::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn save_contribution(c: &mut DbConn, row: &ContributionRow) -> QueryResult<()> {
    diesel::update(draw_contributions::table.find((&row.section_id, &row.party)))
        .set(row)
        .execute(c)
        .map(|_| ())
}

pub fn contributions_of(
    c: &mut DbConn,
    section_id: &SectionId,
) -> QueryResult<Vec<ContributionRow>> {
    draw_contributions::table
        .filter(draw_contributions::section_id.eq(section_id))
        .order(draw_contributions::party)
        .select(ContributionRow::as_select())
        .load(c)
}

/// The host's request for a draw while its contributors reveal.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = draw_requests)]
pub struct DrawRequestRow {
    pub section_id: SectionId,
    pub request_json: String,
    pub parties_json: String,
    pub snapshot_json: String,
    /// The commitment to the platform's seed, logged with the request.
    pub seed_commitment: String,
    /// The platform's seed, sealed at rest until the result is published.
    pub sealed_seed: String,
    /// JSON array of the contributors' parties, in the order they are mixed.
    pub contributors: String,
    pub reveals_due_at: i64,
    pub created_at: i64,
}

pub fn insert_draw_request(c: &mut DbConn, row: &DrawRequestRow) -> QueryResult<()> {
    diesel::insert_into(draw_requests::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn draw_request(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Option<DrawRequestRow>> {
    draw_requests::table
        .find(section_id)
        .select(DrawRequestRow::as_select())
        .first(c)
        .optional()
}
