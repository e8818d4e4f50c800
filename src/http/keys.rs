//! Key registration with proof of possession.

use actix_web::web;

use super::extract::{Anyone, Authed, Custodians, Signed};
use super::respond::{Created, Json};
use crate::domain::ids::SectionId;
use crate::error::AppResult;
use crate::service::keys::{self, ChallengeView, KeyView, SectionKeyView};
use crate::service::Services;

type Svc = web::Data<Services>;

pub async fn challenge(
    svc: Svc,
    signed: Signed<Anyone, keys::ChallengeRequest>,
) -> AppResult<Created<ChallengeView>> {
    Ok(Created(keys::challenge(&svc, &signed.0, signed.1).await?))
}

pub async fn register(
    svc: Svc,
    signed: Signed<Anyone, keys::RegisterKey>,
) -> AppResult<Created<KeyView>> {
    Ok(Created(keys::register(&svc, &signed.0, signed.1).await?))
}

pub async fn list(svc: Svc, auth: Authed) -> AppResult<Json<Vec<KeyView>>> {
    Ok(Json(keys::list_mine(&svc, &auth.0).await?))
}

pub async fn section_key(
    svc: Svc,
    signed: Signed<Custodians, keys::SectionKeyRequest>,
    id: web::Path<SectionId>,
) -> AppResult<Created<SectionKeyView>> {
    let r = keys::register_section_key(&svc, &signed.0, id.into_inner(), signed.1).await?;
    Ok(Created(r))
}
