//! The public side of a sealed section's bids: its manifest with its place
//! in the log, and each envelope's inclusion proof in the manifest's tree.

use serde::Serialize;
use utoipa::ToSchema;

use super::seal::Manifest;
use crate::crypto::merkle;
use crate::crypto::translog::{self as fmt, Checkpoint, LogPosition, SignedCheckpoint};
use crate::db::bids as repo;
use crate::domain::ids::SectionId;
use crate::error::{AppError, AppResult};
use crate::service::{translog, Services};

/// The manifest and the proof that it is in the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManifestView {
    pub manifest: Manifest,
    pub log: LogPosition,
}

/// The manifest of a sealed section and its position in the log.
pub async fn manifest(svc: &Services, section_id: SectionId) -> AppResult<ManifestView> {
    svc.db
        .run(move |c| {
            let m =
                repo::manifest(c, &section_id)?.ok_or_else(|| AppError::not_found("manifest"))?;
            let cp = crate::db::translog::latest_checkpoint(c)?
                .ok_or_else(|| AppError::not_found("checkpoint"))?;
            let proof = translog::inclusion_in(c, m.log_idx as u64, cp.size as u64)?;
            let leaf: serde_json::Value =
                serde_json::from_str(&m.manifest).map_err(AppError::internal)?;
            let manifest: Manifest =
                serde_json::from_value(leaf.clone()).map_err(AppError::internal)?;
            Ok(ManifestView {
                log: LogPosition {
                    index: m.log_idx as u64,
                    leaf,
                    inclusion_proof: proof,
                    checkpoint: SignedCheckpoint {
                        checkpoint: Checkpoint {
                            log: fmt::LOG_NAME.into(),
                            size: cp.size as u64,
                            root: cp.root,
                            at_ms: cp.at,
                        },
                        signature: cp.signature,
                    },
                },
                manifest,
            })
        })
        .await
}

/// An envelope hash's inclusion proof in the manifest's Merkle tree.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManifestProof {
    pub envelope_hash: String,
    pub index: u64,
    pub size: u64,
    pub root: String,
    pub proof: Vec<String>,
}

/// The inclusion proof of one envelope hash in a section's manifest tree.
pub async fn manifest_proof(
    svc: &Services,
    section_id: SectionId,
    envelope_hash: String,
) -> AppResult<ManifestProof> {
    svc.db
        .run(move |c| {
            let m =
                repo::manifest(c, &section_id)?.ok_or_else(|| AppError::not_found("manifest"))?;
            let manifest: Manifest =
                serde_json::from_str(&m.manifest).map_err(AppError::internal)?;
            let hashes: Vec<String> = manifest.bids.into_iter().map(|b| b.envelope_hash).collect();
            let index = hashes
                .iter()
                .position(|h| *h == envelope_hash)
                .ok_or_else(|| AppError::not_found("envelope in the manifest"))?;
            let leaves: Vec<merkle::Hash> = hashes
                .iter()
                .map(|h| merkle::leaf_hash(&crate::crypto::from_hex(h).unwrap_or_default()))
                .collect();
            let proof = merkle::inclusion_proof(
                &mut merkle::InMemory(&leaves),
                index as u64,
                leaves.len() as u64,
            )
            .map_err(AppError::internal)?;
            Ok(ManifestProof {
                envelope_hash,
                index: index as u64,
                size: leaves.len() as u64,
                root: m.root,
                proof: proof.iter().map(hex::encode).collect(),
            })
        })
        .await
}
