//! The HTTP edge: thin handlers (extract → service → JSON), one middleware,
//! and one route table. The route table is the single list of what the
//! server answers; `configure` registers it and the OpenAPI test compares it
//! with `openapi.json`, so the description cannot drift from the routes.

pub mod accounts;
pub mod bids;
pub mod evaluation;
pub mod extract;
pub mod keys;
pub mod middleware;
pub mod opening;
pub mod public;
pub mod record_page;
pub mod request_id;
pub mod room;
pub mod sections;
pub mod system;

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse, Route};

use crate::error::{AppError, ErrorCode};

/// Every route: method, path pattern and handler.
pub fn routes() -> Vec<(Method, &'static str, Route)> {
    use Method as M;
    vec![
        // The front end and operations.
        (M::GET, "/", web::get().to(system::index)),
        (M::GET, "/static/{file}", web::get().to(system::asset)),
        (M::GET, "/room", web::get().to(system::room_page)),
        (M::GET, "/healthz", web::get().to(system::healthz)),
        (M::GET, "/metrics", web::get().to(system::metrics)),
        (M::GET, "/api/openapi.json", web::get().to(system::openapi)),
        // Accounts.
        (
            M::POST,
            "/api/auth/register",
            web::post().to(accounts::register),
        ),
        (M::POST, "/api/auth/login", web::post().to(accounts::login)),
        (
            M::POST,
            "/api/auth/logout",
            web::post().to(accounts::logout),
        ),
        (M::GET, "/api/auth/me", web::get().to(accounts::me)),
        (
            M::POST,
            "/api/auth/verify-email",
            web::post().to(accounts::verify_email),
        ),
        (
            M::POST,
            "/api/auth/resend-verification",
            web::post().to(accounts::resend_verification),
        ),
        (
            M::GET,
            "/api/admin/organisations",
            web::get().to(accounts::list_orgs),
        ),
        (
            M::POST,
            "/api/admin/organisations",
            web::post().to(accounts::create_org),
        ),
        (
            M::GET,
            "/api/admin/users",
            web::get().to(accounts::list_users),
        ),
        (
            M::POST,
            "/api/admin/users",
            web::post().to(accounts::create_user),
        ),
        (
            M::POST,
            "/api/admin/users/{id}/disable",
            web::post().to(accounts::disable_user),
        ),
        (
            M::POST,
            "/api/admin/users/{id}/enable",
            web::post().to(accounts::enable_user),
        ),
        (
            M::POST,
            "/api/admin/users/{id}/revoke-sessions",
            web::post().to(accounts::revoke_sessions),
        ),
        // Keys.
        (
            M::POST,
            "/api/keys/challenges",
            web::post().to(keys::challenge),
        ),
        (M::POST, "/api/keys", web::post().to(keys::register)),
        (M::GET, "/api/keys", web::get().to(keys::list)),
        // Projects and sections.
        (
            M::GET,
            "/api/projects",
            web::get().to(sections::list_projects),
        ),
        (
            M::POST,
            "/api/projects",
            web::post().to(sections::create_project),
        ),
        (
            M::GET,
            "/api/projects/{id}",
            web::get().to(sections::get_project),
        ),
        (
            M::POST,
            "/api/projects/{id}/sections",
            web::post().to(sections::create_section),
        ),
        (
            M::GET,
            "/api/sections/{id}",
            web::get().to(sections::get_section),
        ),
        (
            M::PUT,
            "/api/sections/{id}",
            web::put().to(sections::update_section),
        ),
        (
            M::POST,
            "/api/sections/{id}/publish",
            web::post().to(sections::publish),
        ),
        (
            M::POST,
            "/api/sections/{id}/amendments",
            web::post().to(sections::amend),
        ),
        (
            M::POST,
            "/api/sections/{id}/cancel",
            web::post().to(sections::cancel),
        ),
        (
            M::POST,
            "/api/sections/{id}/documents",
            web::post().to(sections::upload_document),
        ),
        (
            M::GET,
            "/api/sections/{id}/documents/{doc}",
            web::get().to(sections::download_document),
        ),
        (
            M::DELETE,
            "/api/sections/{id}/documents/{doc}",
            web::delete().to(sections::delete_document),
        ),
        (
            M::POST,
            "/api/sections/{id}/custodian-key",
            web::post().to(keys::section_key),
        ),
        (
            M::POST,
            "/api/sections/{id}/registration",
            web::post().to(sections::register_bidder),
        ),
        (
            M::GET,
            "/api/sections/{id}/events",
            web::get().to(sections::events),
        ),
        (
            M::GET,
            "/api/sections/{id}/audit",
            web::get().to(sections::audit),
        ),
        // The public read side.
        (M::GET, "/api/public/sections", web::get().to(public::list)),
        (
            M::GET,
            "/api/public/sections/{id}",
            web::get().to(public::detail),
        ),
        (
            M::GET,
            "/api/public/sections/{id}/params",
            web::get().to(public::params),
        ),
        (
            M::GET,
            "/api/public/sections/{id}/documents/{doc}",
            web::get().to(sections::public_document),
        ),
        (
            M::GET,
            "/api/public/platform-key",
            web::get().to(public::platform_key),
        ),
        (
            M::GET,
            "/api/public/sections/{id}/manifest",
            web::get().to(bids::manifest),
        ),
        (
            M::GET,
            "/api/public/sections/{id}/manifest/proof",
            web::get().to(bids::manifest_proof),
        ),
        (
            M::GET,
            "/api/public/sections/{id}/transcript",
            web::get().to(bids::transcript),
        ),
        // Sealed bids (bidders).
        (M::POST, "/api/bids", web::post().to(bids::submit)),
        (M::GET, "/api/bids", web::get().to(bids::list)),
        (M::GET, "/api/bids/{hash}", web::get().to(bids::status)),
        (
            M::PUT,
            "/api/bids/{hash}/parts/{part}",
            web::put().to(bids::upload),
        ),
        (
            M::POST,
            "/api/bids/{hash}/withdraw",
            web::post().to(bids::withdraw),
        ),
        // The opening (开标) and its room.
        (
            M::GET,
            "/api/sections/{id}/room",
            web::get().to(room::socket),
        ),
        (
            M::POST,
            "/api/sections/{id}/room/tickets",
            web::post().to(opening::ticket),
        ),
        (
            M::GET,
            "/api/sections/{id}/opening",
            web::get().to(opening::view),
        ),
        (
            M::POST,
            "/api/sections/{id}/opening/signin/open",
            web::post().to(opening::open_signin),
        ),
        (
            M::POST,
            "/api/sections/{id}/opening/signin",
            web::post().to(opening::sign_in),
        ),
        (
            M::POST,
            "/api/sections/{id}/opening/key-releases",
            web::post().to(opening::release_key),
        ),
        (
            M::POST,
            "/api/sections/{id}/opening/decryptions",
            web::post().to(opening::decrypt),
        ),
        (
            M::POST,
            "/api/sections/{id}/opening/extend",
            web::post().to(opening::extend),
        ),
        (
            M::POST,
            "/api/sections/{id}/opening/incidents",
            web::post().to(opening::incident),
        ),
        (
            M::POST,
            "/api/sections/{id}/opening/incidents/{incident}/countersign",
            web::post().to(opening::countersign_incident),
        ),
        (
            M::POST,
            "/api/sections/{id}/opening/resume",
            web::post().to(opening::resume),
        ),
        (
            M::POST,
            "/api/sections/{id}/opening/confirmations",
            web::post().to(opening::confirm),
        ),
        (
            M::POST,
            "/api/sections/{id}/opening/objections",
            web::post().to(opening::object),
        ),
        (
            M::POST,
            "/api/sections/{id}/opening/objections/{objection}/answer",
            web::post().to(opening::answer),
        ),
        (
            M::POST,
            "/api/sections/{id}/opening/close",
            web::post().to(opening::close),
        ),
        (
            M::POST,
            "/api/sections/{id}/opening/countersign",
            web::post().to(opening::countersign),
        ),
        (
            M::POST,
            "/api/sections/{id}/opening/notices",
            web::post().to(opening::notice),
        ),
        (
            M::GET,
            "/api/public/sections/{id}/opening-record",
            web::get().to(opening::record),
        ),
        (
            M::GET,
            "/api/public/sections/{id}/opening-record.html",
            web::get().to(opening::record_html),
        ),
        // Remote expert evaluation.
        (
            M::GET,
            "/api/experts.csv",
            web::get().to(evaluation::pool_export),
        ),
        (
            M::PUT,
            "/api/experts.csv",
            web::put().to(evaluation::pool_import),
        ),
        (
            M::POST,
            "/api/sections/{id}/evaluation/draw",
            web::post().to(evaluation::draw),
        ),
        (
            M::GET,
            "/api/sections/{id}/evaluation",
            web::get().to(evaluation::status),
        ),
        (
            M::POST,
            "/api/sections/{id}/evaluation/finish",
            web::post().to(evaluation::finish),
        ),
        (
            M::POST,
            "/api/evaluation/answer",
            web::post().to(evaluation::answer),
        ),
        (
            M::POST,
            "/api/sections/{id}/evaluation/pass",
            web::post().to(evaluation::home_pass),
        ),
        (
            M::POST,
            "/api/sections/{id}/evaluation/admit",
            web::post().to(evaluation::admit),
        ),
        (
            M::POST,
            "/api/sections/{id}/evaluation/votes",
            web::post().to(evaluation::vote),
        ),
        (
            M::POST,
            "/api/sections/{id}/evaluation/scores",
            web::post().to(evaluation::score),
        ),
        (
            M::POST,
            "/api/sections/{id}/evaluation/report/signatures",
            web::post().to(evaluation::sign_report),
        ),
        (
            M::POST,
            "/api/sections/{id}/evaluation/publish",
            web::post().to(evaluation::publish),
        ),
        (
            M::POST,
            "/api/sections/{id}/publicity/objections",
            web::post().to(evaluation::object),
        ),
        (
            M::POST,
            "/api/sections/{id}/publicity/objections/{objection}/answer",
            web::post().to(evaluation::answer_objection),
        ),
        (
            M::GET,
            "/api/public/sections/{id}/result",
            web::get().to(evaluation::result),
        ),
        (
            M::POST,
            "/api/sections/{id}/evaluation/outliers",
            web::post().to(evaluation::confirm_outlier),
        ),
        (
            M::POST,
            "/api/sections/{id}/evaluation/recusals",
            web::post().to(evaluation::recuse),
        ),
        (
            M::POST,
            "/api/sections/{id}/evaluation/clarifications",
            web::post().to(evaluation::ask_clarification),
        ),
        (
            M::POST,
            "/api/sections/{id}/clarifications/{clarification}/answer",
            web::post().to(evaluation::answer_clarification),
        ),
        // The transparency log.
        (
            M::GET,
            "/api/log/checkpoint",
            web::get().to(bids::checkpoint),
        ),
        (M::GET, "/api/log/entries", web::get().to(bids::entries)),
        (
            M::GET,
            "/api/log/proof/inclusion",
            web::get().to(bids::inclusion),
        ),
        (
            M::GET,
            "/api/log/proof/consistency",
            web::get().to(bids::consistency),
        ),
    ]
}

/// `(method, path)` of every route, for the OpenAPI check and the
/// authorisation test.
pub fn route_table() -> Vec<(Method, &'static str)> {
    routes().into_iter().map(|(m, p, _)| (m, p)).collect()
}

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
    for (_, path, route) in routes() {
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
