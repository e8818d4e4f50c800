//! Sealed-bid submission, the transparency log, manifests and transcripts.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::extract::{As, Bidders, Signed};
use crate::crypto::envelope::{SignedEnvelope, SignedWithdrawal};
use crate::error::AppResult;
use crate::service::{bids, transcript, translog, Services};

type Svc = web::Data<Services>;

pub async fn submit(svc: Svc, signed: Signed<Bidders, SignedEnvelope>) -> AppResult<HttpResponse> {
    let (new, v) = bids::submit_envelope(&svc, &signed.0, signed.1).await?;
    Ok(if new {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    }
    .json(v))
}

pub async fn list(svc: Svc, auth: As<Bidders>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(bids::list_mine(&svc, &auth.0).await?))
}

pub async fn status(
    svc: Svc,
    auth: As<Bidders>,
    hash: web::Path<String>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(bids::status(&svc, &auth.0, hash.into_inner()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offset {
    #[serde(default)]
    offset: u64,
}

/// Streams part bytes from `offset`; authorised before the body is read.
pub async fn upload(
    svc: Svc,
    auth: As<Bidders>,
    path: web::Path<(String, String)>,
    q: web::Query<Offset>,
    payload: web::Payload,
) -> AppResult<HttpResponse> {
    let (hash, part) = path.into_inner();
    let r = bids::upload_part(&svc, &auth.0, hash, part, q.offset, payload).await?;
    Ok(HttpResponse::Ok().json(r))
}

pub async fn withdraw(
    svc: Svc,
    signed: Signed<Bidders, SignedWithdrawal>,
    hash: web::Path<String>,
) -> AppResult<HttpResponse> {
    Ok(
        HttpResponse::Ok()
            .json(bids::withdraw(&svc, &signed.0, hash.into_inner(), signed.1).await?),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Size {
    size: Option<u64>,
}

pub async fn checkpoint(svc: Svc, q: web::Query<Size>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(translog::checkpoint(&svc, q.size).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    start: i64,
    end: i64,
}

pub async fn entries(svc: Svc, q: web::Query<Range>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(translog::entries(&svc, q.start, q.end).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    index: u64,
    size: u64,
}

pub async fn inclusion(svc: Svc, q: web::Query<InclusionQuery>) -> AppResult<HttpResponse> {
    let proof = translog::inclusion(&svc, q.index, q.size).await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({"index": q.index, "size": q.size, "proof": proof})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    first: u64,
    second: u64,
}

pub async fn consistency(svc: Svc, q: web::Query<ConsistencyQuery>) -> AppResult<HttpResponse> {
    let proof = translog::consistency(&svc, q.first, q.second).await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({"first": q.first, "second": q.second, "proof": proof})))
}

pub async fn manifest(svc: Svc, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(bids::manifest(&svc, id.into_inner()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeQuery {
    envelope_hash: String,
}

pub async fn manifest_proof(
    svc: Svc,
    id: web::Path<String>,
    q: web::Query<EnvelopeQuery>,
) -> AppResult<HttpResponse> {
    let p = bids::manifest_proof(&svc, id.into_inner(), q.into_inner().envelope_hash).await?;
    Ok(HttpResponse::Ok().json(p))
}

pub async fn transcript(svc: Svc, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(transcript::export(&svc, id.into_inner()).await?))
}
