//! Sections (标段/包): drafting, publication with validated settings,
//! amendments (澄清/修改), cancellation, tender documents, bidder
//! registration, and the public read side.
//!
//! At publication the section's settings are frozen into its *published
//! parameters*: one JSON document, canonicalised with JCS, whose SHA-256 is
//! the `params_hash` every sealed bid names. An amendment publishes a new
//! version of the parameters (and so a new hash).

use serde::{Deserialize, Serialize};

use super::policy::{require_runs, standing, Standing};
use super::projects::{project_view, ProjectView};
use super::{confidential, text_field, Actor, AuthUser, Services};
use crate::crypto::{self, jcs};
use crate::db::identity as identity_repo;
use crate::db::keys as keys_repo;
use crate::db::sections::{
    self as repo, AmendmentRow, DocumentRow, ProjectRow, SectionDraftChanges, SectionQuery,
    SectionRow,
};
use crate::db::{audit, events, jobs, outbox, DbConn};
use crate::domain::decimal::Money;
use crate::domain::evaluation::EvaluationSpec;
use crate::domain::identity::{KeyPurpose, Role};
use crate::domain::ids::{AmendmentId, DocumentId, SectionId};
use crate::domain::problems::Problems;
use crate::domain::section::{
    limits, AmendmentKind, Category, DecryptionMode, SectionState, SummaryField,
};
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::notify::templates::{self, SectionRef};

/// The job kind the chronograph runs at a section's deadline.
pub const DEADLINE_JOB: &str = "section.deadline";
/// The job that logs the manifest when a section has a grace period for uploads.
pub const MANIFEST_JOB: &str = "section.manifest";
/// Format tag of the published parameters document.
pub const PARAMS_FORMAT: &str = "kaibiao-section-params/1";

// ------------------------------------------------------------------ input

/// The editable settings of a section (create and replace).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionDraft {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Bid deadline = opening time (投标截止时间即开标时间).
    #[serde(default)]
    pub deadline: Option<Timestamp>,
    #[serde(default)]
    pub window_minutes: Option<i64>,
    #[serde(default)]
    pub decryption_mode: Option<DecryptionMode>,
    /// Custodian user ids, in position order.
    #[serde(default)]
    pub custodians: Vec<String>,
    #[serde(default)]
    pub threshold: Option<i32>,
    #[serde(default)]
    pub min_bidders: Option<i32>,
    /// Time after the deadline to finish part uploads whose envelope arrived
    /// before it (default 0).
    #[serde(default)]
    pub grace_seconds: Option<i64>,
    /// 最高投标限价, if any.
    #[serde(default)]
    pub ceiling_price: Option<Money>,
    #[serde(default)]
    pub evaluation: Option<EvaluationSpec>,
    #[serde(default)]
    pub summary_fields: Option<Vec<SummaryField>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmendmentRequest {
    pub kind: AmendmentKind,
    pub title: String,
    pub body: String,
    /// A later deadline, if the amendment moves it. Never earlier.
    #[serde(default)]
    pub deadline: Option<Timestamp>,
    /// Documents uploaded since publication that this amendment publishes.
    #[serde(default)]
    pub documents: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub reason: String,
}

// ------------------------------------------------------------------ views

