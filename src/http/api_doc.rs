//! The API description (OpenAPI 3.1), generated from the route table and
//! the handlers' types, so it cannot drift from the code:
//!
//! - each route's request body, query parameters, headers and whether it
//!   needs a session (and which roles) come from its extractors
//!   ([`DescribeArg`]);
//! - its success response comes from the handler's return type
//!   ([`DescribeResponse`]): a JSON type's schema from `utoipa::ToSchema`,
//!   other media (HTML, CSV, streamed files, the WebSocket upgrade) named by
//!   the responder types in `respond.rs`;
//! - every error uses the one envelope (`components.schemas.Error`).
//!
//! See ADR 7 (`docs/adr/0007-generated-api-description.md`).

use std::collections::BTreeMap;

use actix_web::http::Method;
use serde_json::{json, Value};
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::{schema::Schema, RefOr};
use utoipa::{IntoParams, ToSchema};

use crate::domain::identity::Role;

/// What one operation needs and answers, as its extractors and its return
/// type say.
#[derive(Default)]
pub struct OpDoc {
    pub auth: Auth,
    /// The roles it is open to (empty: any signed-in user, or anyone).
    pub roles: Vec<Role>,
    /// Parameter objects (query and header).
    pub params: Vec<Value>,
    /// The request body object.
    pub body: Option<Value>,
    /// Success responses by status.
    pub responses: BTreeMap<String, Value>,
    /// Component schemas the operation refers to.
    schemas: Vec<(String, RefOr<Schema>)>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// No sign-in.
    #[default]
    None,
    /// A session token is accepted but not needed.
    Optional,
    /// A session token (or, for the room, a ticket) is needed.
    Required,
}

impl OpDoc {
    /// A reference to `T`'s schema, registering it and what it refers to.
    /// Arrays and other unnamed compositions are inlined.
    pub fn schema_of<T: ToSchema>(&mut self) -> Value {
        let mut deps = Vec::new();
        T::schemas(&mut deps);
        self.schemas.extend(deps);
        let schema = T::schema();
        let name = T::name();
        let named = matches!(
            &schema,
            RefOr::T(Schema::Object(_))
                | RefOr::T(Schema::OneOf(_))
                | RefOr::T(Schema::AllOf(_))
                | RefOr::T(Schema::AnyOf(_))
        ) && !name.is_empty()
            && !matches!(name.as_ref(), "Vec" | "Option" | "BTreeMap" | "HashMap");
        if named {
            self.schemas.push((name.to_string(), schema));
            json!({ "$ref": format!("#/components/schemas/{name}") })
        } else {
            serde_json::to_value(&schema).expect("schemas serialise")
        }
    }

    /// The request body is JSON of type `T`.
    pub fn json_body<T: ToSchema>(&mut self) {
        let schema = self.schema_of::<T>();
        self.body = Some(json!({
            "required": true,
            "content": { "application/json": { "schema": schema } },
        }));
    }

    /// A success response of JSON type `T`.
    pub fn json_response<T: ToSchema>(&mut self, status: u16, description: &str) {
        let schema = self.schema_of::<T>();
        self.responses.insert(
            status.to_string(),
            json!({
                "description": description,
                "content": { "application/json": { "schema": schema } },
            }),
        );
    }

    /// A success response of another media type.
    pub fn media_response(&mut self, status: u16, description: &str, media: &str, schema: Value) {
        self.responses.insert(
            status.to_string(),
            json!({
                "description": description,
                "content": { media: { "schema": schema } },
            }),
        );
    }

    /// Query parameters from `Q`'s fields.
    pub fn query<Q: IntoParams>(&mut self) {
        for p in Q::into_params(|| Some(ParameterIn::Query)) {
            self.params
                .push(serde_json::to_value(&p).expect("parameters serialise"));
        }
    }

    /// A request header.
    pub fn header(&mut self, name: &str, description: &str) {
        self.params.push(json!({
            "name": name, "in": "header", "required": false,
            "description": description, "schema": { "type": "string" },
        }));
    }
}

/// What an extractor adds to its operation's description.
pub trait DescribeArg {
    fn describe(_op: &mut OpDoc) {}
}

/// What a handler's arguments (a tuple of extractors) add.
pub trait DescribeArgs {
    fn describe(op: &mut OpDoc);
}

macro_rules! describe_tuples {
    ($($t:ident),*) => {
        impl<$($t: DescribeArg),*> DescribeArgs for ($($t,)*) {
            #[allow(unused_variables)]
            fn describe(op: &mut OpDoc) {
                $($t::describe(op);)*
            }
        }
    };
}

describe_tuples!();
describe_tuples!(A);
describe_tuples!(A, B);
describe_tuples!(A, B, C);
describe_tuples!(A, B, C, D);
describe_tuples!(A, B, C, D, E);
describe_tuples!(A, B, C, D, E, F);
describe_tuples!(A, B, C, D, E, F, G);

/// What a handler's answer adds: its success responses.
pub trait DescribeResponse {
    fn describe(op: &mut OpDoc);
}

impl<R: DescribeResponse> DescribeResponse for Result<R, crate::error::AppError> {
    fn describe(op: &mut OpDoc) {
        R::describe(op)
    }
}

