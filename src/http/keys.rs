//! Key registration with proof of possession.

use actix_web::{web, HttpResponse};

use super::extract::Authed;
use crate::error::AppResult;
use crate::service::{keys, Services};

type Svc = web::Data<Services>;

pub async fn challenge(
    svc: Svc,
    auth: Authed,
    body: web::Json<keys::ChallengeRequest>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Created().json(keys::challenge(&svc, &auth.0, body.into_inner()).await?))
}

pub async fn register(
    svc: Svc,
    auth: Authed,
    body: web::Json<keys::RegisterKey>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Created().json(keys::register(&svc, &auth.0, body.into_inner()).await?))
}

pub async fn list(svc: Svc, auth: Authed) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(keys::list_mine(&svc, &auth.0).await?))
}

pub async fn section_key(
    svc: Svc,
    auth: Authed,
    id: web::Path<String>,
    body: web::Json<keys::SectionKeyRequest>,
) -> AppResult<HttpResponse> {
    let r = keys::register_section_key(&svc, &auth.0, id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(r))
}
