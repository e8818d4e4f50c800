//! Sign-in, registration, e-mail verification, and the administrators'
//! management of organisations and users.

use actix_web::{web, HttpRequest};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::extract::{token_of, Admins, As, Authed, ClientAddress, Signed};
use super::request_id;
use super::respond::{Accepted, Created, Json, NoContent};
use crate::domain::identity::OrgKind;
use crate::domain::ids::UserId;
use crate::error::AppResult;
use crate::service::auth::{self, LoginResult, Me, OrgView, Registered, SessionsRevoked, UserView};
use crate::service::Services;

type Svc = web::Data<Services>;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// The token from the verification mail's link.
    token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsernameBody {
    username: String,
}

pub async fn register(
    svc: Svc,
    body: web::Json<auth::BidderRegistration>,
) -> AppResult<Created<Registered>> {
    let r = auth::register_bidder(&svc, &request_id::current(), body.into_inner()).await?;
    Ok(Created(r))
}

pub async fn login(
    svc: Svc,
    from: ClientAddress,
    body: web::Json<LoginBody>,
) -> AppResult<Json<LoginResult>> {
    let r = auth::login(&svc, &body.username, &body.password, &from.0).await?;
    Ok(Json(r))
}

pub async fn logout(svc: Svc, auth: Authed, req: HttpRequest) -> AppResult<NoContent> {
    let token = token_of(&req).unwrap_or_default();
    auth::logout(&svc, &auth.0, token).await?;
    Ok(NoContent)
}

pub async fn me(svc: Svc, auth: Authed) -> AppResult<Json<Me>> {
    Ok(Json(auth::me(&svc, &auth.0).await?))
}

pub async fn verify_email(svc: Svc, body: web::Json<TokenBody>) -> AppResult<Json<auth::Verified>> {
    Ok(Json(auth::verify_email(&svc, &body.token).await?))
}

pub async fn resend_verification(
    svc: Svc,
    body: web::Json<UsernameBody>,
) -> AppResult<Accepted<auth::VerificationResent>> {
    Ok(Accepted(
        auth::resend_verification(&svc, &body.username).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OrgFilter {
    /// Only organisations of this kind.
    kind: Option<OrgKind>,
}

pub async fn list_orgs(
    svc: Svc,
    auth: As<Admins>,
    q: web::Query<OrgFilter>,
) -> AppResult<Json<Vec<OrgView>>> {
    Ok(Json(auth::list_orgs(&svc, &auth.0, q.kind).await?))
}

pub async fn create_org(
    svc: Svc,
    signed: Signed<Admins, auth::NewOrg>,
) -> AppResult<Created<OrgView>> {
    Ok(Created(auth::create_org(&svc, &signed.0, signed.1).await?))
}

pub async fn list_users(svc: Svc, auth: As<Admins>) -> AppResult<Json<Vec<UserView>>> {
    Ok(Json(auth::list_users(&svc, &auth.0).await?))
}

pub async fn create_user(
    svc: Svc,
    signed: Signed<Admins, auth::NewUser>,
) -> AppResult<Created<UserView>> {
    Ok(Created(auth::create_user(&svc, &signed.0, signed.1).await?))
}

pub async fn disable_user(
    svc: Svc,
    auth: As<Admins>,
    id: web::Path<UserId>,
) -> AppResult<Json<UserView>> {
    Ok(Json(
        auth::set_user_disabled(&svc, &auth.0, id.into_inner(), true).await?,
    ))
}

pub async fn enable_user(
    svc: Svc,
    auth: As<Admins>,
    id: web::Path<UserId>,
) -> AppResult<Json<UserView>> {
    Ok(Json(
        auth::set_user_disabled(&svc, &auth.0, id.into_inner(), false).await?,
    ))
}

pub async fn revoke_sessions(
    svc: Svc,
    auth: As<Admins>,
    id: web::Path<UserId>,
) -> AppResult<Json<SessionsRevoked>> {
    Ok(Json(
        auth::revoke_user_sessions(&svc, &auth.0, id.into_inner()).await?,
    ))
}