#[derive(Debug, Clone, Serialize)]
pub struct SectionSummary {
    pub id: String,
    pub project_id: String,
    pub code: String,
    pub name: String,
    pub state: String,
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

#[derive(Debug, Clone, Serialize)]
pub struct DocumentView {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amendment_id: Option<String>,
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

#[derive(Debug, Clone, Serialize)]
pub struct AmendmentView {
    pub id: String,
    pub number: i32,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub old_deadline: Timestamp,
    pub new_deadline: Timestamp,
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

#[derive(Debug, Clone, Serialize)]
pub struct CustodianView {
    pub position: i32,
    pub user_id: String,
    pub display_name: String,
    pub organisation: Option<String>,
    pub identity_key: Option<String>,
    pub section_key: Option<String>,
}

/// What everyone who may see a section sees of it: the notice.
#[derive(Debug, Clone, Serialize)]
pub struct SectionNotice {
    pub id: String,
    pub code: String,
    pub name: String,
    pub description: String,
    pub state: String,
    pub deadline: Option<Timestamp>,
    pub deadline_shanghai: Option<String>,
    pub published_at: Option<Timestamp>,
    pub window_minutes: i64,
    pub decryption_mode: String,
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
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct PublicSectionView {
    #[serde(flatten)]
    pub notice: SectionNotice,
    pub project: PublicProject,
    pub custodian_count: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublicProject {
    pub id: String,
    pub code: String,
    pub name: String,
    pub category: String,
    pub centre: String,
    pub tenderer: String,
}

#[derive(Debug, Serialize)]
pub struct SectionPage {
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
    pub items: Vec<PublicSectionSummary>,
}

#[derive(Debug, Serialize)]
pub struct PublicSectionSummary {
    pub id: String,
    pub code: String,
    pub name: String,
    pub state: String,
    pub deadline: Option<Timestamp>,
    pub deadline_shanghai: Option<String>,
    pub published_at: Option<Timestamp>,
    pub project: PublicProject,
}

// ------------------------------------------------------ published params

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParamsCustodian {
    pub position: i32,
    pub user_id: String,
    pub identity_key: String,
    pub section_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParamsDocument {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub sha256: String,
}

/// The published parameters: everything a bidder's client needs to seal a
/// bid for this section, and everything a verifier needs to check it.
/// Instants are integer milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SectionParams {
    pub format: String,
    pub params_version: i32,
    pub section_id: String,
    pub section_code: String,
    pub section_name: String,
    pub project_id: String,
    pub project_code: String,
    pub project_name: String,
    pub category: String,
    pub centre_id: String,
    pub tenderer_id: String,
    pub published_at_ms: i64,
    pub deadline_ms: i64,
    pub grace_ms: i64,
    pub decryption_mode: String,
    pub window_ms: i64,
    pub threshold: i32,
    pub custodians: Vec<ParamsCustodian>,
    pub min_bidders: i32,
    pub ceiling_price: Option<Money>,
    pub summary_fields: Vec<SummaryField>,
    pub evaluation: EvaluationSpec,
    pub documents: Vec<ParamsDocument>,
    /// The platform's Ed25519 public key that signs receipts and checkpoints.
    pub platform_key: String,
}

impl SectionParams {
    /// `(canonical JSON text, SHA-256 hex)`.
    pub fn seal(&self) -> (String, String) {
        let bytes = jcs::to_vec(self).expect("params canonicalise");
        let hash = crypto::sha256_hex(&bytes);
        (String::from_utf8(bytes).expect("JCS is UTF-8"), hash)
    }
}

// ---------------------------------------------------------------- helpers

fn default_threshold(n: usize) -> i32 {
    (n / 2 + 1) as i32
}

fn load(c: &mut DbConn, id: &str) -> AppResult<(SectionRow, ProjectRow)> {
    repo::section_with_project(c, id)?.ok_or_else(|| AppError::not_found("section"))
}

fn state_of(s: &SectionRow) -> AppResult<SectionState> {
    SectionState::from_db(&s.state).map_err(AppError::internal)
}

fn not_draft() -> AppError {
    AppError::new(
        ErrorCode::SectionNotDraft,
        "the section is published; change it through an amendment (澄清/修改)",
    )
}

/// Checks a draft's fields one by one (not yet their consistency as a
/// whole, which publication checks), listing every problem.
fn draft_changes(
    svc: &Services,
    d: &SectionDraft,
    now: i64,
) -> Result<(SectionDraftChanges, Vec<String>), AppError> {
    let mut p = Problems::new();
    let rules = &svc.config.rules;
    let code = text_field(&mut p, "code", &d.code, 1, 64);
    let name = text_field(&mut p, "name", &d.name, 2, limits::MAX_NAME);
    let description = text_field(&mut p, "description", &d.description, 0, limits::MAX_TEXT);
    let window_secs = d.window_minutes.unwrap_or(rules.default_window_minutes) * 60;
    p.check(
        (limits::MIN_WINDOW_SECS..=limits::MAX_WINDOW_SECS).contains(&window_secs),
        "window_minutes",
        "the decryption window lasts 1 minute to 24 hours",
    );
    let grace_secs = d.grace_seconds.unwrap_or(0);
    p.check(
        (0..=limits::MAX_GRACE_SECS).contains(&grace_secs),
        "grace_seconds",
        "0 to 3600 seconds",
    );
    let min_bidders = d.min_bidders.unwrap_or(rules.default_min_bidders);
    p.check(
        (1..=limits::MAX_MIN_BIDDERS).contains(&min_bidders),
        "min_bidders",
        "1 to 100",
    );
    let mut seen = std::collections::HashSet::new();
    p.check(
        d.custodians.len() <= limits::MAX_CUSTODIANS,
        "custodians",
        format!("at most {} custodians", limits::MAX_CUSTODIANS),
    );
    for (i, u) in d.custodians.iter().enumerate() {
        p.check(
            seen.insert(u.as_str()),
            format!("custodians[{i}]"),
            "listed twice",
        );
    }
    let threshold = d
        .threshold
        .unwrap_or_else(|| default_threshold(d.custodians.len()));
    if !d.custodians.is_empty() {
        p.check(
            threshold >= 2 && threshold as usize <= d.custodians.len(),
            "threshold",
            format!(
                "must be at least 2 (no single custodian may open bids) and at most the {} custodians",
                d.custodians.len()
            ),
        );
    }
    if let Some(m) = d.ceiling_price {
        p.check(m > Money::ZERO, "ceiling_price", "must be more than 0");
    }
    if let Some(e) = &d.evaluation {
        e.validate("evaluation", &mut p);
    }
    let summary = d
        .summary_fields
        .clone()
        .unwrap_or_else(SummaryField::defaults);
    SummaryField::validate_all(&summary, "summary_fields", &mut p);
    if !p.is_empty() {
        return Err(AppError::validation(p.into_vec()));
    }
    Ok((
        SectionDraftChanges {
            code,
            name,
            description,
            deadline_at: d.deadline.map(|t| t.millis()),
            window_secs,
            decryption_mode: d
                .decryption_mode
                .unwrap_or(DecryptionMode::Custodians)
                .as_str()
                .into(),
            threshold,
            min_bidders,
            grace_secs,
            ceiling_price_fen: d.ceiling_price.map(|m| m.fen()),
            evaluation: d
                .evaluation
                .as_ref()
                .map(|e| serde_json::to_string(e).expect("spec serialises")),
            summary_fields: serde_json::to_string(&summary).expect("fields serialise"),
            updated_at: now,
        },
        d.custodians.clone(),
    ))
}

/// Custodians must be active custodian users.
fn check_custodian_users(c: &mut DbConn, ids: &[String], p: &mut Problems) -> AppResult<()> {
    for (i, id) in ids.iter().enumerate() {
        match identity_repo::find_user(c, id)? {
            Some(u) if u.role == Role::Custodian.as_str() && u.disabled_at.is_none() => {}
            Some(_) => p.push(format!("custodians[{i}]"), "not an active custodian"),
            None => p.push(format!("custodians[{i}]"), "no such user"),
        }
    }
    Ok(())
}

fn summary_fields_of(s: &SectionRow) -> AppResult<Vec<SummaryField>> {
    serde_json::from_str(&s.summary_fields).map_err(AppError::internal)
}

fn evaluation_of(s: &SectionRow) -> AppResult<Option<EvaluationSpec>> {
    s.evaluation
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(AppError::internal)
}

fn custodian_views(c: &mut DbConn, section_id: &str) -> AppResult<Vec<CustodianView>> {
    let keys = keys_repo::section_keys(c, section_id)?;
    let mut out = Vec::new();
    for (position, user_id) in repo::custodians(c, section_id)? {
        let user = identity_repo::find_user(c, &user_id)?;
        let org = match user.as_ref().and_then(|u| u.org_id.clone()) {
            Some(o) => identity_repo::find_org(c, &o)?.map(|o| o.name),
            None => None,
        };
        let identity = keys_repo::active_key(c, &user_id, KeyPurpose::CustodianIdentity.as_str())?;
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

fn notice(
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

fn section_view(c: &mut DbConn, s: SectionRow, p: ProjectRow) -> AppResult<SectionView> {
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

fn public_project(c: &mut DbConn, p: &ProjectRow) -> AppResult<PublicProject> {
    let name_of = |c: &mut DbConn, id: &str| -> AppResult<String> {
        Ok(identity_repo::find_org(c, id)?
            .map(|o| o.name)
            .unwrap_or_default())
    };
    Ok(PublicProject {
        id: p.id.clone(),
        code: p.code.clone(),
        name: p.name.clone(),
        category: p.category.clone(),
        centre: name_of(c, &p.centre_org_id)?,
        tenderer: name_of(c, &p.tenderer_org_id)?,
    })
}

/// Documents the public may fetch: those named in the current parameters.
fn published_documents(s: &SectionRow, docs: Vec<DocumentRow>) -> AppResult<Vec<DocumentRow>> {
    let Some(json) = &s.params_json else {
        return Ok(Vec::new());
    };
    let params: SectionParams = serde_json::from_str(json).map_err(AppError::internal)?;
    Ok(docs
        .into_iter()
        .filter(|d| params.documents.iter().any(|p| p.id == d.id))
        .collect())
}

fn public_view(c: &mut DbConn, s: SectionRow, p: ProjectRow) -> AppResult<PublicSectionView> {
    let documents = published_documents(&s, repo::documents_of(c, &s.id)?)?;
    let amendments = repo::amendments_of(c, &s.id)?;
    let custodian_count = repo::custodians(c, &s.id)?.len();
    Ok(PublicSectionView {
        project: public_project(c, &p)?,
        notice: notice(s, documents, amendments)?,
        custodian_count,
    })
}

/// Which version of the parameters is being published, and its schedule.
struct Revision {
    version: i32,
    deadline: i64,
    published_at: i64,
}

/// Builds the parameters document from the section's current rows.
fn build_params(
    svc: &Services,
    c: &mut DbConn,
    (s, p): (&SectionRow, &ProjectRow),
    rev: Revision,
    documents: &[DocumentRow],
) -> AppResult<SectionParams> {
    let Revision {
        version,
        deadline,
        published_at,
    } = rev;
    let keys = keys_repo::section_keys(c, &s.id)?;
    let mut custodians = Vec::new();
    for (position, user_id) in repo::custodians(c, &s.id)? {
        let section_key = keys
            .iter()
            .find(|k| k.user_id == user_id)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("custodian without section key")))?;
        let identity = keys_repo::find_key(c, &section_key.identity_key_id)?.ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("section key without identity key"))
        })?;
        custodians.push(ParamsCustodian {
            position,
            user_id,
            identity_key: identity.public_key,
            section_key: section_key.public_key.clone(),
        });
    }
    Ok(SectionParams {
        format: PARAMS_FORMAT.into(),
        params_version: version,
        section_id: s.id.clone(),
        section_code: s.code.clone(),
        section_name: s.name.clone(),
        project_id: p.id.clone(),
        project_code: p.code.clone(),
        project_name: p.name.clone(),
        category: p.category.clone(),
        centre_id: p.centre_org_id.clone(),
        tenderer_id: p.tenderer_org_id.clone(),
        published_at_ms: published_at,
        deadline_ms: deadline,
        grace_ms: s.grace_secs * 1000,
        decryption_mode: s.decryption_mode.clone(),
        window_ms: s.window_secs * 1000,
        threshold: s.threshold,
        custodians,
        min_bidders: s.min_bidders,
        ceiling_price: s.ceiling_price_fen.map(Money::from_fen),
        summary_fields: summary_fields_of(s)?,
        evaluation: evaluation_of(s)?.ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("published section without evaluation"))
        })?,
        documents: documents
            .iter()
            .map(|d| ParamsDocument {
                id: d.id.clone(),
                name: d.name.clone(),
                size: d.size,
                sha256: d.sha256.clone(),
            })
            .collect(),
        platform_key: svc.platform_public_hex(),
    })
}

/// The minimum days between publication and deadline for this project.
pub fn min_days(svc: &Services, p: &ProjectRow) -> i64 {
    let by_law = p.must_tender_by_law
        && matches!(
            Category::parse(&p.category),
            Some(Category::Construction) | Some(Category::Procurement)
        );
    if by_law {
        svc.config.rules.min_days_by_law
    } else {
        svc.config.rules.min_days_other
    }
}

/// Every reason the section cannot be published now.
fn publication_problems(
    svc: &Services,
    c: &mut DbConn,
    s: &SectionRow,
    p: &ProjectRow,
    now: i64,
) -> AppResult<Vec<crate::domain::problems::Problem>> {
    let mut pr = Problems::new();
    match s.deadline_at {
        None => pr.push("deadline", "a deadline (= opening time) is required"),
        Some(d) => {
            let days = min_days(svc, p);
            let earliest = now + days * 86_400_000;
            if d <= now {
                pr.push("deadline", "the deadline has already passed");
            } else if d < earliest {
                pr.push(
                    "deadline",
                    format!(
                        "must be at least {days} days after publication: no earlier than {}",
                        Timestamp::from_millis(earliest).shanghai_rfc3339()
                    ),
                );
            }
        }
    }
    let mode = DecryptionMode::from_db(&s.decryption_mode).map_err(AppError::internal)?;
    let custodians = repo::custodians(c, &s.id)?;
    if mode.needs_custodians() && custodians.is_empty() {
        pr.push(
            "custodians",
            format!("the {mode} mode needs custodians holding the opening keys"),
        );
    }
    if !custodians.is_empty() && (s.threshold < 2 || s.threshold as usize > custodians.len()) {
        pr.push(
            "threshold",
            format!("must lie between 2 and {}", custodians.len()),
        );
    }
    let ids: Vec<String> = custodians.iter().map(|(_, u)| u.clone()).collect();
    check_custodian_users(c, &ids, &mut pr)?;
    let keys = keys_repo::section_keys(c, &s.id)?;
    for (i, u) in ids.iter().enumerate() {
        match keys.iter().find(|k| &k.user_id == u) {
            None => pr.push(
                format!("custodians[{i}]"),
                "has not registered a key for this section",
            ),
            Some(k) => {
                // The identity key that signed it must still be the active one.
                let active = keys_repo::active_key(c, u, KeyPurpose::CustodianIdentity.as_str())?;
                if active.map(|a| a.id) != Some(k.identity_key_id.clone()) {
                    pr.push(
                        format!("custodians[{i}]"),
                        "rotated their identity key since registering the section key; they must register it again",
                    );
                }
            }
        }
    }
    match evaluation_of(s)? {
        None => pr.push(
            "evaluation",
            "the evaluation method and criteria are required",
        ),
        Some(e) => e.validate("evaluation", &mut pr),
    }
    if repo::documents_of(c, &s.id)?.is_empty() {
        pr.push("documents", "upload the tender documents (招标文件) first");
    }
    Ok(pr.into_vec())
}

/// A bidder's registration for a section, sealed at rest.
#[derive(Debug, Serialize, Deserialize)]
struct Registration {
    section_id: String,
    org_id: String,
    user_id: String,
}

/// Mails every active, verified user of every organisation registered for a
/// section, inside the caller's transaction.
pub(crate) fn notify_registered(
    svc: &Services,
    c: &mut DbConn,
    section_id: &str,
    mail: &templates::Mail,
    now: i64,
) -> AppResult<usize> {
    let mut n = 0;
    let tag = confidential::section(&svc.atrest, section_id);
    for (row_id, record) in repo::registrations(c, &tag)? {
        let r: Registration = svc
            .atrest
            .open_json(&row_id, &record)
            .map_err(AppError::internal)?;
        for u in identity_repo::users_of_org(c, &r.org_id)? {
            if u.disabled_at.is_none() && u.email_verified_at.is_some() {
                outbox::enqueue(c, mail.kind, &u.email, &mail.subject, &mail.body, now)?;
                n += 1;
            }
        }
    }
    Ok(n)
}

// -------------------------------------------------------------- use cases

pub async fn create(
    svc: &Services,
    actor: &Actor,
    project_id: String,
    d: SectionDraft,
) -> AppResult<SectionView> {
    actor.require(&[Role::Host])?;
    let now = svc.now().millis();
    let who = actor.who();
    let user = actor.user.clone();
    let s2 = svc.clone();
    svc.db
        .write(move |c| {
            let p = repo::find_project(c, &project_id)?
                .ok_or_else(|| AppError::not_found("project"))?;
            let st = standing(c, &user, &p, None)?;
            if !st.runs {
                return Err(if st.can_view() {
                    AppError::forbidden("only the project's host may add sections")
                } else {
                    AppError::not_found("project")
                });
            }
            let (changes, custodians) = draft_changes(&s2, &d, now)?;
            let mut pr = Problems::new();
            check_custodian_users(c, &custodians, &mut pr)?;
            if !pr.is_empty() {
                return Err(AppError::validation(pr.into_vec()));
            }
            let row = SectionRow {
                id: SectionId::new().into_string(),
                project_id: p.id.clone(),
                code: changes.code,
                name: changes.name,
                description: changes.description,
                state: SectionState::Draft.as_str().into(),
                deadline_at: changes.deadline_at,
                published_at: None,
                window_secs: changes.window_secs,
                decryption_mode: changes.decryption_mode,
                threshold: changes.threshold,
                min_bidders: changes.min_bidders,
                grace_secs: changes.grace_secs,
                ceiling_price_fen: changes.ceiling_price_fen,
                evaluation: changes.evaluation,
                summary_fields: changes.summary_fields,
                params_version: 0,
                params_json: None,
                params_hash: None,
                cancel_reason: None,
                last_seq: 0,
                created_by: user.id.to_string(),
                created_at: now,
                updated_at: now,
            };
            repo::insert_section(c, &row).map_err(|e| {
                if crate::db::is_unique_violation(&e) {
                    AppError::conflict(
                        ErrorCode::Conflict,
                        "this project already has a section with this code",
                    )
                } else {
                    e.into()
                }
            })?;
            repo::set_custodians(c, &row.id, &custodians)?;
            events::append(
                c,
                &row.id,
                "section.created",
                &serde_json::json!({"code": row.code}),
                Some(user.id.as_str()),
                now,
            )?;
            audit::record(
                c,
                now,
                &who,
                "section.create",
                &row.id,
                &serde_json::json!({"project": p.id}),
            )?;
            section_view(c, row, p)
        })
        .await
}

pub async fn update_draft(
    svc: &Services,
    actor: &Actor,
    id: String,
    d: SectionDraft,
) -> AppResult<SectionView> {
    actor.require(&[Role::Host])?;
    let now = svc.now().millis();
    let who = actor.who();
    let user = actor.user.clone();
    let s2 = svc.clone();
    svc.db
        .write(move |c| {
            let (s, p) = load(c, &id)?;
            let st = standing(c, &user, &p, Some(&id))?;
            require_runs(&st, state_of(&s)?.is_public(), "edit")?;
            if state_of(&s)? != SectionState::Draft {
                return Err(not_draft());
            }
            let (changes, custodians) = draft_changes(&s2, &d, now)?;
            let mut pr = Problems::new();
            check_custodian_users(c, &custodians, &mut pr)?;
            if !pr.is_empty() {
                return Err(AppError::validation(pr.into_vec()));
            }
            if repo::update_draft(c, &id, &changes)? != 1 {
                return Err(not_draft());
            }
            repo::set_custodians(c, &id, &custodians)?;
            keys_repo::prune_section_keys(c, &id, &custodians)?;
            audit::record(c, now, &who, "section.edit", &id, &serde_json::json!({}))?;
            let (s, p) = load(c, &id)?;
            section_view(c, s, p)
        })
        .await
}

pub async fn get(svc: &Services, actor: &Actor, id: String) -> AppResult<SectionView> {
    let user = actor.user.clone();
    svc.db
        .run(move |c| {
            let (s, p) = load(c, &id)?;
            let st = standing(c, &user, &p, Some(&id))?;
            if !st.can_view() {
                return Err(if state_of(&s)?.is_public() {
                    AppError::forbidden("this view is for the section's host, tenderer, supervisor and custodians; see /api/public/sections")
                } else {
                    AppError::not_found("section")
                });
            }
            section_view(c, s, p)
        })
        .await
}

/// Publishes a draft. Exactly one of several concurrent calls wins (the
/// state change is a compare-and-set); the others get `invalid_transition`.
pub async fn publish(svc: &Services, actor: &Actor, id: String) -> AppResult<SectionView> {
    actor.require(&[Role::Host])?;
    let now = svc.now().millis();
    let who = actor.who();
    let user = actor.user.clone();
    let s2 = svc.clone();
    let view = svc
        .db
        .write(move |c| {
            let (s, p) = load(c, &id)?;
            let st = standing(c, &user, &p, Some(&id))?;
            require_runs(&st, state_of(&s)?.is_public(), "publish")?;
            if state_of(&s)? != SectionState::Draft {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    format!("the section is already {}", s.state),
                ));
            }
            let problems = publication_problems(&s2, c, &s, &p, now)?;
            if !problems.is_empty() {
                return Err(AppError::validation(problems));
            }
            let deadline = s.deadline_at.expect("checked above");
            let docs = repo::documents_of(c, &id)?;
            let rev = Revision {
                version: 1,
                deadline,
                published_at: now,
            };
            let params = build_params(&s2, c, (&s, &p), rev, &docs)?;
            let (json, hash) = params.seal();
            if repo::set_published(c, &id, now, &json, &hash)? != 1 {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    "the section was published by someone else",
                ));
            }
            repo::insert_params_version(c, &id, 1, &json, &hash, now)?;
            let leaf = serde_json::json!({
                "type": "section.published", "section_id": id, "params_version": 1,
                "params_hash": hash, "deadline_ms": deadline, "at_ms": now,
            });
            super::translog::append(&s2, c, &leaf, "section.published", Some(&id), now)?;
            jobs::schedule(c, &id, DEADLINE_JOB, deadline, now)?;
            events::append(
                c,
                &id,
                "section.published",
                &serde_json::json!({"params_hash": hash, "deadline_ms": deadline}),
                Some(user.id.as_str()),
                now,
            )?;
            audit::record(
                c,
                now,
                &who,
                "section.publish",
                &id,
                &serde_json::json!({"params_hash": hash}),
            )?;
            let (s, p) = load(c, &id)?;
            section_view(c, s, p)
        })
        .await?;
    svc.kick_workers();
    Ok(view)
}

