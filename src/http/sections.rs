//! Projects and sections for their staff: drafting, publication,
//! amendments, cancellation, documents, registration, and the section's
//! record.

use actix_web::web;
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{As, Authed, Bidders, Hosts, MaybeAuthed, Signed, Upload};
use super::public::stream_document;
use super::respond::{Created, Download, Json, NoContent};
use crate::domain::ids::{DocumentId, ProjectId, SectionId};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::projects::{self, ProjectDetail, ProjectView};
use crate::service::sections::{
    self, AmendmentView, AuditView, DocumentView, EventView, RegistrationConfirmed, SectionView,
};
use crate::service::Services;
use crate::storage::BlobError;

type Svc = web::Data<Services>;
type Section = web::Path<SectionId>;
type Document = web::Path<(SectionId, DocumentId)>;

pub async fn list_projects(svc: Svc, auth: Authed) -> AppResult<Json<Vec<ProjectView>>> {
    Ok(Json(projects::list_mine(&svc, &auth.0).await?))
}

pub async fn create_project(
    svc: Svc,
    signed: Signed<Hosts, projects::NewProject>,
) -> AppResult<Created<ProjectView>> {
    Ok(Created(projects::create(&svc, &signed.0, signed.1).await?))
}

pub async fn get_project(
    svc: Svc,
    auth: Authed,
    id: web::Path<ProjectId>,
) -> AppResult<Json<ProjectDetail>> {
    Ok(Json(projects::get(&svc, &auth.0, id.into_inner()).await?))
}

pub async fn create_section(
    svc: Svc,
    signed: Signed<Hosts, sections::SectionDraft>,
    id: web::Path<ProjectId>,
) -> AppResult<Created<SectionView>> {
    Ok(Created(
        sections::create(&svc, &signed.0, id.into_inner(), signed.1).await?,
    ))
}

pub async fn get_section(svc: Svc, auth: Authed, id: Section) -> AppResult<Json<SectionView>> {
    Ok(Json(sections::get(&svc, &auth.0, id.into_inner()).await?))
}

pub async fn update_section(
    svc: Svc,
    signed: Signed<Hosts, sections::SectionDraft>,
    id: Section,
) -> AppResult<Json<SectionView>> {
    Ok(Json(
        sections::update_draft(&svc, &signed.0, id.into_inner(), signed.1).await?,
    ))
}

pub async fn publish(svc: Svc, auth: As<Hosts>, id: Section) -> AppResult<Json<SectionView>> {
    Ok(Json(
        sections::publish(&svc, &auth.0, id.into_inner()).await?,
    ))
}

pub async fn amend(
    svc: Svc,
    signed: Signed<Hosts, sections::AmendmentRequest>,
    id: Section,
) -> AppResult<Created<AmendmentView>> {
    Ok(Created(
        sections::amend(&svc, &signed.0, id.into_inner(), signed.1).await?,
    ))
}

pub async fn cancel(
    svc: Svc,
    signed: Signed<Hosts, sections::CancelRequest>,
    id: Section,
) -> AppResult<Json<SectionView>> {
    Ok(Json(
        sections::cancel(&svc, &signed.0, id.into_inner(), signed.1).await?,
    ))
}

pub async fn register_bidder(
    svc: Svc,
    auth: As<Bidders>,
    id: Section,
) -> AppResult<Json<RegistrationConfirmed>> {
    Ok(Json(
        sections::register_bidder(&svc, &auth.0, id.into_inner()).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The document's file name (1–200 characters, no path separators).
    name: String,
}

fn too_large(max: u64) -> AppError {
    AppError::new(
        ErrorCode::PayloadTooLarge,
        format!("documents are limited to {max} bytes"),
    )
}

/// Streams a tender document into the blob store. The caller is authorised
/// before a byte of the body is read.
pub async fn upload_document(
    svc: Svc,
    auth: As<Hosts>,
    id: Section,
    q: web::Query<UploadQuery>,
    upload: Upload,
) -> AppResult<Created<DocumentView>> {
    let id = id.into_inner();
    sections::authorize_upload(&svc, &auth.0, id.clone()).await?;
    let max = svc.config.server.max_document_bytes;
    if upload.declared_length.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let content_type = upload
        .content_type
        .unwrap_or_else(|| "application/octet-stream".into());
    let blob = svc
        .blobs
        .put_stream(upload.body, max)
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
    Ok(Created(v))
}

pub async fn delete_document(svc: Svc, auth: As<Hosts>, path: Document) -> AppResult<NoContent> {
    let (id, doc) = path.into_inner();
    sections::delete_document(&svc, &auth.0, id, doc).await?;
    Ok(NoContent)
}

pub async fn download_document(svc: Svc, auth: Authed, path: Document) -> AppResult<Download> {
    let (id, doc) = path.into_inner();
    let d = sections::document_for(&svc, Some(auth.0.user), id, doc).await?;
    stream_document(&svc, d).await
}

/// The same download for anyone, once published.
pub async fn public_document(svc: Svc, who: MaybeAuthed, path: Document) -> AppResult<Download> {
    let (id, doc) = path.into_inner();
    let d = sections::document_for(&svc, who.0, id, doc).await?;
    stream_document(&svc, d).await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct After {
    /// Only events after this sequence number (at most 1000 are returned).
    #[serde(default)]
    after: i64,
}

pub async fn events(
    svc: Svc,
    auth: Authed,
    id: Section,
    q: web::Query<After>,
) -> AppResult<Json<Vec<EventView>>> {
    Ok(Json(
        sections::events_for(&svc, &auth.0, id.into_inner(), q.after).await?,
    ))
}

pub async fn audit(svc: Svc, auth: Authed, id: Section) -> AppResult<Json<Vec<AuditView>>> {
    Ok(Json(
        sections::audit_for(&svc, &auth.0, id.into_inner()).await?,
    ))
}
