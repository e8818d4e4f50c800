//! The transparency log (RFC 9162): checkpoints, leaves, and proofs.

use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::respond::Json;
use crate::crypto::translog::SignedCheckpoint;
use crate::error::AppResult;
use crate::service::translog::{self, Entry};
use crate::service::Services;

type Svc = web::Data<Services>;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Size {
    /// A past size of the log; the latest when absent.
    size: Option<u64>,
}

pub async fn checkpoint(svc: Svc, q: web::Query<Size>) -> AppResult<Json<SignedCheckpoint>> {
    Ok(Json(translog::checkpoint(&svc, q.size).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// The first index.
    start: i64,
    /// One past the last index (at most 1000 entries at once).
    end: i64,
}

pub async fn entries(svc: Svc, q: web::Query<Range>) -> AppResult<Json<Vec<Entry>>> {
    Ok(Json(translog::entries(&svc, q.start, q.end).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    index: u64,
    size: u64,
}

/// An inclusion proof.
#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    /// The audit path, hex hashes.
    pub proof: Vec<String>,
}

pub async fn inclusion(svc: Svc, q: web::Query<InclusionQuery>) -> AppResult<Json<InclusionProof>> {
    let proof = translog::inclusion(&svc, q.index, q.size).await?;
    Ok(Json(InclusionProof {
        index: q.index,
        size: q.size,
        proof,
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    first: u64,
    second: u64,
}

/// A consistency proof between two sizes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    pub proof: Vec<String>,
}

pub async fn consistency(
    svc: Svc,
    q: web::Query<ConsistencyQuery>,
) -> AppResult<Json<ConsistencyProof>> {
    let proof = translog::consistency(&svc, q.first, q.second).await?;
    Ok(Json(ConsistencyProof {
        first: q.first,
        second: q.second,
        proof,
    }))
}
