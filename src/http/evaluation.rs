//! Remote expert evaluation over REST: the pool (administrators), the draw
//! and the result (the host), answers to a draw (the e-mailed token), passes
//! (signed by a trusted centre), and the experts' signed reviews and scores.

use actix_web::{web, HttpRequest, HttpResponse};

use super::extract::{Admins, As, Bidders, Experts, Hosts, Signed, Tenderers};
use super::opening::{idem, ok};
use crate::error::{AppError, AppResult};
use crate::evaluation::draw::DrawRequest;
use crate::evaluation::pass::Pass;
use crate::service::evaluation::{
    self as ev, AnswerRequest, ClarificationAnswer, ClarificationStatement, ObjectionText,
    OutlierStatement, PassRequest, RecusalStatement, ReportStatement, ScoreStatement,
    VoteStatement,
};
use crate::service::Services;

type Svc = web::Data<Services>;

pub async fn pool_export(svc: Svc, _a: As<Admins>) -> AppResult<HttpResponse> {
    let csv = svc.db.run(ev::export_pool).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .body(csv))
}

pub async fn pool_import(
    svc: Svc,
    req: HttpRequest,
    _a: As<Admins>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("text/csv") {
        return Err(AppError::new(
            crate::error::ErrorCode::UnsupportedMediaType,
            "send the pool as text/csv",
        ));
    }
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| AppError::invalid_field("csv", "not UTF-8"))?;
    let now = svc.now().millis();
    let n = svc.db.run(move |c| ev::import_pool(c, &text, now)).await?;
    ok(serde_json::json!({"imported": n}))
}

pub async fn draw(
    svc: Svc,
    req: HttpRequest,
    s: Signed<Hosts, DrawRequest>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let i = idem(&req, "evaluation.draw", &id)?;
    ok(ev::draw_committee(&svc, &s.0, i, id, s.1).await?)
}

pub async fn status(svc: Svc, a: As<Hosts>, id: web::Path<String>) -> AppResult<HttpResponse> {
    ok(ev::status(&svc, &a.0, id.into_inner()).await?)
}

pub async fn finish(
    svc: Svc,
    req: HttpRequest,
    a: As<Hosts>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let i = idem(&req, "evaluation.finish", &id)?;
    ok(ev::finish(&svc, &a.0, i, id).await?)
}

pub async fn answer(svc: Svc, body: web::Json<AnswerRequest>) -> AppResult<HttpResponse> {
    ok(ev::answer(&svc, super::request_id::current(), body.into_inner()).await?)
}

pub async fn admit(
    svc: Svc,
    id: web::Path<String>,
    body: web::Json<Pass>,
) -> AppResult<HttpResponse> {
    ok(ev::admit(&svc, id.into_inner(), body.into_inner()).await?)
}

pub async fn vote(
    svc: Svc,
    id: web::Path<String>,
    body: web::Json<ev::Signed<VoteStatement>>,
) -> AppResult<HttpResponse> {
    ok(ev::vote(&svc, id.into_inner(), body.into_inner()).await?)
}

/// One signed score, or a sheet: `{"scores": [signed, …]}`.
pub async fn score(
    svc: Svc,
    id: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let sheet = match body.get("scores") {
        Some(list) => serde_json::from_value::<Vec<ev::Signed<ScoreStatement>>>(list.clone())
            .map_err(|e| AppError::invalid_field("scores", e.to_string()))?,
        None => vec![serde_json::from_value::<ev::Signed<ScoreStatement>>(body)
            .map_err(|e| AppError::invalid_field("body", e.to_string()))?],
    };
    ok(ev::score(&svc, id.into_inner(), sheet).await?)
}

pub async fn sign_report(
    svc: Svc,
    id: web::Path<String>,
    body: web::Json<ev::Signed<ReportStatement>>,
) -> AppResult<HttpResponse> {
    ok(ev::sign_report(&svc, id.into_inner(), body.into_inner()).await?)
}

pub async fn publish(
    svc: Svc,
    req: HttpRequest,
    a: As<Hosts>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let i = idem(&req, "evaluation.publish", &id)?;
    ok(ev::publish(&svc, &a.0, i, id).await?)
}

pub async fn object(
    svc: Svc,
    req: HttpRequest,
    s: Signed<Bidders, ObjectionText>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let i = idem(&req, "publicity.object", &id)?;
    ok(ev::raise_objection(&svc, &s.0, i, id, s.1).await?)
}

pub async fn answer_objection(
    svc: Svc,
    req: HttpRequest,
    s: Signed<Tenderers, ObjectionText>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (id, objection) = path.into_inner();
    let i = idem(&req, "publicity.answer", &format!("{id}/{objection}"))?;
    ok(ev::answer_objection(&svc, &s.0, i, id, objection, s.1).await?)
}

pub async fn result(svc: Svc, id: web::Path<String>) -> AppResult<HttpResponse> {
    ok(ev::public_result(&svc, id.into_inner()).await?)
}

pub async fn confirm_outlier(
    svc: Svc,
    id: web::Path<String>,
    body: web::Json<ev::Signed<OutlierStatement>>,
) -> AppResult<HttpResponse> {
    ok(ev::confirm_outlier(&svc, id.into_inner(), body.into_inner()).await?)
}

pub async fn recuse(
    svc: Svc,
    id: web::Path<String>,
    body: web::Json<ev::Signed<RecusalStatement>>,
) -> AppResult<HttpResponse> {
    ok(ev::recuse(&svc, id.into_inner(), body.into_inner()).await?)
}

pub async fn ask_clarification(
    svc: Svc,
    id: web::Path<String>,
    body: web::Json<ev::Signed<ClarificationStatement>>,
) -> AppResult<HttpResponse> {
    ok(ev::ask_clarification(&svc, id.into_inner(), body.into_inner()).await?)
}

pub async fn answer_clarification(
    svc: Svc,
    req: HttpRequest,
    s: Signed<Bidders, ClarificationAnswer>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (id, clarification) = path.into_inner();
    let i = idem(
        &req,
        "clarification.answer",
        &format!("{id}/{clarification}"),
    )?;
    ok(ev::answer_clarification(&svc, &s.0, i, id, clarification, s.1).await?)
}

pub async fn home_pass(
    svc: Svc,
    s: Signed<Experts, PassRequest>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    ok(ev::home_pass(&svc, &s.0, id.into_inner(), s.1).await?)
}
