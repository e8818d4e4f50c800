//! Sign-in, registration, e-mail verification, and the administrators'
//! management of organisations and users.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::extract::{token_of, Admins, As, Authed, Signed};
use super::request_id;
use crate::domain::identity::OrgKind;
use crate::error::AppResult;
use crate::service::{auth, Services};

type Svc = web::Data<Services>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsernameBody {
    username: String,
}

pub async fn register(
    svc: Svc,
    body: web::Json<auth::BidderRegistration>,
) -> AppResult<HttpResponse> {
    let r = auth::register_bidder(&svc, &request_id::current(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(r))
}

pub async fn login(
    svc: Svc,
    req: HttpRequest,
    body: web::Json<LoginBody>,
) -> AppResult<HttpResponse> {
    let ip = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let r = auth::login(&svc, &body.username, &body.password, &ip).await?;
    Ok(HttpResponse::Ok().json(r))
}

pub async fn logout(svc: Svc, auth: Authed, req: HttpRequest) -> AppResult<HttpResponse> {
    let token = token_of(&req).unwrap_or_default();
    auth::logout(&svc, &auth.0, token).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn me(svc: Svc, auth: Authed) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(auth::me(&svc, &auth.0).await?))
}

pub async fn verify_email(svc: Svc, body: web::Json<TokenBody>) -> AppResult<HttpResponse> {
    auth::verify_email(&svc, &body.token).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"verified": true})))
}

pub async fn resend_verification(
    svc: Svc,
    body: web::Json<UsernameBody>,
) -> AppResult<HttpResponse> {
    auth::resend_verification(&svc, &body.username).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "message": "if the account exists and is not verified yet, a new link is on its way"
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgFilter {
    kind: Option<OrgKind>,
}

pub async fn list_orgs(
    svc: Svc,
    auth: As<Admins>,
    q: web::Query<OrgFilter>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(auth::list_orgs(&svc, &auth.0, q.kind).await?))
}

pub async fn create_org(svc: Svc, signed: Signed<Admins, auth::NewOrg>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Created().json(auth::create_org(&svc, &signed.0, signed.1).await?))
}

pub async fn list_users(svc: Svc, auth: As<Admins>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(auth::list_users(&svc, &auth.0).await?))
}

pub async fn create_user(
    svc: Svc,
    signed: Signed<Admins, auth::NewUser>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Created().json(auth::create_user(&svc, &signed.0, signed.1).await?))
}

pub async fn disable_user(
    svc: Svc,
    auth: As<Admins>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok()
        .json(auth::set_user_disabled(&svc, &auth.0, id.into_inner(), true).await?))
}

pub async fn enable_user(
    svc: Svc,
    auth: As<Admins>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok()
        .json(auth::set_user_disabled(&svc, &auth.0, id.into_inner(), false).await?))
}

pub async fn revoke_sessions(
    svc: Svc,
    auth: As<Admins>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let n = auth::revoke_user_sessions(&svc, &auth.0, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"revoked": n})))
}
