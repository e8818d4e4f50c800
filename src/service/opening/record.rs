//! Reading the opening record (开标记录) once announced: the record, its
//! hash, the closing statement, and the signatures with the keys that made
//! them (keys rotate; the one that signed is found in the history).

use serde::Serialize;
use utoipa::ToSchema;

use super::load;
use crate::crypto::opening::{Closing, OpeningRecord};
use crate::db::keys as keys_repo;
use crate::db::opening as repo;
use crate::domain::identity::KeyPurpose;
use crate::domain::ids::SectionId;
use crate::error::{AppError, AppResult};
use crate::service::Services;

/// The opening record and its signatures.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordView {
    pub record: OpeningRecord,
    pub record_hash: String,
    pub closing: Option<Closing>,
    pub closing_hash: Option<String>,
    pub platform_signature: Option<String>,
    pub platform_key: String,
    pub countersignature: Option<String>,
    pub supervisor_key: Option<String>,
}

/// The key of the supervisor of record: the registered identity key that
/// made the countersignature on the closed record (keys rotate: the one
/// that signed is found in the countersigner's history).
pub(crate) fn countersigning_key(
    c: &mut crate::db::DbConn,
    o: &repo::OpeningRow,
) -> AppResult<Option<String>> {
    let closing: Option<Closing> = o
        .closing_json
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(AppError::internal)?;
    Ok(match (&o.countersigned_by, &o.countersignature, &closing) {
        (Some(u), Some(sig), Some(closing)) => keys_repo::key_history(c, u.as_str())?
            .into_iter()
            .filter(|k| k.purpose == KeyPurpose::SupervisorIdentity)
            .map(|k| k.public_key)
            .find(|k| closing.verify_countersignature(k, sig)),
        _ => None,
    })
}

/// The opening record of a section, once announced.
pub async fn record_of(svc: &Services, section_id: SectionId) -> AppResult<RecordView> {
    let platform_key = svc.platform_public_hex();
    svc.db
        .run(move |c| {
            load(c, &section_id)?;
            let o = repo::find(c, &section_id)?
                .filter(|o| o.record_json.is_some())
                .ok_or_else(|| AppError::not_found("opening record (not announced yet)"))?;
            let closing: Option<Closing> = o
                .closing_json
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(AppError::internal)?;
            let supervisor_key = countersigning_key(c, &o)?;
            Ok(RecordView {
                record: serde_json::from_str(o.record_json.as_deref().unwrap_or("{}"))
                    .map_err(AppError::internal)?,
                record_hash: o.record_hash.unwrap_or_default(),
                closing,
                closing_hash: o.closing_hash,
                platform_signature: o.platform_signature,
                platform_key,
                countersignature: o.countersignature,
                supervisor_key,
            })
        })
        .await
}
