//! The HTTP edge: thin handlers (extract → service → typed answer), one
//! middleware, and one route table (`routes.rs`). The route table is the
//! single list of what the server answers; `configure` registers it and the
//! API description is generated from it and from the handlers' types
//! (`api_doc.rs`), so the description cannot drift from the routes.

pub mod accounts;
pub mod api_doc;
pub mod bids;
pub mod evaluation;
pub mod extract;
pub mod keys;
pub mod log;
pub mod middleware;
pub mod opening;
pub mod public;
pub mod record_page;
pub mod request_id;
pub mod respond;
pub mod room;
pub mod routes;
pub mod sections;
pub mod session;
pub mod system;

pub use routes::{api_description, endpoints, route_table};

use actix_web::{web, HttpRequest, HttpResponse, Route};

use crate::error::{AppError, ErrorCode};

/// Registers the route table: one resource per path, so a known path with an
/// unknown method answers 405 in the error envelope.
pub fn configure(cfg: &mut web::ServiceConfig, max_json_bytes: usize) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(max_json_bytes)
            .content_type_required(true)
            .error_handler(extract::json_error),
    )
    .app_data(web::QueryConfig::default().error_handler(extract::query_error))
    .app_data(web::PathConfig::default().error_handler(extract::path_error));
    let mut paths: Vec<&'static str> = Vec::new();
    let mut by_path: Vec<Vec<Route>> = Vec::new();
    for e in endpoints() {
        let (path, route) = (e.path, e.route);
        match paths.iter().position(|p| *p == path) {
            Some(i) => by_path[i].push(route),
            None => {
                paths.push(path);
                by_path.push(vec![route]);
            }
        }
    }
    for (path, routes) in paths.into_iter().zip(by_path) {
        let mut resource = web::resource(path).default_service(web::to(method_not_allowed));
        for r in routes {
            resource = resource.route(r);
        }
        cfg.service(resource);
    }
}

async fn method_not_allowed(req: HttpRequest) -> AppError {
    AppError::new(
        ErrorCode::MethodNotAllowed,
        format!("{} is not supported on this path", req.method()),
    )
}

/// The answer for paths no route matches.
pub async fn route_not_found() -> AppError {
    AppError::new(
        ErrorCode::RouteNotFound,
        "no such endpoint; see /api/openapi.json",
    )
}

impl actix_web::Responder for AppError {
    type Body = actix_web::body::BoxBody;
    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}
