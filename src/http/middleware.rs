//! The one middleware every request passes: request id, access log, metrics
//! and security headers. The access log names the route *pattern*, method,
//! status and duration — never the query string, headers or body, which may
//! carry tokens or personal data.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error};
use tracing::Instrument;

use super::request_id;
use crate::service::Services;

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = request_id::accept(
        req.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
    );
    let svc = req.app_data::<web::Data<Services>>().cloned();
    let method = req.method().to_string();
    let is_api = req.path().starts_with("/api/");
    let start = Instant::now();
    let span = tracing::info_span!("request", request_id = %id);
    let result = request_id::scope(id.clone(), next.call(req).instrument(span)).await;
    let mut res = result?;
    let elapsed = start.elapsed().as_secs_f64();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "(unmatched)".into());
    let status = res.status().as_u16();
    if let Some(svc) = &svc {
        svc.metrics
            .observe_request(&route, &method, status, elapsed);
    }
    tracing::info!(request_id = %id, method, route, status, ms = (elapsed * 1000.0).round() as u64, "request");
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert(HeaderName::from_static("x-request-id"), v);
    }
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    if is_api && !h.contains_key("cache-control") {
        h.insert(
            HeaderName::from_static("cache-control"),
            HeaderValue::from_static("no-store"),
        );
    }
    Ok(res)
}
