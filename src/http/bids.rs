//! Sealed-bid submission, and a sealed section's manifest and transcript.

use actix_web::web;
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{As, Bidders, Signed, Upload};
use super::respond::{CreatedOrSeen, Json};
use crate::crypto::envelope::{SignedEnvelope, SignedWithdrawal};
use crate::domain::ids::SectionId;
use crate::error::AppResult;
use crate::service::bids::{self, ManifestProof, ManifestView, SubmissionView, UploadResult};
use crate::service::{transcript, Services};
use crate::transcript::Transcript;

type Svc = web::Data<Services>;

pub async fn submit(
    svc: Svc,
    signed: Signed<Bidders, SignedEnvelope>,
) -> AppResult<CreatedOrSeen<SubmissionView>> {
    let r = bids::submit_envelope(&svc, &signed.0, signed.1).await?;
    Ok(CreatedOrSeen {
        created: r.created,
        body: r.submission,
    })
}

pub async fn list(svc: Svc, auth: As<Bidders>) -> AppResult<Json<Vec<SubmissionView>>> {
    Ok(Json(bids::list_mine(&svc, &auth.0).await?))
}

pub async fn status(
    svc: Svc,
    auth: As<Bidders>,
    hash: web::Path<String>,
) -> AppResult<Json<SubmissionView>> {
    Ok(Json(bids::status(&svc, &auth.0, hash.into_inner()).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Offset {
    /// Where this upload starts: the part's stored length (0 for a new part).
    #[serde(default)]
    offset: u64,
}

/// Streams part bytes from `offset`; authorised before the body is read.
pub async fn upload(
    svc: Svc,
    auth: As<Bidders>,
    path: web::Path<(String, String)>,
    q: web::Query<Offset>,
    upload: Upload,
) -> AppResult<Json<UploadResult>> {
    let (hash, part) = path.into_inner();
    let r = bids::upload_part(&svc, &auth.0, hash, part, q.offset, upload.body).await?;
    Ok(Json(r))
}

pub async fn withdraw(
    svc: Svc,
    signed: Signed<Bidders, SignedWithdrawal>,
    hash: web::Path<String>,
) -> AppResult<Json<SubmissionView>> {
    Ok(Json(
        bids::withdraw(&svc, &signed.0, hash.into_inner(), signed.1).await?,
    ))
}

pub async fn manifest(svc: Svc, id: web::Path<SectionId>) -> AppResult<Json<ManifestView>> {
    Ok(Json(bids::manifest(&svc, id.into_inner()).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeQuery {
    /// The envelope hash to prove.
    envelope_hash: String,
}

pub async fn manifest_proof(
    svc: Svc,
    id: web::Path<SectionId>,
    q: web::Query<EnvelopeQuery>,
) -> AppResult<Json<ManifestProof>> {
    let p = bids::manifest_proof(&svc, id.into_inner(), q.into_inner().envelope_hash).await?;
    Ok(Json(p))
}

pub async fn transcript(svc: Svc, id: web::Path<SectionId>) -> AppResult<Json<Transcript>> {
    Ok(Json(transcript::export(&svc, id.into_inner()).await?))
}
