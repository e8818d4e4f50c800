//! The opening's REST side: every change to the room is one of these calls
//! (each honours an `Idempotency-Key` header); the socket only pushes.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::extract::{
    token_of, As, Authed, Bidders, Custodians, Hosts, MaybeAuthed, Signed, Supervisors,
};
use crate::crypto::opening::SignedKeyRelease;
use crate::error::AppResult;
use crate::room::hub::Hub;
use crate::service::opening::{
    self, BmkRequest, ConfirmRequest, ExtendRequest, Idem, IncidentRequest, SignatureRequest,
    TextRequest,
};
use crate::service::{room, Services};

type Svc = web::Data<Services>;

/// The client's idempotency key for this call, bound to the route and the
/// section so a key can never replay another request's answer.
pub(super) fn idem(req: &HttpRequest, route: &str, section: &str) -> AppResult<Option<Idem>> {
    let key = req
        .headers()
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    Idem::parse(key, &format!("{route} {section}"))
}

pub(super) fn ok(v: Value) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(v))
}

pub async fn view(
    svc: Svc,
    hub: web::Data<Hub>,
    who: MaybeAuthed,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    ok(room::snapshot(&svc, &hub, who.0, id.into_inner()).await?)
}

pub async fn open_signin(
    svc: Svc,
    req: HttpRequest,
    a: As<Hosts>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let i = idem(&req, "signin.open", &id)?;
    ok(opening::open_signin(&svc, &a.0, id, i).await?)
}

pub async fn sign_in(
    svc: Svc,
    req: HttpRequest,
    a: As<Bidders>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let i = idem(&req, "signin", &id)?;
    ok(opening::sign_in(&svc, &a.0, id, i).await?)
}

pub async fn release_key(
    svc: Svc,
    req: HttpRequest,
    s: Signed<Custodians, SignedKeyRelease>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let i = idem(&req, "key-release", &id)?;
    ok(opening::release_key(&svc, &s.0, id, s.1, i).await?)
}

pub async fn decrypt(
    svc: Svc,
    req: HttpRequest,
    s: Signed<Bidders, BmkRequest>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let i = idem(&req, "decrypt", &id)?;
    ok(opening::submit_bmk(&svc, &s.0, id, s.1, i).await?)
}

pub async fn extend(
    svc: Svc,
    req: HttpRequest,
    s: Signed<Hosts, ExtendRequest>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let i = idem(&req, "extend", &id)?;
    ok(opening::extend(&svc, &s.0, id, s.1, i).await?)
}

pub async fn incident(
    svc: Svc,
    req: HttpRequest,
    s: Signed<Hosts, IncidentRequest>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let i = idem(&req, "incident", &id)?;
    ok(opening::declare_incident(&svc, &s.0, id, s.1, i).await?)
}

pub async fn countersign_incident(
    svc: Svc,
    req: HttpRequest,
    s: Signed<Supervisors, SignatureRequest>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (id, inc) = path.into_inner();
    let i = idem(&req, &format!("incident.countersign {inc}"), &id)?;
    ok(opening::countersign_incident(&svc, &s.0, id, inc, s.1, i).await?)
}

pub async fn resume(
    svc: Svc,
    req: HttpRequest,
    a: As<Hosts>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let i = idem(&req, "resume", &id)?;
    ok(opening::resume(&svc, &a.0, id, i).await?)
}

pub async fn confirm(
    svc: Svc,
    req: HttpRequest,
    s: Signed<Bidders, ConfirmRequest>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let i = idem(&req, "confirm", &id)?;
    ok(opening::confirm(&svc, &s.0, id, s.1, i).await?)
}

pub async fn object(
    svc: Svc,
    req: HttpRequest,
    s: Signed<Bidders, TextRequest>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let i = idem(&req, "object", &id)?;
    ok(opening::object(&svc, &s.0, id, s.1, i).await?)
}

pub async fn answer(
    svc: Svc,
    req: HttpRequest,
    s: Signed<Hosts, TextRequest>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (id, obj) = path.into_inner();
    let i = idem(&req, &format!("answer {obj}"), &id)?;
    ok(opening::answer(&svc, &s.0, id, obj, s.1, i).await?)
}

pub async fn close(
    svc: Svc,
    req: HttpRequest,
    a: As<Hosts>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let i = idem(&req, "close", &id)?;
    ok(opening::close(&svc, &a.0, id, i).await?)
}

pub async fn countersign(
    svc: Svc,
    req: HttpRequest,
    s: Signed<Supervisors, SignatureRequest>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let i = idem(&req, "countersign", &id)?;
    ok(opening::countersign(&svc, &s.0, id, s.1, i).await?)
}

pub async fn notice(
    svc: Svc,
    req: HttpRequest,
    s: Signed<Hosts, TextRequest>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let i = idem(&req, "notice", &id)?;
    ok(opening::notice(&svc, &s.0, id, s.1, i).await?)
}

pub async fn record(svc: Svc, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(opening::record_of(&svc, id.into_inner()).await?))
}

/// The opening record as a printable page (Chinese first, English second).
pub async fn record_html(svc: Svc, id: web::Path<String>) -> AppResult<HttpResponse> {
    let r = opening::record_of(&svc, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(super::record_page::render(&r)))
}

pub async fn ticket(
    svc: Svc,
    req: HttpRequest,
    a: Authed,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let token = token_of(&req).unwrap_or_default();
    ok(room::ticket(&svc, &a.0.user, &token, id.into_inner()).await?)
}
