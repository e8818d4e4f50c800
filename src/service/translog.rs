//! The transparency log: appending leaves in the caller's transaction (with
//! a platform-signed checkpoint for every new size), and the read side —
//! checkpoints, entries, inclusion and consistency proofs.

use serde::Serialize;
use serde_json::Value;

use super::Services;
use crate::crypto::merkle::{self, Hash, Subtrees};
use crate::crypto::translog::{self as fmt, Checkpoint, LogPosition, SignedCheckpoint};
use crate::db::translog::{self as repo, CheckpointRow, DbTree, LeafRow};
use crate::db::DbConn;
use crate::domain::ids::SectionId;
use crate::error::{AppError, AppResult};

fn to_signed(row: CheckpointRow) -> SignedCheckpoint {
    SignedCheckpoint {
        checkpoint: Checkpoint {
            log: fmt::LOG_NAME.into(),
            size: row.size as u64,
            root: row.root,
            at_ms: row.at,
        },
        signature: row.signature,
    }
}

/// Appends `leaf` inside the caller's transaction and returns its signed
/// position. `section_id` is recorded only for leaves that are public now.
pub fn append(
    svc: &Services,
    c: &mut DbConn,
    leaf: &Value,
    kind: &str,
    section_id: Option<&SectionId>,
    at: i64,
) -> AppResult<LogPosition> {
    let idx = repo::next_index(c)?;
    let hash = fmt::leaf_hash(leaf);
    repo::append(
        c,
        &LeafRow {
            idx,
            leaf: String::from_utf8(fmt::leaf_bytes(leaf)).expect("JCS is UTF-8"),
            kind: kind.into(),
            section_id: section_id.cloned(),
            at,
        },
        &hash,
    )?;
    let size = idx as u64 + 1;
    let mut tree = DbTree::new(c);
    let root = tree.subtree(0, size);
    let proof = merkle::inclusion_proof(&mut tree, idx as u64, size).map_err(AppError::internal)?;
    let (root, proof) = tree.finish((root, proof))?;
    let signed = SignedCheckpoint::sign(
        Checkpoint {
            log: fmt::LOG_NAME.into(),
            size,
            root: hex::encode(root),
            at_ms: at,
        },
        &svc.platform_key,
    );
    repo::put_checkpoint(
        c,
        &CheckpointRow {
            size: size as i64,
            root: signed.checkpoint.root.clone(),
            at,
            signature: signed.signature.clone(),
        },
    )?;
    Ok(LogPosition {
        index: idx as u64,
        leaf: leaf.clone(),
        inclusion_proof: proof.iter().map(hex::encode).collect(),
        checkpoint: signed,
    })
}

pub async fn checkpoint(svc: &Services, size: Option<u64>) -> AppResult<SignedCheckpoint> {
    svc.db
        .run(move |c| {
            let row = match size {
                Some(s) => repo::checkpoint(c, s as i64)?,
                None => repo::latest_checkpoint(c)?,
            };
            row.map(to_signed)
                .ok_or_else(|| AppError::not_found("checkpoint"))
        })
        .await
}

/// One leaf of the log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub index: i64,
    pub leaf: crate::domain::opaque::LogLeaf,
}

pub async fn entries(svc: &Services, start: i64, end: i64) -> AppResult<Vec<Entry>> {
    if start < 0 || end <= start || end - start > 1000 {
        return Err(AppError::bad_request(
            "start ≥ 0, end > start, at most 1000 entries at once",
        ));
    }
    svc.db
        .run(move |c| {
            repo::leaves(c, start, end)?
                .into_iter()
                .map(|l| {
                    Ok(Entry {
                        index: l.idx,
                        leaf: crate::domain::opaque::LogLeaf(
                            serde_json::from_str(&l.leaf).map_err(AppError::internal)?,
                        ),
                    })
                })
                .collect()
        })
        .await
}

fn hexes(v: Vec<Hash>) -> Vec<String> {
    v.iter().map(hex::encode).collect()
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn inclusion_in(c: &mut DbConn, index: u64, size: u64) -> AppResult<Vec<String>> {
    let current = repo::size(c)? as u64;
    if size > current || index >= size {
        return Err(AppError::bad_request(format!(
            "need index < size ≤ {current}"
        )));
    }
    let mut tree = DbTree::new(c);
    let p = merkle::inclusion_proof(&mut tree, index, size).map_err(AppError::internal)?;
    Ok(hexes(tree.finish(p)?))
}

pub fn consistency_in(c: &mut DbConn, first: u64, second: u64) -> AppResult<Vec<String>> {
    let current = repo::size(c)? as u64;
    if first == 0 || first > second || second > current {
        return Err(AppError::bad_request(format!(
            "need 0 < first ≤ second ≤ {current}"
        )));
    }
    let mut tree = DbTree::new(c);
    let p = merkle::consistency_proof(&mut tree, first, second).map_err(AppError::internal)?;
    Ok(hexes(tree.finish(p)?))
}

pub async fn inclusion(svc: &Services, index: u64, size: u64) -> AppResult<Vec<String>> {
    svc.db.run(move |c| inclusion_in(c, index, size)).await
}

pub async fn consistency(svc: &Services, first: u64, second: u64) -> AppResult<Vec<String>> {
    svc.db.run(move |c| consistency_in(c, first, second)).await
}
