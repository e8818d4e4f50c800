//! What each audience sees of a section — its host, tenderer, supervisor and
//! custodians ([`SectionView`]), anyone ([`PublicSectionView`], and the
//! search's [`PublicSectionSummary`]) — and how each is built from the rows.

use serde::Serialize;
use utoipa::ToSchema;

use super::params::published_documents;
use super::{evaluation_of, summary_fields_of};
use crate::db::identity as identity_repo;
use crate::db::keys as keys_repo;
use crate::db::sections::{self as repo, AmendmentRow, DocumentRow, ProjectRow, SectionRow};
use crate::db::DbConn;
use crate::domain::decimal::Money;
use crate::domain::evaluation::EvaluationSpec;
use crate::domain::identity::KeyPurpose;
use crate::domain::ids::{AmendmentId, DocumentId, OrgId, ProjectId, SectionId, UserId};
use crate::domain::section::{AmendmentKind, Category, DecryptionMode, SectionState, SummaryField};
use crate::domain::time::Timestamp;
use crate::error::AppResult;
use crate::service::projects::{project_view, ProjectView};

/// A section in a list (a project's sections).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SectionSummary {
    pub id: SectionId,
    pub project_id: ProjectId,
    pub code: String,
    pub name: String,
    pub state: SectionState,
    pub deadline: Option<Timestamp>,
    pub published_at: Option<Timestamp>,
}

impl From<SectionRow> for SectionSummary {
    fn from(s: SectionRow) -> Self {
        Self {
            id: s.id,
            project_id: s.project_id,
            code: s.code,
            name: s.name,
            state: s.state,
            deadline: s.deadline_at.map(Timestamp::from_millis),
            published_at: s.published_at.map(Timestamp::from_millis),
        }
    }
}

/// A tender document (招标文件) and its SHA-256.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentView {
    pub id: DocumentId,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    /// The amendment that published it, for documents published after the notice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amendment_id: Option<AmendmentId>,
    pub uploaded_at: Timestamp,
}

impl From<DocumentRow> for DocumentView {
    fn from(d: DocumentRow) -> Self {
        Self {
            id: d.id,
            name: d.name,
            content_type: d.content_type,
            size: d.size,
            sha256: d.sha256,
            amendment_id: d.amendment_id,
            uploaded_at: Timestamp::from_millis(d.created_at),
        }
    }
}

/// A published amendment (澄清/修改).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AmendmentView {
    pub id: AmendmentId,
    pub number: i32,
    pub kind: AmendmentKind,
    pub title: String,
    pub body: String,
    pub old_deadline: Timestamp,
    pub new_deadline: Timestamp,
    /// The hash of the parameters this amendment published.
    pub params_hash: String,
    pub published_at: Timestamp,
}

impl From<AmendmentRow> for AmendmentView {
    fn from(a: AmendmentRow) -> Self {
        Self {
            id: a.id,
            number: a.number,
            kind: a.kind,
            title: a.title,
            body: a.body,
            old_deadline: Timestamp::from_millis(a.old_deadline),
            new_deadline: Timestamp::from_millis(a.new_deadline),
            params_hash: a.params_hash,
            published_at: Timestamp::from_millis(a.created_at),
        }
    }
}

/// A custodian (密钥保管人) of the section and the keys it registered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustodianView {
    pub position: i32,
    pub user_id: UserId,
    pub display_name: String,
    pub organisation: Option<String>,
    pub identity_key: Option<String>,
    pub section_key: Option<String>,
}

/// What everyone who may see a section sees of it: the notice.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SectionNotice {
    pub id: SectionId,
    pub code: String,
    pub name: String,
    pub description: String,
    pub state: SectionState,
    pub deadline: Option<Timestamp>,
    pub deadline_shanghai: Option<String>,
    pub published_at: Option<Timestamp>,
    pub window_minutes: i64,
    pub decryption_mode: DecryptionMode,
    pub threshold: i32,
    pub min_bidders: i32,
    pub ceiling_price: Option<Money>,
    pub evaluation: Option<EvaluationSpec>,
    pub summary_fields: Vec<SummaryField>,
    pub documents: Vec<DocumentView>,
    pub amendments: Vec<AmendmentView>,
    pub params_version: i32,
    pub params_hash: Option<String>,
    pub cancel_reason: Option<String>,
}

/// What hosts, tenderers, supervisors and custodians see of a section.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SectionView {
    #[serde(flatten)]
    pub notice: SectionNotice,
    pub project: ProjectView,
    pub custodians: Vec<CustodianView>,
    pub grace_seconds: i64,
    pub last_seq: i64,
    pub updated_at: Timestamp,
}

/// What anyone sees of a published section.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicSectionView {
    #[serde(flatten)]
    pub notice: SectionNotice,
    pub project: PublicProject,
    pub custodian_count: usize,
}

