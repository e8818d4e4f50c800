//! Health, metrics, the API description and the static front end.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::respond::{Asset, Html, Json, MetricsText, OpenApi, Text};
use crate::db::outbox;
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult};
use crate::metrics::Gauge;
use crate::service::Services;

type Svc = web::Data<Services>;

/// The platform's health.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    pub schema_version: String,
    /// How the platform's clock runs (`system`, `fixed`, `accelerated ×N`).
    pub clock: String,
    pub now: Timestamp,
    pub version: String,
}

pub async fn healthz(svc: Svc) -> AppResult<Json<Health>> {
    let db = svc.db.clone();
    let version = tokio::task::spawn_blocking(move || db.schema_version_blocking())
        .await
        .map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?
        .map_err(AppError::unavailable)?;
    Ok(Json(Health {
        status: "ok".into(),
        backend: svc.db.backend().as_str().into(),
        schema_version: version,
        clock: svc.clock.describe(),
        now: svc.now(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

/// `/metrics` on the main listener: only with the operator's token (a
/// reverse proxy on the same host makes every request look local, so
/// being local proves nothing). Without a token configured it is not
/// served there at all; `server.metrics_listen` serves it apart.
fn metrics_allowed(svc: &Services, req: &actix_web::HttpRequest) -> bool {
    let token = &svc.config.server.metrics_token;
    !token.is_empty()
        && super::extract::token_of(req)
            .is_some_and(|t| crate::crypto::ct_eq(t.as_bytes(), token.as_bytes()))
}

pub async fn metrics(svc: Svc, req: actix_web::HttpRequest) -> AppResult<MetricsText> {
    if !metrics_allowed(&svc, &req) {
        return Err(AppError::new(
            crate::error::ErrorCode::Unauthenticated,
            "metrics need the operator's token (or server.metrics_listen)",
        ));
    }
    metrics_text(&svc).await
}

/// The exposition itself (also what `server.metrics_listen` serves).
pub async fn metrics_text(svc: &Services) -> AppResult<MetricsText> {
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
            labels: vec![("state", state.to_string())],
            value: n as f64,
        });
    }
    Ok(MetricsText(Text {
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        headers: vec![],
        body: svc.metrics.render(&gauges),
    }))
}

/// The API description, generated once.
pub async fn openapi() -> AppResult<OpenApi> {
    static DOC: std::sync::OnceLock<std::sync::Arc<str>> = std::sync::OnceLock::new();
    Ok(OpenApi(
        DOC.get_or_init(|| super::routes::api_description().json.to_string().into())
            .clone(),
    ))
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

fn page(body: &str) -> Html {
    Html(Text {
        content_type: "text/html; charset=utf-8",
        headers: vec![("Content-Security-Policy", CSP.into())],
        body: body.into(),
    })
}

pub async fn index() -> AppResult<Html> {
    Ok(page(INDEX))
}

/// The opening room's page (`/room?section=…`): the public view, live.
pub async fn room_page() -> AppResult<Html> {
    Ok(page(ROOM))
}

pub async fn asset(name: web::Path<String>) -> AppResult<Asset> {
    let (_, ct, body) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == name.as_str())
        .ok_or_else(|| AppError::not_found("file"))?;
    Ok(Asset(Text {
        content_type: ct,
        headers: vec![("Cache-Control", "no-cache".into())],
        body: (*body).into(),
    }))
}

/// The answer for a separate metrics listener: `/metrics`, and nothing else.
pub async fn metrics_only(svc: Svc) -> HttpResponse {
    match metrics_text(&svc).await {
        Ok(m) => {
            let t = m.0;
            HttpResponse::Ok().content_type(t.content_type).body(t.body)
        }
        Err(e) => actix_web::ResponseError::error_response(&e),
    }
}
