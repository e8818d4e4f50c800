//! Projects, sections, their custodians, documents, amendments and the
//! bidders registered for them.

use diesel::prelude::*;

use super::schema::{
    amendments, documents, projects, section_custodians, section_params, section_registrations,
    sections,
};
use super::DbConn;
use crate::domain::ids::{
    AmendmentId, DocumentId, OrgId, ProjectId, RegistrationId, SectionId, UserId,
};
use crate::domain::section::{AmendmentKind, Category, DecryptionMode, SectionState};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = projects)]
pub struct ProjectRow {
    pub id: ProjectId,
    pub centre_org_id: OrgId,
    pub tenderer_org_id: OrgId,
    pub agent_org_id: Option<OrgId>,
    pub regulator_org_id: OrgId,
    pub code: String,
    pub name: String,
    pub category: Category,
    pub must_tender_by_law: bool,
    pub description: String,
    pub created_by: UserId,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sections)]
pub struct SectionRow {
    pub id: SectionId,
    pub project_id: ProjectId,
    pub code: String,
    pub name: String,
    pub description: String,
    pub state: SectionState,
    pub deadline_at: Option<i64>,
    pub published_at: Option<i64>,
    pub window_secs: i64,
    pub decryption_mode: DecryptionMode,
    pub threshold: i32,
    pub min_bidders: i32,
    pub grace_secs: i64,
    pub ceiling_price_fen: Option<i64>,
    pub evaluation: Option<String>,
    pub summary_fields: String,
    pub params_version: i32,
    pub params_json: Option<String>,
    pub params_hash: Option<String>,
    pub cancel_reason: Option<String>,
    pub last_seq: i64,
    pub created_by: UserId,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The editable settings of a draft section.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = sections, treat_none_as_null = true)]
pub struct SectionDraftChanges {
    pub code: String,
    pub name: String,
    pub description: String,
    pub deadline_at: Option<i64>,
    pub window_secs: i64,
    pub decryption_mode: DecryptionMode,
    pub threshold: i32,
    pub min_bidders: i32,
    pub grace_secs: i64,
    pub ceiling_price_fen: Option<i64>,
    pub evaluation: Option<String>,
    pub summary_fields: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = documents)]
pub struct DocumentRow {
    pub id: DocumentId,
    pub section_id: SectionId,
    pub amendment_id: Option<AmendmentId>,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub uploaded_by: UserId,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = amendments)]
pub struct AmendmentRow {
    pub id: AmendmentId,
    pub section_id: SectionId,
    pub number: i32,
    pub kind: AmendmentKind,
    pub title: String,
    pub body: String,
    pub old_deadline: i64,
    pub new_deadline: i64,
    pub params_hash: String,
    pub created_by: UserId,
    pub created_at: i64,
}