pub async fn amend(
    svc: &Services,
    actor: &Actor,
    id: String,
    req: AmendmentRequest,
) -> AppResult<AmendmentView> {
    actor.require(&[Role::Host])?;
    let now = svc.now().millis();
    let who = actor.who();
    let user = actor.user.clone();
    let s2 = svc.clone();
    let view = svc
        .db
        .write(move |c| {
            let (s, p) = load(c, &id)?;
            let st = standing(c, &user, &p, Some(&id))?;
            require_runs(&st, state_of(&s)?.is_public(), "amend")?;
            let mut pr = Problems::new();
            let title = text_field(&mut pr, "title", &req.title, 2, limits::MAX_NAME);
            let body = text_field(&mut pr, "body", &req.body, 1, limits::MAX_TEXT);
            if !pr.is_empty() {
                return Err(AppError::validation(pr.into_vec()));
            }
            if state_of(&s)? != SectionState::Published {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    format!("amendments are published only before the deadline; the section is {}", s.state),
                ));
            }
            let old = s.deadline_at.expect("published sections have a deadline");
            if now >= old {
                return Err(AppError::new(ErrorCode::InvalidTransition, "the deadline has passed"));
            }
            let mut new = old;
            if let Some(d) = req.deadline {
                if d.millis() < old {
                    return Err(AppError::invalid_field("deadline", "an amendment may move the deadline later, never earlier"));
                }
                new = d.millis();
            }
            let min_left = s2.config.rules.amendment_min_days * 86_400_000;
            if new - now < min_left {
                new = now + min_left;
            }
            let pending = repo::pending_amendment_documents(c, &id, &req.documents)?;
            if pending.len() != req.documents.len() {
                return Err(AppError::invalid_field(
                    "documents",
                    "each must be a document uploaded to this section since publication and not yet published",
                ));
            }
            let number = repo::amendments_of(c, &id)?.len() as i32 + 1;
            let amendment_id = AmendmentId::new().into_string();
            let all_docs = published_documents(&s, repo::documents_of(c, &id)?)?
                .into_iter()
                .chain(pending)
                .collect::<Vec<_>>();
            let version = s.params_version + 1;
            let published_at = s.published_at.expect("published");
            let rev = Revision {
                version,
                deadline: new,
                published_at,
            };
            let params = build_params(&s2, c, (&s, &p), rev, &all_docs)?;
            let (json, hash) = params.seal();
            if repo::set_amended_params(c, &id, version, new, &json, &hash, now)? != 1 {
                return Err(AppError::new(ErrorCode::Conflict, "the section changed meanwhile; try again"));
            }
            let row = AmendmentRow {
                id: amendment_id,
                section_id: id.clone(),
                number,
                kind: req.kind.as_str().into(),
                title,
                body,
                old_deadline: old,
                new_deadline: new,
                params_hash: hash.clone(),
                created_by: user.id.to_string(),
                created_at: now,
            };
            repo::insert_amendment(c, &row)?;
            repo::attach_documents(c, &req.documents, &row.id)?;
            repo::insert_params_version(c, &id, version, &json, &hash, now)?;
            let leaf = serde_json::json!({
                "type": "section.amended", "section_id": id, "params_version": version,
                "params_hash": hash, "deadline_ms": new, "amendment": number, "at_ms": now,
            });
            super::translog::append(&s2, c, &leaf, "section.amended", Some(&id), now)?;
            jobs::schedule(c, &id, DEADLINE_JOB, new, now)?;
            events::append(
                c,
                &id,
                "section.amended",
                &serde_json::json!({"number": number, "params_hash": hash, "old_deadline_ms": old, "new_deadline_ms": new}),
                Some(user.id.as_str()),
                now,
            )?;
            let link = format!("{}/?section={}", s2.public_url, id);
            let mail = templates::amendment(
                &SectionRef {
                    project_name: &p.name,
                    section_code: &s.code,
                    section_name: &s.name,
                    link: &link,
                },
                number,
                &row.title,
                Timestamp::from_millis(old),
                Timestamp::from_millis(new),
            );
            let notified = notify_registered(&s2, c, &id, &mail, now)?;
            audit::record(
                c,
                now,
                &who,
                "section.amend",
                &id,
                &serde_json::json!({"number": number, "notified": notified, "deadline_moved": old != new}),
            )?;
            Ok(AmendmentView::from(row))
        })
        .await?;
    svc.kick_workers();
    Ok(view)
}

