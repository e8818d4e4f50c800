//! The published parameters (`kaibiao-section-params/1`): everything a
//! bidder's client needs to seal a bid for a section, and everything a
//! verifier needs to check it. Built from the section's rows at publication
//! and at each amendment; canonicalised with JCS; its SHA-256 is the
//! `params_hash` every envelope names.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{evaluation_of, summary_fields_of};
use crate::crypto::{self, jcs};
use crate::db::keys as keys_repo;
use crate::db::sections::{self as repo, DocumentRow, ProjectRow, SectionRow};
use crate::db::DbConn;
use crate::domain::decimal::Money;
use crate::domain::evaluation::EvaluationSpec;
use crate::domain::ids::UserId;
use crate::domain::section::{Category, DecryptionMode, SummaryField};
use crate::error::{AppError, AppResult};
use crate::service::Services;

/// Format tag of the published parameters document.
pub const PARAMS_FORMAT: &str = "kaibiao-section-params/1";

/// A custodian as the parameters name it: its position among the Shamir
/// shares, its identity key and the X25519 key bids are sealed to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ParamsCustodian {
    pub position: i32,
    pub user_id: UserId,
    pub identity_key: String,
    pub section_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ParamsDocument {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub sha256: String,
}

/// The published parameters. Instants are integer milliseconds since the
/// Unix epoch (UTC).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SectionParams {
    pub format: String,
    pub params_version: i32,
    pub section_id: String,
    pub section_code: String,
    pub section_name: String,
    pub project_id: String,
    pub project_code: String,
    pub project_name: String,
    pub category: Category,
    pub centre_id: String,
    pub tenderer_id: String,
    pub published_at_ms: i64,
    pub deadline_ms: i64,
    pub grace_ms: i64,
    pub decryption_mode: DecryptionMode,
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

    /// The parameters of a published section, as stored.
    pub fn of(s: &SectionRow) -> AppResult<SectionParams> {
        let json = s
            .params_json
            .as_deref()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("published without params")))?;
        serde_json::from_str(json).map_err(AppError::internal)
    }
}

/// Which version of the parameters is being published, and its schedule.
pub(super) struct Revision {
    pub version: i32,
    pub deadline: i64,
    pub published_at: i64,
}

/// Builds the parameters document from the section's current rows.
pub(super) fn build(
    svc: &Services,
    c: &mut DbConn,
    (s, p): (&SectionRow, &ProjectRow),
    rev: Revision,
    documents: &[DocumentRow],
) -> AppResult<SectionParams> {
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
        params_version: rev.version,
        section_id: s.id.to_string(),
        section_code: s.code.clone(),
        section_name: s.name.clone(),
        project_id: p.id.to_string(),
        project_code: p.code.clone(),
        project_name: p.name.clone(),
        category: p.category,
        centre_id: p.centre_org_id.to_string(),
        tenderer_id: p.tenderer_org_id.to_string(),
        published_at_ms: rev.published_at,
        deadline_ms: rev.deadline,
        grace_ms: s.grace_secs * 1000,
        decryption_mode: s.decryption_mode,
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
                id: d.id.to_string(),
                name: d.name.clone(),
                size: d.size,
                sha256: d.sha256.clone(),
            })
            .collect(),
        platform_key: svc.platform_public_hex(),
    })
}

/// Documents the public may fetch: those named in the current parameters.
pub(super) fn published_documents(
    s: &SectionRow,
    docs: Vec<DocumentRow>,
) -> AppResult<Vec<DocumentRow>> {
    if s.params_json.is_none() {
        return Ok(Vec::new());
    }
    let params = SectionParams::of(s)?;
    Ok(docs
        .into_iter()
        .filter(|d| params.documents.iter().any(|p| p.id == d.id.as_str()))
        .collect())
}
