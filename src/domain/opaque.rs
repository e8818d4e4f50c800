//! Named wrappers for the JSON documents that cross the API opaque by
//! design: a room event's data, an audit record's detail, a log leaf. Their
//! shape depends on their kind and is specified in `docs/PROTOCOL.md`; the
//! API description names them and says where, instead of a bare object.

/// Declares `$name` as an opaque JSON object with a description.
macro_rules! opaque_json {
    ($(#[$m:meta])* $name:ident, $description:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub serde_json::Value);

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::Object)
                    .additional_properties(Some(
                        utoipa::openapi::schema::AdditionalProperties::<utoipa::openapi::schema::Schema>::FreeForm(true),
                    ))
                    .description(Some($description))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
        }
    };
}

opaque_json!(
    /// The data of one room event.
    EventData,
    "The data of one event of the section; its members depend on the event's kind (docs/PROTOCOL.md, \"The opening room\", lists every kind)."
);

opaque_json!(
    /// An audit record's detail: ids and counts only, never secrets.
    AuditDetail,
    "What the audit record adds to its action: ids and counts only, never secrets or personal data."
);

opaque_json!(
    /// One leaf of the transparency log.
    LogLeaf,
    "A transparency-log leaf: a JSON object with at least `type` and `at_ms`; each type's members are in docs/PROTOCOL.md §7."
);

opaque_json!(
    /// The event a commitment hides until the deadline (`bid.completed`,
    /// `bid.withdrawn`).
    CommittedEvent,
    "The event a salted commitment hides until the sealing: `bid.completed` or `bid.withdrawn` with its members (docs/PROTOCOL.md §3)."
);

opaque_json!(
    /// The API description itself.
    ApiDescription,
    "This OpenAPI 3.1 document (generated from the route table and the handlers' types)."
);

opaque_json!(
    /// A section's whole transcript.
    TranscriptDocument,
    "The section's transcript (`kaibiao-transcript/1`): a self-contained file `kaibiao verify` checks offline; every member is specified in docs/PROTOCOL.md (\"The transcript\")."
);