pub async fn cancel(
    svc: &Services,
    actor: &Actor,
    id: String,
    req: CancelRequest,
) -> AppResult<SectionView> {
    actor.require(&[Role::Host])?;
    let now = svc.now().millis();
    let who = actor.who();
    let user = actor.user.clone();
    let public_url = svc.public_url.clone();
    let s2 = svc.clone();
    let view = svc
        .db
        .write(move |c| {
            let (s, p) = load(c, &id)?;
            let from = state_of(&s)?;
            let st = standing(c, &user, &p, Some(&id))?;
            require_runs(&st, from.is_public(), "cancel")?;
            let mut pr = Problems::new();
            let reason = text_field(&mut pr, "reason", &req.reason, 2, 2000);
            if !pr.is_empty() {
                return Err(AppError::validation(pr.into_vec()));
            }
            if !from.can_become(SectionState::Cancelled) {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    format!("a section that is {from} cannot be cancelled"),
                ));
            }
            if repo::set_cancelled(c, &id, from.as_str(), &reason, now)? != 1 {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    "the section changed meanwhile; reload it",
                ));
            }
            jobs::cancel_pending(c, &id)?;
            events::append(
                c,
                &id,
                "section.cancelled",
                &serde_json::json!({"from": from.as_str(), "reason": reason}),
                Some(user.id.as_str()),
                now,
            )?;
            let link = format!("{public_url}/?section={id}");
            let mail = templates::cancelled(
                &SectionRef {
                    project_name: &p.name,
                    section_code: &s.code,
                    section_name: &s.name,
                    link: &link,
                },
                &reason,
            );
            let notified = notify_registered(&s2, c, &id, &mail, now)?;
            audit::record(
                c,
                now,
                &who,
                "section.cancel",
                &id,
                &serde_json::json!({"from": from.as_str(), "notified": notified}),
            )?;
            let (s, p) = load(c, &id)?;
            section_view(c, s, p)
        })
        .await?;
    svc.kick_workers();
    Ok(view)
}