/// A project as the public sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicProject {
    pub id: ProjectId,
    pub code: String,
    pub name: String,
    pub category: Category,
    /// The trading centre's name.
    pub centre: String,
    /// The tenderer's name.
    pub tenderer: String,
}

/// One page of the public search.
#[derive(Debug, Serialize, ToSchema)]
pub struct SectionPage {
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
    pub items: Vec<PublicSectionSummary>,
}

/// A published section in the public search.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicSectionSummary {
    pub id: SectionId,
    pub code: String,
    pub name: String,
    pub state: SectionState,
    pub deadline: Option<Timestamp>,
    pub deadline_shanghai: Option<String>,
    pub published_at: Option<Timestamp>,
    pub project: PublicProject,
}

fn custodian_views(c: &mut DbConn, section_id: &SectionId) -> AppResult<Vec<CustodianView>> {
    let keys = keys_repo::section_keys(c, section_id)?;
    let mut out = Vec::new();
    for (position, user_id) in repo::custodians(c, section_id)? {
        let user = identity_repo::find_user(c, &user_id)?;
        let org = match user.as_ref().and_then(|u| u.org_id.clone()) {
            Some(o) => identity_repo::find_org(c, &o)?.map(|o| o.name),
            None => None,
        };
        let identity = keys_repo::active_key(c, user_id.as_str(), KeyPurpose::CustodianIdentity)?;
        out.push(CustodianView {
            position,
            display_name: user.map(|u| u.display_name).unwrap_or_default(),
            organisation: org,
            identity_key: identity.map(|k| k.public_key),
            section_key: keys
                .iter()
                .find(|k| k.user_id == user_id)
                .map(|k| k.public_key.clone()),
            user_id,
        });
    }
    Ok(out)
}

pub(super) fn notice(
    s: SectionRow,
    documents: Vec<DocumentRow>,
    amendments: Vec<AmendmentRow>,
) -> AppResult<SectionNotice> {
    Ok(SectionNotice {
        evaluation: evaluation_of(&s)?,
        summary_fields: summary_fields_of(&s)?,
        documents: documents.into_iter().map(Into::into).collect(),
        amendments: amendments.into_iter().map(Into::into).collect(),
        deadline: s.deadline_at.map(Timestamp::from_millis),
        deadline_shanghai: s
            .deadline_at
            .map(|t| Timestamp::from_millis(t).shanghai_rfc3339()),
        published_at: s.published_at.map(Timestamp::from_millis),
        window_minutes: s.window_secs / 60,
        ceiling_price: s.ceiling_price_fen.map(Money::from_fen),
        id: s.id,
        code: s.code,
        name: s.name,
        description: s.description,
        state: s.state,
        decryption_mode: s.decryption_mode,
        threshold: s.threshold,
        min_bidders: s.min_bidders,
        params_version: s.params_version,
        params_hash: s.params_hash,
        cancel_reason: s.cancel_reason,
    })
}

/// The staff's view of a section.
pub(super) fn section_view(c: &mut DbConn, s: SectionRow, p: ProjectRow) -> AppResult<SectionView> {
    let custodians = custodian_views(c, &s.id)?;
    let documents = repo::documents_of(c, &s.id)?;
    let amendments = repo::amendments_of(c, &s.id)?;
    let (grace_seconds, last_seq, updated_at) = (
        s.grace_secs,
        s.last_seq,
        Timestamp::from_millis(s.updated_at),
    );
    Ok(SectionView {
        notice: notice(s, documents, amendments)?,
        project: project_view(c, p)?,
        custodians,
        grace_seconds,
        last_seq,
        updated_at,
    })
}

pub(super) fn public_project(c: &mut DbConn, p: &ProjectRow) -> AppResult<PublicProject> {
    let name_of = |c: &mut DbConn, id: &OrgId| -> AppResult<String> {
        Ok(identity_repo::find_org(c, id)?
            .map(|o| o.name)
            .unwrap_or_default())
    };
    Ok(PublicProject {
        id: p.id.clone(),
        code: p.code.clone(),
        name: p.name.clone(),
        category: p.category,
        centre: name_of(c, &p.centre_org_id)?,
        tenderer: name_of(c, &p.tenderer_org_id)?,
    })
}

/// The public's view of a published section.
pub(super) fn public_view(
    c: &mut DbConn,
    s: SectionRow,
    p: ProjectRow,
) -> AppResult<PublicSectionView> {
    let documents = published_documents(&s, repo::documents_of(c, &s.id)?)?;
    let amendments = repo::amendments_of(c, &s.id)?;
    let custodian_count = repo::custodians(c, &s.id)?.len();
    Ok(PublicSectionView {
        project: public_project(c, &p)?,
        notice: notice(s, documents, amendments)?,
        custodian_count,
    })
}
