//! The schemas written by hand: those utoipa's derive cannot express, kept apart from the
//! document's assembly so `mod.rs` reads as the list of fixes applied to the derived document.

use utoipa::ToSchema;
use utoipa::openapi::{RefOr, Schema, schema::Type};

/// One event of `GET /v1/executions/{id}/events`, as schemathesis and SSE clients see it: the
/// `event` name and its `data`, one line of JSON whose schema depends on the name. The data
/// types are the ones `events::Event` serialises; `contentSchema` has no builder in utoipa, so
/// this one schema is written as JSON (the test `every_event_matches_the_documented_stream`
/// checks real events against it).
pub(crate) struct ServerSentEvent;

impl utoipa::PartialSchema for ServerSentEvent {
    fn schema() -> RefOr<Schema> {
        // Replaced in `document` by `server_sent_event()`.
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(Type::Object)
            .into()
    }
}

impl ToSchema for ServerSentEvent {}

pub(super) fn server_sent_event() -> serde_json::Value {
    let branch = |event: &str, data: &str, what: &str| {
        serde_json::json!({
            "type": "object",
            "description": what,
            "required": ["event", "data"],
            "properties": {
                "event": {"const": event},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {"$ref": format!("#/components/schemas/{data}")},
                },
            },
        })
    };
    serde_json::json!({
        "description": "A server-sent event: `event: NAME` and `data: JSON` (one line)",
        "oneOf": [
            branch("state", "StateData", "The execution entered a state"),
            branch("stdout", "TextData", "A line the script wrote to stdout"),
            branch("stderr", "TextData", "A line the script wrote to stderr"),
            branch("log", "LogRecord", "A structured log record"),
            branch("end", "ExecutionRecord", "The end: the final record; the stream closes"),
        ],
    })
}

/// Any JSON value (a payload, the OpenAPI document itself): documented as `{}`.
pub(crate) struct AnyJson;

impl utoipa::PartialSchema for AnyJson {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
            .description(Some("Any JSON value"))
            .into()
    }
}

impl ToSchema for AnyJson {}