/// A bidder obtains the tender documents and so registers for the section
/// (获取招标文件). Who and how many have registered is never disclosed.
pub async fn register_bidder(
    svc: &Services,
    actor: &Actor,
    id: String,
) -> AppResult<serde_json::Value> {
    actor.require(&[Role::Bidder])?;
    let org = actor.org()?.to_string();
    let now = svc.now().millis();
    // Who registered where is confidential: the audit record names neither.
    let who = audit::Who {
        actor_id: None,
        request_id: Some(actor.request_id.clone()),
    };
    let uid = actor.user.id.to_string();
    let s2 = svc.clone();
    svc.db
        .write(move |c| {
            let (s, _) = load(c, &id)?;
            let state = state_of(&s)?;
            if !state.is_public() {
                return Err(AppError::not_found("section"));
            }
            if state != SectionState::Published || s.deadline_at.is_some_and(|d| d <= now) {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    "registration closes at the deadline",
                ));
            }
            let row_id = crate::domain::ids::RegistrationId::new().into_string();
            let record = s2.atrest.seal_json(
                &row_id,
                &Registration {
                    section_id: id.clone(),
                    org_id: org.clone(),
                    user_id: uid,
                },
            );
            let new = repo::register_bidder(
                c,
                &row_id,
                &confidential::section(&s2.atrest, &id),
                &confidential::registration(&s2.atrest, &id, &org),
                &record,
                now,
            )?;
            if new {
                audit::record(
                    c,
                    now,
                    &who,
                    "registration.create",
                    &row_id,
                    &serde_json::json!({}),
                )?;
            }
            Ok(serde_json::json!({"section_id": id, "registered": true}))
        })
        .await
}

