//! Key registration with proof of possession.

use actix_web::{web, HttpResponse};

use super::extract::{Anyone, Authed, Custodians, Signed};
use crate::error::AppResult;
use crate::service::{keys, Services};

type Svc = web::Data<Services>;

pub async fn challenge(
    svc: Svc,
    signed: Signed<Anyone, keys::ChallengeRequest>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Created().json(keys::challenge(&svc, &signed.0, signed.1).await?))
}

pub async fn register(
    svc: Svc,
    signed: Signed<Anyone, keys::RegisterKey>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Created().json(keys::register(&svc, &signed.0, signed.1).await?))
}

pub async fn list(svc: Svc, auth: Authed) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(keys::list_mine(&svc, &auth.0).await?))
}

pub async fn section_key(
    svc: Svc,
    signed: Signed<Custodians, keys::SectionKeyRequest>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let r = keys::register_section_key(&svc, &signed.0, id.into_inner(), signed.1).await?;
    Ok(HttpResponse::Created().json(r))
}