// Extractors that add nothing to the description.
impl<T: ?Sized> DescribeArg for actix_web::web::Data<T> {}
impl DescribeArg for actix_web::HttpRequest {}
impl<T> DescribeArg for actix_web::web::Path<T> {}

impl<Q: IntoParams> DescribeArg for actix_web::web::Query<Q> {
    fn describe(op: &mut OpDoc) {
        op.query::<Q>();
    }
}

impl<T: ToSchema> DescribeArg for actix_web::web::Json<T> {
    fn describe(op: &mut OpDoc) {
        op.json_body::<T>();
    }
}

/// One operation of the document, as the route table gives it.
pub struct Operation<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub tag: &'a str,
    pub summary: &'a str,
    pub doc: OpDoc,
}

/// The generated document, and the names that were described twice with
/// different schemas (two types sharing a name: a test keeps this empty).
pub struct Document {
    pub json: Value,
    pub conflicts: Vec<String>,
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
    })
}

fn path_parameters(path: &str) -> Vec<Value> {
    let describe = |name: &str| match name {
        "id" if path.starts_with("/api/projects") => "the project's id (`prj_…`)",
        "id" if path.starts_with("/api/admin/users") => "the user's id (`usr_…`)",
        "id" => "the section's id (`sec_…`)",
        "doc" => "the document's id (`doc_…`)",
        "hash" => "the bid's envelope hash (SHA-256, hex)",
        "part" => "the part's name (`summary`, `documents`)",
        "incident" => "the incident's id (`inc_…`)",
        "objection" => "the objection's id (`obj_…` at the opening, `pob_…` in publicity)",
        "clarification" => "the clarification's id (`clr_…`)",
        "file" => "the asset's file name",
        _ => "a path segment",
    };
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            json!({
                "name": name, "in": "path", "required": true,
                "description": describe(name), "schema": { "type": "string" },
            })
        })
        .collect()
}

/// Builds the document from every operation.
pub fn document(ops: Vec<Operation<'_>>) -> Document {
    let mut schemas: BTreeMap<String, Value> = BTreeMap::new();
    let mut conflicts = Vec::new();
    let mut register = |name: String, schema: RefOr<Schema>| {
        let v = serde_json::to_value(&schema).expect("schemas serialise");
        match schemas.get(&name) {
            Some(prev) if *prev != v => {
                if !conflicts.contains(&name) {
                    conflicts.push(name)
                }
            }
            Some(_) => {}
            None => {
                schemas.insert(name, v);
            }
        }
    };
    let mut error = OpDoc::default();
    error.schema_of::<crate::error::ErrorBody>();
    for (n, s) in error.schemas.drain(..) {
        register(n, s);
    }
    let mut paths: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    for mut op in ops {
        let d = &mut op.doc;
        let mut params = path_parameters(op.path);
        params.append(&mut d.params);
        let mut responses = serde_json::Map::new();
        for (status, r) in std::mem::take(&mut d.responses) {
            responses.insert(status, r);
        }
        let writes = op.method != Method::GET;
        let mut errors: Vec<(&str, &str)> = vec![("400", "the request is malformed")];
        if d.auth == Auth::Required {
            errors.push(("401", "no valid session (or room ticket)"));
        }
        if d.auth == Auth::Required || !d.roles.is_empty() {
            errors.push(("403", "the caller may not do this here"));
        }
        errors.push(("404", "no such resource, or not visible to the caller"));
        if writes {
            errors.push((
                "409",
                "the state does not allow it now (`invalid_transition`, `conflict`, …)",
            ));
        }
        if writes || d.body.is_some() {
            errors.push(("422", "the input has problems (listed in `details`)"));
        }
        errors.push(("429", "too many requests"));
        errors.push(("500", "internal error (quote the request id)"));
        errors.push(("503", "temporarily unavailable; retry"));
        for (status, description) in errors {
            responses
                .entry(status.to_string())
                .or_insert_with(|| error_response(description));
        }
        let mut o = json!({
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": format!("{} {}", op.method, op.path),
            "parameters": params,
            "responses": responses,
            "security": match d.auth {
                Auth::None => json!([]),
                Auth::Optional => json!([{}, {"bearer": []}]),
                Auth::Required => json!([{"bearer": []}]),
            },
        });
        if !d.roles.is_empty() {
            let roles: Vec<&str> = d.roles.iter().map(|r| r.as_str()).collect();
            o["x-roles"] = json!(roles);
            o["description"] = json!(format!("Open to: {}.", roles.join(", ")));
        }
        if let Some(body) = d.body.take() {
            o["requestBody"] = body;
        }
        for (n, s) in d.schemas.drain(..) {
            register(n, s);
        }
        paths
            .entry(op.path.to_string())
            .or_default()
            .insert(op.method.as_str().to_ascii_lowercase(), o);
    }
    let json = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "kaibiao (开标) API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Electronic public-resource trading: sections, sealed bids, live openings, remote evaluation. Generated from the route table and the handlers' types. Every error uses the envelope in components.schemas.Error. Instants are RFC 3339 (UTC on output) or integer milliseconds (`…_ms`). Money is a decimal string of yuan, never a number.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "the session token from /api/auth/login"},
            },
        },
    });
    Document { json, conflicts }
}