#[derive(Debug, Clone)]
pub struct NewDocument {
    pub name: String,
    pub content_type: String,
}

fn check_document_name(name: &str) -> AppResult<String> {
    let n = name.trim();
    let ok = !n.is_empty()
        && n.chars().count() <= 200
        && !n.contains(['/', '\\'])
        && !n.chars().any(char::is_control)
        && n != "."
        && n != "..";
    if ok {
        Ok(n.to_string())
    } else {
        Err(AppError::invalid_field(
            "name",
            "a file name of 1-200 characters without path separators",
        ))
    }
}

/// Authorises a document upload before any byte is read.
pub async fn authorize_upload(svc: &Services, actor: &Actor, id: String) -> AppResult<()> {
    actor.require(&[Role::Host])?;
    let user = actor.user.clone();
    svc.db
        .run(move |c| {
            let (s, p) = load(c, &id)?;
            let state = state_of(&s)?;
            let st = standing(c, &user, &p, Some(&id))?;
            require_runs(&st, state.is_public(), "upload documents")?;
            if !matches!(state, SectionState::Draft | SectionState::Published) {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    format!("documents cannot change once the section is {state}"),
                ));
            }
            Ok(())
        })
        .await
}

/// Records a document whose bytes are already in the blob store.
pub async fn add_document(
    svc: &Services,
    actor: &Actor,
    id: String,
    doc: NewDocument,
    sha256: String,
    size: u64,
) -> AppResult<DocumentView> {
    let name = check_document_name(&doc.name)?;
    let now = svc.now().millis();
    let who = actor.who();
    let user = actor.user.clone();
    svc.db
        .write(move |c| {
            let (s, p) = load(c, &id)?;
            let state = state_of(&s)?;
            let st = standing(c, &user, &p, Some(&id))?;
            require_runs(&st, state.is_public(), "upload documents")?;
            if !matches!(state, SectionState::Draft | SectionState::Published) {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    format!("documents cannot change once the section is {state}"),
                ));
            }
            let row = DocumentRow {
                id: DocumentId::new().into_string(),
                section_id: id.clone(),
                amendment_id: None,
                name,
                content_type: doc.content_type,
                size: size as i64,
                sha256,
                uploaded_by: user.id.to_string(),
                created_at: now,
            };
            repo::insert_document(c, &row)?;
            audit::record(
                c,
                now,
                &who,
                "section.document_add",
                &id,
                &serde_json::json!({"document": row.id, "sha256": row.sha256}),
            )?;
            Ok(DocumentView::from(row))
        })
        .await
}

