//! What handlers answer: one type per kind of answer, each of which knows
//! how it is described in the API (`api_doc::DescribeResponse`). A handler
//! that answered a bare `HttpResponse` would have no description, so none
//! does.

use actix_web::body::BoxBody;
use actix_web::cookie::Cookie;
use actix_web::{HttpRequest, HttpResponse, Responder};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::api_doc::{DescribeResponse, OpDoc};

macro_rules! json_answer {
    ($(#[$m:meta])* $name:ident, $status:literal, $builder:ident, $what:literal) => {
        $(#[$m])*
        pub struct $name<T>(pub T);

        impl<T: Serialize> Responder for $name<T> {
            type Body = BoxBody;
            fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
                HttpResponse::$builder().json(self.0)
            }
        }

        impl<T: ToSchema> DescribeResponse for $name<T> {
            fn describe(op: &mut OpDoc) {
                op.json_response::<T>($status, $what);
            }
        }
    };
}

json_answer!(
    /// 200 with a JSON body.
    Json, 200, Ok, "done"
);
json_answer!(
    /// 201 with a JSON body: something new was made.
    Created, 201, Created, "created"
);
json_answer!(
    /// 202 with a JSON body: accepted, to happen later.
    Accepted, 202, Accepted, "accepted"
);

/// 201 when something new was made, 200 when the same request was seen
/// before (the answer then says where it stands).
pub struct CreatedOrSeen<T> {
    pub created: bool,
    pub body: T,
}

impl<T: Serialize> Responder for CreatedOrSeen<T> {
    type Body = BoxBody;
    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        if self.created {
            HttpResponse::Created().json(self.body)
        } else {
            HttpResponse::Ok().json(self.body)
        }
    }
}

impl<T: ToSchema> DescribeResponse for CreatedOrSeen<T> {
    fn describe(op: &mut OpDoc) {
        op.json_response::<T>(201, "created");
        op.json_response::<T>(200, "the same request was made before; where it stands");
    }
}

/// 204: done, nothing to say.
pub struct NoContent;

impl Responder for NoContent {
    type Body = BoxBody;
    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        HttpResponse::NoContent().finish()
    }
}

impl DescribeResponse for NoContent {
    fn describe(op: &mut OpDoc) {
        op.responses
            .insert("204".into(), json!({"description": "done"}));
    }
}

/// 200 with a JSON body that also sets cookies (a browser session's), not
/// to be stored by caches.
pub struct JsonSettingCookies<T>(pub T, pub Vec<Cookie<'static>>);

impl<T: Serialize> Responder for JsonSettingCookies<T> {
    type Body = BoxBody;
    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        let mut r = HttpResponse::Ok();
        r.insert_header(("Cache-Control", "no-store"));
        for c in self.1 {
            r.cookie(c);
        }
        r.json(self.0)
    }
}

impl<T: ToSchema> DescribeResponse for JsonSettingCookies<T> {
    fn describe(op: &mut OpDoc) {
        op.json_response::<T>(
            200,
            "done; `Set-Cookie` carries the browser session (HttpOnly) and its CSRF token",
        );
    }
}

/// 204 that also sets (or clears) cookies.
pub struct NoContentSettingCookies(pub Vec<Cookie<'static>>);

impl Responder for NoContentSettingCookies {
    type Body = BoxBody;
    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        let mut r = HttpResponse::NoContent();
        for c in self.0 {
            r.cookie(c);
        }
        r.finish()
    }
}

impl DescribeResponse for NoContentSettingCookies {
    fn describe(op: &mut OpDoc) {
        op.responses.insert(
            "204".into(),
            json!({"description": "done; `Set-Cookie` clears the browser session's cookies"}),
        );
    }
}

/// Text of a media type, with the headers it needs.
pub struct Text {
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Responder for Text {
    type Body = BoxBody;
    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        let mut r = HttpResponse::Ok();
        r.content_type(self.content_type);
        for h in self.headers {
            r.insert_header(h);
        }
        r.body(self.body)
    }
}

macro_rules! text_answer {
    ($(#[$m:meta])* $name:ident, $media:literal, $what:literal) => {
        $(#[$m])*
        pub struct $name(pub Text);

        impl Responder for $name {
            type Body = BoxBody;
            fn respond_to(self, req: &HttpRequest) -> HttpResponse {
                self.0.respond_to(req)
            }
        }

        impl DescribeResponse for $name {
            fn describe(op: &mut OpDoc) {
                op.media_response(200, $what, $media, json!({"type": "string"}));
            }
        }
    };
}

text_answer!(
    /// A page of the front end.
    Html, "text/html", "the page (HTML)"
);
text_answer!(
    /// A file of the front end (JavaScript, CSS).
    Asset, "text/javascript", "the file"
);
text_answer!(
    /// CSV text.
    Csv, "text/csv", "CSV, UTF-8, with a header row"
);
text_answer!(
    /// The Prometheus text exposition format.
    MetricsText, "text/plain", "metrics in the Prometheus text exposition format"
);

/// The published parameters, byte for byte as hashed.
pub struct ParamsBytes(pub Text);

impl Responder for ParamsBytes {
    type Body = BoxBody;
    fn respond_to(self, req: &HttpRequest) -> HttpResponse {
        self.0.respond_to(req)
    }
}

impl DescribeResponse for ParamsBytes {
    fn describe(op: &mut OpDoc) {
        let schema = op.schema_of::<crate::service::sections::SectionParams>();
        op.responses.insert(
            "200".into(),
            json!({
                "description": "the parameters exactly as hashed (JCS); `X-Params-Hash` and the ETag carry the SHA-256",
                "headers": {"X-Params-Hash": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": schema}},
            }),
        );
    }
}

/// A stored file, streamed.
pub struct Download(pub HttpResponse);

impl Responder for Download {
    type Body = BoxBody;
    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        self.0
    }
}

impl DescribeResponse for Download {
    fn describe(op: &mut OpDoc) {
        op.responses.insert(
            "200".into(),
            json!({
                "description": "the document, streamed; `X-Content-SHA256` carries its hash",
                "headers": {"X-Content-SHA256": {"schema": {"type": "string"}}},
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            }),
        );
    }
}

/// The WebSocket upgrade of the opening room.
pub struct Upgrade(pub HttpResponse);

impl Responder for Upgrade {
    type Body = BoxBody;
    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        self.0
    }
}

impl DescribeResponse for Upgrade {
    fn describe(op: &mut OpDoc) {
        op.responses.insert(
            "101".into(),
            json!({"description": "switching to the room's WebSocket; frames: hello, snapshot, event, presence, pong, error (docs/PROTOCOL.md, \"The opening room\")"}),
        );
    }
}

/// This very document.
pub struct OpenApi(pub std::sync::Arc<str>);

impl Responder for OpenApi {
    type Body = BoxBody;
    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(self.0.to_string())
    }
}

impl DescribeResponse for OpenApi {
    fn describe(op: &mut OpDoc) {
        op.json_response::<crate::domain::opaque::ApiDescription>(200, "this description");
    }
}
