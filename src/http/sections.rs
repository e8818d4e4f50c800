//! Projects and sections: drafting, publication, amendments, cancellation,
//! documents, registration, and the section's record.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::extract::{As, Authed, Bidders, Hosts, MaybeAuthed, Signed};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::{projects, sections, Services};
use crate::storage::BlobError;

type Svc = web::Data<Services>;
type Id = web::Path<String>;

pub async fn list_projects(svc: Svc, auth: Authed) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(projects::list_mine(&svc, &auth.0).await?))
}

pub async fn create_project(
    svc: Svc,
    signed: Signed<Hosts, projects::NewProject>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Created().json(projects::create(&svc, &signed.0, signed.1).await?))
}

pub async fn get_project(svc: Svc, auth: Authed, id: Id) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(projects::get(&svc, &auth.0, id.into_inner()).await?))
}

pub async fn create_section(
    svc: Svc,
    signed: Signed<Hosts, sections::SectionDraft>,
    id: Id,
) -> AppResult<HttpResponse> {
    let v = sections::create(&svc, &signed.0, id.into_inner(), signed.1).await?;
    Ok(HttpResponse::Created().json(v))
}

pub async fn get_section(svc: Svc, auth: Authed, id: Id) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(sections::get(&svc, &auth.0, id.into_inner()).await?))
}

pub async fn update_section(
    svc: Svc,
    signed: Signed<Hosts, sections::SectionDraft>,
    id: Id,
) -> AppResult<HttpResponse> {
    let v = sections::update_draft(&svc, &signed.0, id.into_inner(), signed.1).await?;
    Ok(HttpResponse::Ok().json(v))
}

pub async fn publish(svc: Svc, auth: As<Hosts>, id: Id) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(sections::publish(&svc, &auth.0, id.into_inner()).await?))
}

pub async fn amend(
    svc: Svc,
    signed: Signed<Hosts, sections::AmendmentRequest>,
    id: Id,
) -> AppResult<HttpResponse> {
    let v = sections::amend(&svc, &signed.0, id.into_inner(), signed.1).await?;
    Ok(HttpResponse::Created().json(v))
}

pub async fn cancel(
    svc: Svc,
    signed: Signed<Hosts, sections::CancelRequest>,
    id: Id,
) -> AppResult<HttpResponse> {
    let v = sections::cancel(&svc, &signed.0, id.into_inner(), signed.1).await?;
    Ok(HttpResponse::Ok().json(v))
}

pub async fn register_bidder(svc: Svc, auth: As<Bidders>, id: Id) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(sections::register_bidder(&svc, &auth.0, id.into_inner()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    name: String,
}

/// Streams a tender document into the blob store. The caller is authorised
/// before a byte of the body is read.
pub async fn upload_document(
    svc: Svc,
    auth: As<Hosts>,
    id: Id,
    q: web::Query<UploadQuery>,
    req: HttpRequest,
    payload: web::Payload,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    sections::authorize_upload(&svc, &auth.0, id.clone()).await?;
    let max = svc.config.server.max_document_bytes;
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 100 && v.is_ascii())
        .unwrap_or("application/octet-stream")
        .to_string();
    let blob = svc
        .blobs
        .put_stream(payload, max)
        .await
        .map_err(|e| match e {
            BlobError::TooLarge(n) => too_large(n),
            BlobError::Interrupted => {
                AppError::bad_request("the upload was interrupted; send it again")
            }
            BlobError::Io(io) => AppError::unavailable(io),
        })?;
    if blob.size == 0 {
        return Err(AppError::invalid_field("body", "the document is empty"));
    }
    let doc = sections::NewDocument {
        name: q.into_inner().name,
        content_type,
    };
    let v = sections::add_document(&svc, &auth.0, id, doc, blob.sha256, blob.size).await?;
    Ok(HttpResponse::Created().json(v))
}

fn too_large(max: u64) -> AppError {
    AppError::new(
        ErrorCode::PayloadTooLarge,
        format!("documents are limited to {max} bytes"),
    )
}

pub async fn delete_document(
    svc: Svc,
    auth: As<Hosts>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (id, doc) = path.into_inner();
    sections::delete_document(&svc, &auth.0, id, doc).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn download_document(
    svc: Svc,
    auth: Authed,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (id, doc) = path.into_inner();
    let d = sections::document_for(&svc, Some(auth.0.user), id, doc).await?;
    super::public::stream_document(&svc, d).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct After {
    #[serde(default)]
    after: i64,
}

pub async fn events(
    svc: Svc,
    auth: Authed,
    id: Id,
    q: web::Query<After>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok()
        .json(sections::events_for(&svc, &auth.0, id.into_inner(), q.after).await?))
}

pub async fn audit(svc: Svc, auth: Authed, id: Id) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(sections::audit_for(&svc, &auth.0, id.into_inner()).await?))
}

/// Used by the public router: the same download for anyone when published.
pub async fn public_document(
    svc: Svc,
    who: MaybeAuthed,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (id, doc) = path.into_inner();
    let d = sections::document_for(&svc, who.0, id, doc).await?;
    super::public::stream_document(&svc, d).await
}