pub async fn delete_document(
    svc: &Services,
    actor: &Actor,
    id: String,
    doc_id: String,
) -> AppResult<()> {
    actor.require(&[Role::Host])?;
    let now = svc.now().millis();
    let who = actor.who();
    let user = actor.user.clone();
    svc.db
        .write(move |c| {
            let (s, p) = load(c, &id)?;
            let state = state_of(&s)?;
            let st = standing(c, &user, &p, Some(&id))?;
            require_runs(&st, state.is_public(), "delete documents")?;
            let doc = repo::find_document(c, &id, &doc_id)?
                .ok_or_else(|| AppError::not_found("document"))?;
            let published = published_documents(&s, vec![doc.clone()])?;
            let deletable = match state {
                SectionState::Draft => true,
                SectionState::Published => published.is_empty() && doc.amendment_id.is_none(),
                _ => false,
            };
            if !deletable || repo::delete_document(c, &id, &doc_id)? != 1 {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    "a published document stays on the record; publish an amendment instead",
                ));
            }
            audit::record(
                c,
                now,
                &who,
                "section.document_delete",
                &id,
                &serde_json::json!({"document": doc_id}),
            )?;
            Ok(())
        })
        .await
}

/// A document for download, if the caller may have it.
pub async fn document_for(
    svc: &Services,
    user: Option<AuthUser>,
    id: String,
    doc_id: String,
) -> AppResult<DocumentView> {
    svc.db
        .run(move |c| {
            let (s, p) = load(c, &id)?;
            let st = match &user {
                Some(u) => standing(c, u, &p, Some(&id))?,
                None => Standing::default(),
            };
            let doc = repo::find_document(c, &id, &doc_id)?
                .ok_or_else(|| AppError::not_found("document"))?;
            if st.can_view() {
                return Ok(doc.into());
            }
            if !state_of(&s)?.is_public() {
                return Err(AppError::not_found("section"));
            }
            published_documents(&s, vec![doc])?
                .pop()
                .map(Into::into)
                .ok_or_else(|| AppError::not_found("document"))
        })
        .await
}

