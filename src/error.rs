//! One error type for every use case, and one envelope for every client:
//!
//! ```json
//! {"error": "validation_failed", "message": "…", "request_id": "…", "details": [...]}
//! ```
//!
//! `error` is a stable snake_case code the frontend can switch on. A 5xx never
//! carries internal text: the client gets `internal` and the request id, the
//! log gets the whole cause chain under the same id.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::problems::Problem;

macro_rules! codes {
    ($($variant:ident = ($text:literal, $status:ident)),+ $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode { $($variant),+ }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $text),+ }
            }
            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::$status),+ }
            }
        }
    };
}

codes! {
    BadRequest = ("bad_request", BAD_REQUEST),
    MalformedJson = ("malformed_json", BAD_REQUEST),
    ValidationFailed = ("validation_failed", UNPROCESSABLE_ENTITY),
    PayloadTooLarge = ("payload_too_large", PAYLOAD_TOO_LARGE),
    UnsupportedMediaType = ("unsupported_media_type", UNSUPPORTED_MEDIA_TYPE),
    Unauthenticated = ("unauthenticated", UNAUTHORIZED),
    InvalidCredentials = ("invalid_credentials", UNAUTHORIZED),
    EmailNotVerified = ("email_not_verified", FORBIDDEN),
    Forbidden = ("forbidden", FORBIDDEN),
    CsrfRejected = ("csrf_rejected", FORBIDDEN),
    NotFound = ("not_found", NOT_FOUND),
    RouteNotFound = ("route_not_found", NOT_FOUND),
    MethodNotAllowed = ("method_not_allowed", METHOD_NOT_ALLOWED),
    OrganisationExists = ("organisation_exists", CONFLICT),
    UsernameTaken = ("username_taken", CONFLICT),
    Conflict = ("conflict", CONFLICT),
    InvalidTransition = ("invalid_transition", CONFLICT),
    IdempotencyKeyReused = ("idempotency_key_reused", UNPROCESSABLE_ENTITY),
    SectionNotDraft = ("section_not_draft", CONFLICT),
    KeyRejected = ("key_rejected", UNPROCESSABLE_ENTITY),
    ProofInvalid = ("proof_invalid", UNPROCESSABLE_ENTITY),
    ChallengeInvalid = ("challenge_invalid", UNPROCESSABLE_ENTITY),
    TokenInvalid = ("token_invalid", UNPROCESSABLE_ENTITY),
    EnvelopeInvalid = ("envelope_invalid", UNPROCESSABLE_ENTITY),
    DeadlinePassed = ("deadline_passed", CONFLICT),
    RevisionConflict = ("revision_conflict", CONFLICT),
    UploadOffset = ("upload_offset", CONFLICT),
    UploadInterrupted = ("upload_interrupted", BAD_REQUEST),
    UploadInProgress = ("upload_in_progress", CONFLICT),
    PartHashMismatch = ("part_hash_mismatch", UNPROCESSABLE_ENTITY),
    StorageFull = ("storage_full", INSUFFICIENT_STORAGE),
    PassRejected = ("pass_rejected", UNPROCESSABLE_ENTITY),
    TooManyRequests = ("too_many_requests", TOO_MANY_REQUESTS),
    Internal = ("internal", INTERNAL_SERVER_ERROR),
    Unavailable = ("unavailable", SERVICE_UNAVAILABLE),
}

#[derive(Debug)]
pub struct AppError {
    pub code: ErrorCode,
    /// Safe to show to the client. Never built from internal error text.
    pub message: String,
    pub details: Vec<Problem>,
    /// Internal cause, logged with the request id and never sent.
    pub source: Option<anyhow::Error>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
            source: None,
        }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, m)
    }
    pub fn unauthenticated() -> Self {
        Self::new(
            ErrorCode::Unauthenticated,
            "sign in first: send a valid session token as 'Authorization: Bearer …' (or sign in on the web page)",
        )
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, m)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }
    pub fn conflict(code: ErrorCode, m: impl Into<String>) -> Self {
        Self::new(code, m)
    }
    pub fn validation(details: Vec<Problem>) -> Self {
        let n = details.len();
        Self {
            code: ErrorCode::ValidationFailed,
            message: format!(
                "{n} problem{} with the request; see details",
                if n == 1 { "" } else { "s" }
            ),
            details,
            source: None,
        }
    }
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![Problem {
            field: field.into(),
            message: message.into(),
        }])
    }
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: "internal error; quote the request id when reporting it".into(),
            details: Vec::new(),
            source: Some(e.into()),
        }
    }
    pub fn unavailable(e: impl Into<anyhow::Error>) -> Self {
        Self {
            code: ErrorCode::Unavailable,
            message: "service temporarily unavailable; try again shortly".into(),
            details: Vec::new(),
            source: Some(e.into()),
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => AppError::not_found("record"),
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _)
            | Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | Error::DatabaseError(DatabaseErrorKind::UnableToSendCommand, _)
            | Error::BrokenTransactionManager => AppError::unavailable(e),
            other => AppError::internal(other),
        }
    }
}

impl From<std::io::Error> for AppError {
    fn from(e: std::io::Error) -> Self {
        AppError::internal(e)
    }
}

/// The error envelope as the API description shows it (the responses use
/// [`Envelope`], which borrows).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// A stable snake_case code to switch on.
    #[schema(value_type = ErrorCodeName)]
    pub error: String,
    /// What went wrong, in English, safe to show.
    pub message: String,
    /// Quote it when reporting a problem; the logs carry it.
    pub request_id: String,
    /// Every problem with the input (`validation_failed`), by field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Problem>,
}

/// The error codes, described as the closed set they are.
pub struct ErrorCodeName;

impl utoipa::PartialSchema for ErrorCodeName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
            .into()
    }
}

impl utoipa::ToSchema for ErrorCodeName {
    fn name() -> std::borrow::Cow<'static, str> {
        "ErrorCode".into()
    }
}

#[derive(Serialize)]
pub struct Envelope<'a> {
    pub error: &'a str,
    pub message: &'a str,
    pub request_id: String,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub details: &'a [Problem],
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = crate::http::request_id::current();
        if self.code.status().is_server_error() {
            match &self.source {
                Some(src) => {
                    tracing::error!(request_id, code = self.code.as_str(), error = ?src, "request failed")
                }
                None => tracing::error!(request_id, code = self.code.as_str(), "request failed"),
            }
        }
        let body = Envelope {
            error: self.code.as_str(),
            message: &self.message,
            request_id,
            details: &self.details,
        };
        let mut resp = HttpResponse::build(self.code.status());
        if self.code == ErrorCode::TooManyRequests {
            resp.insert_header(("Retry-After", "60"));
        }
        resp.json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let e = AppError::internal(anyhow::anyhow!("relation \"bids\" does not exist"));
        let resp = e.error_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message.contains("relation"));
    }
}
