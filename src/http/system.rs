//! Health, metrics, the OpenAPI description and the static front end.

use actix_web::{web, HttpResponse};

use crate::db::outbox;
use crate::error::{AppError, AppResult};
use crate::metrics::Gauge;
use crate::service::Services;

type Svc = web::Data<Services>;

pub const OPENAPI: &str = include_str!("openapi.json");

pub async fn healthz(svc: Svc) -> AppResult<HttpResponse> {
    let db = svc.db.clone();
    let version = tokio::task::spawn_blocking(move || db.schema_version_blocking())
        .await
        .map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?
        .map_err(AppError::unavailable)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "backend": svc.db.backend().as_str(),
        "schema_version": version,
        "clock": svc.clock.describe(),
        "now": svc.now(),
        "version": env!("CARGO_PKG_VERSION"),
    })))
}

/// Metrics are for the operator: with a configured token, only its bearer;
/// without one, only scrapes from the machine itself.
fn metrics_allowed(svc: &Services, req: &actix_web::HttpRequest) -> bool {
    let token = &svc.config.server.metrics_token;
    if token.is_empty() {
        return req.peer_addr().is_some_and(|a| a.ip().is_loopback());
    }
    super::extract::token_of(req)
        .is_some_and(|t| crate::crypto::ct_eq(t.as_bytes(), token.as_bytes()))
}

pub async fn metrics(svc: Svc, req: actix_web::HttpRequest) -> AppResult<HttpResponse> {
    if !metrics_allowed(&svc, &req) {
        return Err(AppError::new(
            crate::error::ErrorCode::Unauthenticated,
            "metrics need the operator's token",
        ));
    }
    let (open, idle, max) = svc.db.pool_state();
    let counts = svc
        .db
        .run(|c| Ok(outbox::counts(c)?))
        .await
        .unwrap_or_default();
    let mut gauges = vec![
        Gauge {
            name: "kaibiao_db_pool_connections",
            help: "Database pool connections by state.",
            labels: vec![("state", "idle".into())],
            value: idle as f64,
        },
        Gauge {
            name: "kaibiao_db_pool_connections",
            help: "Database pool connections by state.",
            labels: vec![("state", "in_use".into())],
            value: open.saturating_sub(idle) as f64,
        },
        Gauge {
            name: "kaibiao_db_pool_max_connections",
            help: "Database pool size limit.",
            labels: vec![("backend", svc.db.backend().as_str().into())],
            value: max as f64,
        },
    ];
    for (state, n) in counts {
        gauges.push(Gauge {
            name: "kaibiao_outbox_mails",
            help: "Mails in the outbox by state.",
            labels: vec![("state", state)],
            value: n as f64,
        });
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(svc.metrics.render(&gauges)))
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

const INDEX: &str = include_str!("../../frontend/index.html");
const ROOM: &str = include_str!("../../frontend/room.html");
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../frontend/app.js"),
    ),
    (
        "i18n.js",
        "text/javascript; charset=utf-8",
        include_str!("../../frontend/i18n.js"),
    ),
    (
        "room.js",
        "text/javascript; charset=utf-8",
        include_str!("../../frontend/room.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../frontend/style.css"),
    ),
];

const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", CSP))
        .body(INDEX)
}

/// The opening room's page (`/room?section=…`): the public view, live.
pub async fn room_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", CSP))
        .body(ROOM)
}

pub async fn asset(name: web::Path<String>) -> AppResult<HttpResponse> {
    let (_, ct, body) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == name.as_str())
        .ok_or_else(|| AppError::not_found("file"))?;
    Ok(HttpResponse::Ok()
        .content_type(*ct)
        .insert_header(("Cache-Control", "no-cache"))
        .body(*body))
}