// ------------------------------------------------------------ public side

pub struct SearchParams {
    pub q: Option<String>,
    pub category: Option<Category>,
    pub state: Option<SectionState>,
    pub page: i64,
    pub per_page: i64,
}

pub async fn search_public(svc: &Services, q: SearchParams) -> AppResult<SectionPage> {
    if q.state == Some(SectionState::Draft) {
        return Err(AppError::invalid_field("state", "drafts are not public"));
    }
    let page = q.page.max(1);
    let per_page = q.per_page.clamp(1, 100);
    svc.db
        .run(move |c| {
            let text = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty());
            let (rows, total) = repo::search_public(
                c,
                &SectionQuery {
                    text,
                    category: q.category.map(|c| c.as_str()),
                    state: q.state.map(|s| s.as_str()),
                    limit: per_page,
                    offset: (page - 1) * per_page,
                },
            )?;
            let mut items = Vec::with_capacity(rows.len());
            for (s, p) in rows {
                items.push(PublicSectionSummary {
                    project: public_project(c, &p)?,
                    deadline: s.deadline_at.map(Timestamp::from_millis),
                    deadline_shanghai: s
                        .deadline_at
                        .map(|t| Timestamp::from_millis(t).shanghai_rfc3339()),
                    published_at: s.published_at.map(Timestamp::from_millis),
                    id: s.id,
                    code: s.code,
                    name: s.name,
                    state: s.state,
                });
            }
            Ok(SectionPage {
                total,
                page,
                per_page,
                items,
            })
        })
        .await
}

pub async fn public_detail(svc: &Services, id: String) -> AppResult<PublicSectionView> {
    svc.db
        .run(move |c| {
            let (s, p) = load(c, &id)?;
            if !state_of(&s)?.is_public() {
                return Err(AppError::not_found("section"));
            }
            public_view(c, s, p)
        })
        .await
}

/// The exact published parameters bytes (their SHA-256 is `params_hash`).
pub async fn public_params(svc: &Services, id: String) -> AppResult<(String, String)> {
    svc.db
        .run(move |c| {
            let s = repo::find_section(c, &id)?.ok_or_else(|| AppError::not_found("section"))?;
            match (s.params_json, s.params_hash) {
                (Some(j), Some(h)) => Ok((j, h)),
                _ => Err(AppError::not_found("section")),
            }
        })
        .await
}

#[derive(Debug, Serialize)]
pub struct EventView {
    pub seq: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    pub at: Timestamp,
}

/// The section's event record, for those who may view the section.
pub async fn events_for(
    svc: &Services,
    actor: &Actor,
    id: String,
    after: i64,
) -> AppResult<Vec<EventView>> {
    let user = actor.user.clone();
    svc.db
        .run(move |c| {
            let (s, p) = load(c, &id)?;
            let st = standing(c, &user, &p, Some(&id))?;
            if !st.can_view() {
                return Err(super::policy::deny(
                    state_of(&s)?.is_public(),
                    "read the event record",
                ));
            }
            Ok(events::since(c, &id, after, 1000)?
                .into_iter()
                .map(|e| EventView {
                    seq: e.seq,
                    kind: e.kind,
                    payload: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
                    at: Timestamp::from_millis(e.at),
                })
                .collect())
        })
        .await
}

#[derive(Debug, Serialize)]
pub struct AuditView {
    pub at: Timestamp,
    pub actor_id: Option<String>,
    pub action: String,
    pub request_id: Option<String>,
    pub detail: serde_json::Value,
}

/// The audit trail of a section: for its host and its supervisor.
pub async fn audit_for(svc: &Services, actor: &Actor, id: String) -> AppResult<Vec<AuditView>> {
    actor.require(&[Role::Host, Role::Supervisor])?;
    let user = actor.user.clone();
    svc.db
        .run(move |c| {
            let (s, p) = load(c, &id)?;
            let st = standing(c, &user, &p, Some(&id))?;
            if !(st.runs || st.supervises) {
                return Err(super::policy::deny(
                    state_of(&s)?.is_public() || st.can_view(),
                    "read the audit trail",
                ));
            }
            Ok(audit::recent(c, Some(&id), 1000)?
                .into_iter()
                .map(|a| AuditView {
                    at: Timestamp::from_millis(a.at),
                    actor_id: a.actor_id,
                    action: a.action,
                    request_id: a.request_id,
                    detail: serde_json::from_str(&a.detail).unwrap_or(serde_json::Value::Null),
                })
                .collect())
        })
        .await
}