pub fn insert_project(c: &mut DbConn, row: &ProjectRow) -> QueryResult<()> {
    diesel::insert_into(projects::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn find_project(c: &mut DbConn, id: &ProjectId) -> QueryResult<Option<ProjectRow>> {
    projects::table
        .find(id)
        .select(ProjectRow::as_select())
        .first(c)
        .optional()
}

/// Projects a host's organisation runs (as the centre or as the agent).
pub fn projects_of_org(c: &mut DbConn, org_id: &OrgId) -> QueryResult<Vec<ProjectRow>> {
    projects::table
        .filter(
            projects::centre_org_id
                .eq(org_id)
                .or(projects::agent_org_id.eq(org_id))
                .or(projects::tenderer_org_id.eq(org_id))
                .or(projects::regulator_org_id.eq(org_id)),
        )
        .select(ProjectRow::as_select())
        .order(projects::created_at.desc())
        .load(c)
}

pub fn insert_section(c: &mut DbConn, row: &SectionRow) -> QueryResult<()> {
    diesel::insert_into(sections::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn find_section(c: &mut DbConn, id: &SectionId) -> QueryResult<Option<SectionRow>> {
    sections::table
        .find(id)
        .select(SectionRow::as_select())
        .first(c)
        .optional()
}

pub fn section_with_project(
    c: &mut DbConn,
    id: &SectionId,
) -> QueryResult<Option<(SectionRow, ProjectRow)>> {
    sections::table
        .inner_join(projects::table)
        .filter(sections::id.eq(id))
        .select((SectionRow::as_select(), ProjectRow::as_select()))
        .first(c)
        .optional()
}

pub fn sections_of_project(c: &mut DbConn, project_id: &ProjectId) -> QueryResult<Vec<SectionRow>> {
    sections::table
        .filter(sections::project_id.eq(project_id))
        .select(SectionRow::as_select())
        .order(sections::code.asc())
        .load(c)
}

/// Applies draft edits only while the section is still a draft.
pub fn update_draft(
    c: &mut DbConn,
    id: &SectionId,
    changes: &SectionDraftChanges,
) -> QueryResult<usize> {
    diesel::update(
        sections::table
            .find(id)
            .filter(sections::state.eq(SectionState::Draft)),
    )
    .set(changes)
    .execute(c)
}

/// Compare-and-set of the lifecycle state: exactly one row when the section
/// was in `from`, none otherwise (someone else moved it first). Call it
/// through `service::transition`, which consults the state machine first.
pub fn cas_state(
    c: &mut DbConn,
    id: &SectionId,
    from: SectionState,
    to: SectionState,
    at: i64,
) -> QueryResult<usize> {
    diesel::update(sections::table.find(id).filter(sections::state.eq(from)))
        .set((sections::state.eq(to), sections::updated_at.eq(at)))
        .execute(c)
}

pub fn set_published(
    c: &mut DbConn,
    id: &SectionId,
    at: i64,
    params_json: &str,
    params_hash: &str,
) -> QueryResult<usize> {
    diesel::update(
        sections::table
            .find(id)
            .filter(sections::state.eq(SectionState::Draft)),
    )
    .set((
        sections::state.eq(SectionState::Published),
        sections::published_at.eq(Some(at)),
        sections::params_version.eq(1),
        sections::params_json.eq(Some(params_json)),
        sections::params_hash.eq(Some(params_hash)),
        sections::updated_at.eq(at),
    ))
    .execute(c)
}

/// Whether any section takes bids at `now` (published, before its deadline
/// and grace): while one does, the log flushes at a steady rate (ADR 9).
pub fn any_taking_bids(c: &mut DbConn, now: i64) -> QueryResult<bool> {
    let open: Vec<(Option<i64>, i64)> = sections::table
        .filter(sections::state.eq(SectionState::Published))
        .select((sections::deadline_at, sections::grace_secs))
        .load(c)?;
    Ok(open
        .iter()
        .any(|(d, g)| d.is_some_and(|d| d + g * 1000 > now)))
}

/// Records new published parameters after an amendment, while still published.
pub fn set_amended_params(
    c: &mut DbConn,
    id: &SectionId,
    version: i32,
    deadline: i64,
    params_json: &str,
    params_hash: &str,
    at: i64,
) -> QueryResult<usize> {
    diesel::update(
        sections::table
            .find(id)
            .filter(sections::state.eq(SectionState::Published))
            .filter(sections::params_version.eq(version - 1)),
    )
    .set((
        sections::params_version.eq(version),
        sections::deadline_at.eq(Some(deadline)),
        sections::params_json.eq(Some(params_json)),
        sections::params_hash.eq(Some(params_hash)),
        sections::updated_at.eq(at),
    ))
    .execute(c)
}

pub fn set_cancelled(
    c: &mut DbConn,
    id: &SectionId,
    from: SectionState,
    reason: &str,
    at: i64,
) -> QueryResult<usize> {
    diesel::update(sections::table.find(id).filter(sections::state.eq(from)))
        .set((
            sections::state.eq(SectionState::Cancelled),
            sections::cancel_reason.eq(Some(reason)),
            sections::updated_at.eq(at),
        ))
        .execute(c)
}

/// Public search over published sections, newest deadline first.
pub struct SectionQuery<'a> {
    pub text: Option<&'a str>,
    pub category: Option<Category>,
    pub state: Option<SectionState>,
    pub limit: i64,
    pub offset: i64,
}

pub fn search_public(
    c: &mut DbConn,
    q: &SectionQuery<'_>,
) -> QueryResult<(Vec<(SectionRow, ProjectRow)>, i64)> {
    let build = || {
        let mut b = sections::table
            .inner_join(projects::table)
            .filter(sections::state.ne(SectionState::Draft))
            .into_boxed();
        if let Some(t) = q.text {
            let like = format!(
                "%{}%",
                t.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            b = b.filter(
                sections::name
                    .like(like.clone())
                    .escape('\\')
                    .or(sections::code.like(like.clone()).escape('\\'))
                    .or(projects::name.like(like.clone()).escape('\\'))
                    .or(projects::code.like(like).escape('\\')),
            );
        }
        if let Some(cat) = q.category {
            b = b.filter(projects::category.eq(cat));
        }
        if let Some(s) = q.state {
            b = b.filter(sections::state.eq(s));
        }
        b
    };
    let total: i64 = build().count().get_result(c)?;
    let rows = build()
        .select((SectionRow::as_select(), ProjectRow::as_select()))
        .order((sections::deadline_at.desc(), sections::id.asc()))
        .limit(q.limit)
        .offset(q.offset)
        .load(c)?;
    Ok((rows, total))
}

pub fn custodians(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<(i32, UserId)>> {
    section_custodians::table
        .filter(section_custodians::section_id.eq(section_id))
        .select((section_custodians::position, section_custodians::user_id))
        .order(section_custodians::position.asc())
        .load(c)
}

pub fn set_custodians(c: &mut DbConn, section_id: &SectionId, users: &[UserId]) -> QueryResult<()> {
    diesel::delete(section_custodians::table.filter(section_custodians::section_id.eq(section_id)))
        .execute(c)?;
    for (i, u) in users.iter().enumerate() {
        diesel::insert_into(section_custodians::table)
            .values((
                section_custodians::section_id.eq(section_id),
                section_custodians::position.eq(i as i32 + 1),
                section_custodians::user_id.eq(u),
            ))
            .execute(c)?;
    }
    Ok(())
}

pub fn is_custodian(c: &mut DbConn, section_id: &SectionId, user_id: &UserId) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        section_custodians::table
            .filter(section_custodians::section_id.eq(section_id))
            .filter(section_custodians::user_id.eq(user_id)),
    ))
    .get_result(c)
}

pub fn insert_document(c: &mut DbConn, row: &DocumentRow) -> QueryResult<()> {
    diesel::insert_into(documents::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn documents_of(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<DocumentRow>> {
    documents::table
        .filter(documents::section_id.eq(section_id))
        .select(DocumentRow::as_select())
        .order((documents::created_at.asc(), documents::id.asc()))
        .load(c)
}

pub fn find_document(
    c: &mut DbConn,
    section_id: &SectionId,
    id: &DocumentId,
) -> QueryResult<Option<DocumentRow>> {
    documents::table
        .find(id)
        .filter(documents::section_id.eq(section_id))
        .select(DocumentRow::as_select())
        .first(c)
        .optional()
}

pub fn delete_document(
    c: &mut DbConn,
    section_id: &SectionId,
    id: &DocumentId,
) -> QueryResult<usize> {
    diesel::delete(
        documents::table
            .find(id)
            .filter(documents::section_id.eq(section_id))
            .filter(documents::amendment_id.is_null()),
    )
    .execute(c)
}

/// Documents uploaded after publication and not yet attached to an amendment.
pub fn pending_amendment_documents(
    c: &mut DbConn,
    section_id: &SectionId,
    ids: &[DocumentId],
) -> QueryResult<Vec<DocumentRow>> {
    documents::table
        .filter(documents::section_id.eq(section_id))
        .filter(documents::id.eq_any(ids))
        .filter(documents::amendment_id.is_null())
        .select(DocumentRow::as_select())
        .load(c)
}

pub fn attach_documents(
    c: &mut DbConn,
    ids: &[DocumentId],
    amendment_id: &AmendmentId,
) -> QueryResult<usize> {
    diesel::update(documents::table.filter(documents::id.eq_any(ids)))
        .set(documents::amendment_id.eq(Some(amendment_id)))
        .execute(c)
}

pub fn insert_amendment(c: &mut DbConn, row: &AmendmentRow) -> QueryResult<()> {
    diesel::insert_into(amendments::table)
        .values(row)
        .execute(c)
        .map(|_| ())
}

pub fn amendments_of(c: &mut DbConn, section_id: &SectionId) -> QueryResult<Vec<AmendmentRow>> {
    amendments::table
        .filter(amendments::section_id.eq(section_id))
        .select(AmendmentRow::as_select())
        .order(amendments::number.asc())
        .load(c)
}

/// Registers a bidder organisation for a section under blind tags (see
/// `crypto::atrest`); false if it already was.
pub fn register_bidder(
    c: &mut DbConn,
    id: &RegistrationId,
    section_tag: &str,
    member_tag: &str,
    record: &str,
    at: i64,
) -> QueryResult<bool> {
    let exists: bool = diesel::select(diesel::dsl::exists(
        section_registrations::table.filter(section_registrations::member_tag.eq(member_tag)),
    ))
    .get_result(c)?;
    if exists {
        return Ok(false);
    }
    diesel::insert_into(section_registrations::table)
        .values((
            section_registrations::id.eq(id),
            section_registrations::section_tag.eq(section_tag),
            section_registrations::member_tag.eq(member_tag),
            section_registrations::record.eq(record),
            section_registrations::created_at.eq(at),
        ))
        .execute(c)?;
    Ok(true)
}

/// The sealed registration records of a section: `(row id, record)`.
pub fn registrations(c: &mut DbConn, section_tag: &str) -> QueryResult<Vec<(String, String)>> {
    section_registrations::table
        .filter(section_registrations::section_tag.eq(section_tag))
        .select((section_registrations::id, section_registrations::record))
        .order(section_registrations::created_at.asc())
        .load(c)
}

/// Keeps a published version of the parameters, exactly as hashed.
pub fn insert_params_version(
    c: &mut DbConn,
    section_id: &SectionId,
    version: i32,
    json: &str,
    hash: &str,
    at: i64,
) -> QueryResult<()> {
    diesel::insert_into(section_params::table)
        .values((
            section_params::section_id.eq(section_id),
            section_params::version.eq(version),
            section_params::params_json.eq(json),
            section_params::params_hash.eq(hash),
            section_params::published_at.eq(at),
        ))
        .execute(c)
        .map(|_| ())
}

/// Every published version: `(version, json, hash, published_at)`.
pub fn params_versions(
    c: &mut DbConn,
    section_id: &SectionId,
) -> QueryResult<Vec<(i32, String, String, i64)>> {
    section_params::table
        .filter(section_params::section_id.eq(section_id))
        .select((
            section_params::version,
            section_params::params_json,
            section_params::params_hash,
            section_params::published_at,
        ))
        .order(section_params::version.asc())
        .load(c)
}
