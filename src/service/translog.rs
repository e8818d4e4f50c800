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

/// Whose leaf it is, and whether the log may say so now.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Public now: the leaf names its section, and the section's leaves are
    /// found by it.
    Section(&'a SectionId),
    /// In the section's chain, but secret until the deadline (a
    /// commitment): stored under no section.
    Sealed(&'a SectionId),
}

impl Scope<'_> {
    fn section(&self) -> &SectionId {
        match self {
            Scope::Section(s) | Scope::Sealed(s) => s,
        }
    }
}

/// The head of a section's chain as stored: sealed at rest under a blind
/// tag, so the table counts no section's leaves (ADR 8).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredHead {
    seq: u64,
    prev: String,
    index: u64,
}

fn chain_state(svc: &Services, c: &mut DbConn, tag: &str) -> AppResult<fmt::ChainState> {
    let Some(sealed) = repo::chain_head(c, tag)? else {
        return Ok(fmt::ChainState::default());
    };
    let h: StoredHead = svc
        .atrest
        .open_json(tag, &sealed)
        .map_err(AppError::internal)?;
    Ok(fmt::ChainState {
        seq: h.seq,
        prev: crate::crypto::hex_array(&h.prev)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("malformed chain head")))?,
        index: h.index,
    })
}

/// Appends `leaf` inside the caller's transaction, as the next leaf of its
/// section's chain (the log adds its `chain` tag), and returns its signed
/// position.
pub fn append(
    svc: &Services,
    c: &mut DbConn,
    leaf: &Value,
    kind: &str,
    scope: Scope<'_>,
    at: i64,
) -> AppResult<LogPosition> {
    let (idx, leaf) = put_leaf(svc, c, leaf, kind, Some(scope), at)?;
    let checkpoint = sign_checkpoint(svc, c, at)?;
    position(c, idx, leaf, checkpoint)
}

/// Stores `leaf` as the next one, without a checkpoint: chained into its
/// section's chain when `scope` names one, else (a cover leaf, ADR 9, or a
/// key's registration or retirement, PROTOCOL §2.1) with a random tag in no
/// chain. Returns its index and the leaf as stored.
pub(crate) fn put_leaf(
    svc: &Services,
    c: &mut DbConn,
    leaf: &Value,
    kind: &str,
    scope: Option<Scope<'_>>,
    at: i64,
) -> AppResult<(u64, Value)> {
    let idx = repo::next_index(c)?;
    let mut leaf = leaf.clone();
    match scope {
        Some(scope) => {
            let section = scope.section();
            let tag = svc.atrest.tag("log-chain", &[section.as_str()]);
            let mut chain = chain_state(svc, c, &tag)?;
            chain.extend(
                &svc.atrest.chain_key(section.as_str()),
                &mut leaf,
                idx as u64,
            );
            repo::put_chain_head(
                c,
                &tag,
                &svc.atrest.seal_json(
                    &tag,
                    &StoredHead {
                        seq: chain.seq,
                        prev: hex::encode(chain.prev),
                        index: chain.index,
                    },
                ),
            )?;
        }
        None => {
            leaf["chain"] = Value::from(hex::encode(crate::crypto::random_bytes::<32>()));
        }
    }
    repo::append(
        c,
        &LeafRow {
            idx,
            leaf: String::from_utf8(fmt::leaf_bytes(&leaf)).expect("JCS is UTF-8"),
            kind: kind.into(),
            section_id: match scope {
                Some(Scope::Section(s)) => Some(s.clone()),
                Some(Scope::Sealed(_)) | None => None,
            },
            at,
        },
        &fmt::leaf_hash(&leaf),
    )?;
    Ok((idx as u64, leaf))
}

/// Signs and stores the checkpoint of the log as it is now.
pub(crate) fn sign_checkpoint(
    svc: &Services,
    c: &mut DbConn,
    at: i64,
) -> AppResult<SignedCheckpoint> {
    let size = repo::size(c)? as u64;
    let mut tree = DbTree::new(c);
    let root = tree.subtree(0, size);
    let root = tree.finish(root)?;
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
    Ok(signed)
}

/// Leaf `index`'s position under `checkpoint`, with its inclusion proof.
pub(crate) fn position(
    c: &mut DbConn,
    index: u64,
    leaf: Value,
    checkpoint: SignedCheckpoint,
) -> AppResult<LogPosition> {
    let proof = inclusion_in(c, index, checkpoint.checkpoint.size)?;
    Ok(LogPosition {
        index,
        leaf,
        inclusion_proof: proof,
        checkpoint,
    })
}

/// A fresh salted commitment to a bid event (PROTOCOL §7.2): its leaf names
/// no section; the opening goes into the bidder's promise and receipt and,
/// at the deadline, into the transcript. The leaf is appended by a flush
/// (ADR 9).
pub fn opening(event: Value) -> fmt::Opening {
    fmt::Opening {
        salt: hex::encode(crate::crypto::random_bytes::<32>()),
        event,
    }
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
