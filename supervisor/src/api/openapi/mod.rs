//! `GET /v1/openapi.json`: the OpenAPI 3.1 document, derived from the code.
//!
//! Every route is registered through `utoipa_axum` (`api::routes`), so a route cannot exist
//! without its `#[utoipa::path]` and the document's path and method are the router's own. The
//! bodies are the serde types the handlers really send (`#[derive(ToSchema)]` next to
//! `#[derive(Serialize)]`), so a field added to a wire type appears here by itself. What is left
//! by hand is each operation's list of answers; the schemathesis run in the e2e tests
//! (`api_fuzz`) checks that list against a real daemon.

use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::{
    ContentBuilder, Ref, RefOr, ResponseBuilder, Schema, header::HeaderBuilder, schema::Type,
};
use utoipa::{OpenApi, ToSchema};

use super::problem::{Problem, ViolationView};
use crate::events::{StateData, TextData};

/// Script and tag names: `[a-z0-9][a-z0-9._-]{0,63}` (`registry::bundle::is_valid_name`).
/// utoipa takes only literal patterns, so the attributes repeat it; tests below check that each
/// copy is this one and that this one is the registry's rule.
#[cfg(test)]
const NAME_PATTERN: &str = "^[a-z0-9][a-z0-9._-]{0,63}$";

/// The media type of every error answer.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "runwarm",
        description = "Warm script execution over HTTP/1.1 on a Unix socket.\n\n\
            Errors are `application/problem+json` (RFC 9457) with runwarm's `code` and a `hint`. \
            A path that is not listed here answers 404, and a method a listed path does not take \
            answers 405 with an `Allow` header naming the methods it does take, both as problems. \
            Routes that change something (every method but GET) may answer 403 when the daemon's \
            `[access]` policy does not grant the caller's uid or gid the route's role.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "health", description = "Liveness, readiness, metrics, daemon facts, this document"),
        (name = "runtimes", description = "Runtimes and their prepare caches"),
        (name = "scripts", description = "Registration, versions, tags, disable and enable"),
        (name = "executions", description = "Invocations and their execution records"),
        (name = "pools", description = "Warm pools"),
        (name = "samples", description = "Bundled samples"),
        (name = "secrets", description = "Secrets scripts get as environment variables (admin only; values are never returned)"),
        (name = "audit", description = "The trail of administrative actions: who, when, what, before and after"),
        (name = "callbacks", description = "Completion callbacks: subscriptions, deliveries with their attempts, redeliver"),
        (name = "editor", description = "The console editor's diagnostics and formatting, from each runtime's own tools (administrators only)"),
    ),
    components(schemas(Problem, ViolationView, StateData, TextData)),
    paths(super::files::read)
)]
pub(crate) struct ApiDoc;

/// The document.
pub fn document() -> serde_json::Value {
    let mut doc = super::routes().into_openapi();
    fallback_responses(&mut doc);
    optional_bodies(&mut doc);
    // `deny_unknown_fields` is for the runtime's TOML file; in the API the definition is
    // flattened into `Runtime` beside the probe's findings, so it cannot forbid other keys.
    if let Some(RefOr::T(Schema::Object(def))) = doc
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("RuntimeDefinition"))
    {
        def.additional_properties = None;
    }
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    doc["components"]["schemas"]["ServerSentEvent"] = server_sent_event();
    // A prewarm item names a version or a tag, not both (the handler answers 400); null is
    // absent to serde, so "one of them is absent or null". utoipa's derive has no keyword
    // across fields.
    doc["components"]["schemas"]["PrewarmItem"]["anyOf"] = serde_json::json!([
        {"properties": {"version": {"type": "null"}}},
        {"properties": {"tag": {"type": "null"}}},
    ]);
    check_paths(&mut doc);
    doc
}

/// The paths `POST /v1/check` and `/v1/format` take (`check::request::check_path`): a map's
/// keys and a string field whose rule utoipa's derive cannot attach.
fn check_paths(doc: &mut serde_json::Value) {
    use crate::check::{PATH_MAX, PATH_PATTERN};
    let rule = [
        ("pattern", serde_json::json!(PATH_PATTERN)),
        ("maxLength", serde_json::json!(PATH_MAX)),
    ];
    let schemas = "/components/schemas";
    let targets = [
        format!("{schemas}/CheckRequest/properties/path"),
        format!("{schemas}/FormatRequest/properties/path"),
    ];
    for target in targets {
        if let Some(field) = doc.pointer_mut(&target).and_then(|v| v.as_object_mut()) {
            field.extend(rule.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        }
    }
    let files = format!("{schemas}/CheckRequest/properties/files");
    if let Some(files) = doc.pointer_mut(&files).and_then(|v| v.as_object_mut()) {
        files.insert(
            "propertyNames".into(),
            serde_json::Value::Object(rule.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
        );
        files.insert("minProperties".into(), serde_json::json!(1));
    }
}

/// The document as served, built once: it does not change while the daemon runs.
static DOCUMENT: LazyLock<Vec<u8>> =
    LazyLock::new(|| serde_json::to_vec(&document()).unwrap_or_default());

/// Bodies that may be empty (the handler then reads `{}`). utoipa makes a body optional only
/// through `Option<T>`, whose schema would also admit a JSON `null` body, which these routes
/// do not take as such; so the body is documented as `T` and marked optional here.
fn optional_bodies(doc: &mut utoipa::openapi::OpenApi) {
    for path in ["/v1/scripts/{name}/invoke", "/v1/samples/{id}/clone"] {
        if let Some(body) = doc
            .paths
            .paths
            .get_mut(path)
            .and_then(|item| item.post.as_mut())
            .and_then(|op| op.request_body.as_mut())
        {
            body.required = Some(utoipa::openapi::Required::False);
        }
    }
}

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

fn server_sent_event() -> serde_json::Value {
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

#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "get_openapi",
    tag = "health",
    summary = "This document (OpenAPI 3.1)",
    responses((status = 200, description = "The OpenAPI document", body = AnyJson))
)]
pub(crate) async fn serve() -> Response {
    let mut resp = (StatusCode::OK, DOCUMENT.as_slice()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

// === answers shared by many operations ===

/// A problem answer with `description`; `retry_after` adds the `Retry-After` header.
fn problem(description: &str, retry_after: bool) -> RefOr<utoipa::openapi::Response> {
    let mut b = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    if retry_after {
        b = b.header("Retry-After", retry_after_header());
    }
    RefOr::T(b.build())
}

/// `Retry-After` in seconds.
pub(crate) fn retry_after_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some("Seconds after which the same request may succeed"))
        .build()
}

/// Declares unit types whose `IntoResponses` is one problem status: the answers many routes
/// share, written once.
macro_rules! problem_answers {
    ($($(#[$doc:meta])* $name:ident => $status:literal, $retry:literal, $desc:literal;)*) => {$(
        $(#[$doc])*
        pub(crate) struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<String, RefOr<utoipa::openapi::Response>> {
                std::collections::BTreeMap::from([($status.to_owned(), problem($desc, $retry))])
            }
        }
    )*};
}

problem_answers! {
    /// 400 for a body or parameter the route cannot take.
    BadRequest => "400", false,
        "The request is malformed: not JSON, not the documented shape, or a value out of range";
    /// 403 from the access policy (`api::access`): routes that change something, and reads of
    /// an execution (scoped by owner) or of a version's manifest.
    Forbidden => "403", false,
        "The caller's uid/gids do not hold this route's role in the daemon's [access] policy";
    /// 413 from `api::body::json_body`.
    TooLarge => "413", false,
        "The request body is larger than the route's limit (refused from `Content-Length` alone)";
    /// 408 from `api::body::json_body`: the body came slower than `server.body_min_bytes_per_s`.
    SlowBody => "408", false,
        "The request body arrived slower than the daemon's minimum rate after its grace";
    /// 507 for asynchronous invocations while the state directory's disk is full.
    DiskFull => "507", true,
        "The disk under the state directory is full: asynchronous work is refused until space returns";
    /// 500: a fault of the daemon itself (its state directory, a task that died).
    Internal => "500", false, "A fault of the daemon itself (E005), e.g. its state directory";
}

/// Adds the route-independent answers `404` and `405` to the components, so a reader of the
/// document finds them (OpenAPI has no place for the answer to a method a path lacks).
fn fallback_responses(doc: &mut utoipa::openapi::OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.responses.insert(
        "NoSuchRoute".to_owned(),
        problem("404: no route has this path", false),
    );
    let not_allowed = ResponseBuilder::new()
        .description("405: the path exists but does not take this method")
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .header(
            "Allow",
            HeaderBuilder::new()
                .schema(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(Type::String)
                        .build(),
                )
                .description(Some("The methods this path takes"))
                .build(),
        );
    components
        .responses
        .insert("MethodNotAllowed".to_owned(), RefOr::T(not_allowed.build()));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::process::Command;

    use serde_json::{Value, json};

    use super::*;

    fn doc() -> Value {
        document()
    }

    /// Whether a missing tool must fail the test (CI) rather than skip it, as in the e2e
    /// harness's `require`.
    fn strict() -> bool {
        std::env::var("RUNWARM_TEST_STRICT").is_ok_and(|v| v == "1")
            || std::env::var("CI").is_ok_and(|v| v == "true")
    }

    #[test]
    fn the_document_passes_openapi_spec_validator() {
        let tool = "openapi-spec-validator";
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            assert!(
                !strict(),
                "{tool} is not on PATH (.ci/toolchains installs it); CI is set, so this is a failure, not a skip"
            );
            eprintln!("*** SKIPPED: {tool} is not on PATH (.ci/toolchains installs it) ***");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("openapi.json");
        std::fs::write(&file, serde_json::to_vec_pretty(&doc()).unwrap()).unwrap();
        let out = Command::new(tool).arg(&file).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{tool} refused the document:\n{text}");
        assert!(text.contains("OK"), "{tool} said:\n{text}");
    }

    #[test]
    fn every_parameter_has_a_schema_and_every_answer_a_description() {
        let doc = doc();
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                for p in op["parameters"].as_array().into_iter().flatten() {
                    assert!(p.get("schema").is_some(), "{method} {path}: {p}");
                }
                let answers = op["responses"].as_object().unwrap();
                assert!(!answers.is_empty(), "{method} {path} has no answers");
                for (status, r) in answers {
                    assert!(
                        r["description"].as_str().is_some_and(|d| !d.is_empty()),
                        "{method} {path} {status}"
                    );
                    // Every route but GET ones passes the access policy, which may refuse.
                    if method != "get" {
                        assert!(answers.contains_key("403"), "{method} {path} lacks 403");
                    }
                }
            }
        }
        assert!(operations >= 24, "only {operations} operations");
    }

    #[test]
    fn content_types_are_what_the_routes_serve() {
        let doc = doc();
        let content = |path: &str, status: &str| -> Vec<String> {
            doc["paths"][path]["get"]["responses"][status]["content"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        assert_eq!(content("/metrics", "200"), ["application/openmetrics-text"]);
        assert_eq!(
            content("/v1/executions/{id}/events", "200"),
            ["text/event-stream"]
        );
        assert_eq!(content("/v1/executions/{id}", "404"), [PROBLEM_JSON]);
        let invoke = &doc["paths"]["/v1/scripts/{name}/invoke"]["post"];
        let headers: Vec<&str> = invoke["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "header")
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(headers, ["Prefer", "Runwarm-Callback", "Idempotency-Key"]);
        assert!(invoke["responses"]["202"]["headers"]["Location"].is_object());
        assert!(invoke["responses"]["200"]["headers"]["Runwarm-Outcome"].is_object());
        assert!(invoke["responses"]["429"]["headers"]["Retry-After"].is_object());
    }

    /// The JSON Schema of component `name`, with the document's components alongside so its
    /// `$ref`s resolve.
    fn component_validator(doc: &Value, name: &str) -> jsonschema::Validator {
        let schema = json!({
            "$ref": format!("#/components/schemas/{name}"),
            "components": doc["components"].clone(),
        });
        jsonschema::validator_for(&schema).unwrap()
    }

    #[test]
    fn every_sample_registration_matches_the_documented_body() {
        // The registration body is parsed by hand (registry::bundle, for its precise errors);
        // the real bodies of the samples keep its documented type honest.
        let doc = doc();
        let validator = component_validator(&doc, "RegisterRequest");
        let samples = crate::samples::Samples::embedded().unwrap();
        assert!(!samples.all().is_empty());
        for s in samples.all() {
            let errors: Vec<String> = validator
                .iter_errors(&s.body)
                .map(|e| format!("{}: {e}", e.instance_path))
                .collect();
            assert!(errors.is_empty(), "sample {}: {errors:?}", s.id);
        }
    }

    /// Every `pattern` in `value`, with where it is.
    fn patterns(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("pattern", Value::String(p)) => out.push((at.to_owned(), p.clone())),
                        _ => patterns(v, &format!("{at}/{k}"), out),
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    patterns(v, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_name_pattern_is_the_one_rule() {
        let mut found = Vec::new();
        patterns(&doc(), "", &mut found);
        let names: Vec<&(String, String)> = found
            .iter()
            .filter(|(_, p)| p.starts_with("^[a-z0-9]"))
            .collect();
        // RegisterRequest.name, CloneBody.name, the tag and the script-name path parameters.
        assert!(names.len() >= 4, "{found:?}");
        for (at, p) in names {
            assert_eq!(p, NAME_PATTERN, "{at}");
        }
    }

    #[test]
    fn the_idempotency_key_is_documented_as_the_store_takes_it() {
        let doc = doc();
        let key = doc["paths"]["/v1/scripts/{name}/invoke"]["post"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap()
            .clone();
        assert_eq!(
            key["schema"]["maxLength"],
            json!(crate::idempotency::MAX_KEY_LEN)
        );
        let v = jsonschema::validator_for(&key["schema"]).unwrap();
        for good in ["k", "a b", "~!"] {
            assert!(v.is_valid(&json!(good)), "{good:?}");
        }
        // HTTP strips outer blanks, and the handler refuses what `to_str` refuses.
        for bad in ["", " k", "k ", "\tk", "é"] {
            assert!(!v.is_valid(&json!(bad)), "{bad:?}");
        }
    }

    #[test]
    fn every_event_matches_the_documented_stream() {
        let doc = doc();
        let stream = &doc["paths"]["/v1/executions/{id}/events"]["get"]["responses"]["200"]["content"]
            ["text/event-stream"]["schema"];
        assert_eq!(stream["$ref"], "#/components/schemas/ServerSentEvent");
        let branches = doc["components"]["schemas"]["ServerSentEvent"]["oneOf"]
            .as_array()
            .unwrap()
            .clone();
        let mut rec = crate::execution::ExecutionRecord::queued(
            "01".into(),
            "s".into(),
            "sha256:0".into(),
            runwarm_protocol::RawJson::from_value(&json!({"n": 1})),
            runwarm_protocol::Caller::default(),
            "2025-01-01T00:00:00Z".into(),
        );
        rec.state = crate::execution::State::Completed;
        rec.stdout = "a\nb".into();
        rec.stderr = "e\n".into();
        rec.logs.push(crate::execution::LogRecord {
            level: "info".into(),
            message: "m".into(),
            fields: serde_json::Map::new(),
        });
        let events = crate::events::synthesize(&rec);
        let mut names: Vec<&str> = events.iter().map(|e| e.name).collect();
        names.dedup();
        assert_eq!(names, ["state", "stdout", "stderr", "log", "state", "end"]);
        for ev in &events {
            let matching: Vec<&Value> = branches
                .iter()
                .filter(|b| b["properties"]["event"]["const"] == ev.name)
                .collect();
            assert_eq!(matching.len(), 1, "{}", ev.name);
            let content = &matching[0]["properties"]["data"]["contentSchema"]["$ref"];
            let name = content.as_str().unwrap().rsplit('/').next().unwrap();
            let data: Value = serde_json::from_str(&ev.data).unwrap();
            let v = component_validator(&doc, name);
            let errors: Vec<String> = v.iter_errors(&data).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{} {}: {errors:?}", ev.name, ev.data);
        }
    }

    #[test]
    fn a_prewarm_body_is_documented_as_the_handler_takes_it() {
        let doc = doc();
        let v = component_validator(&doc, "PrewarmBody");
        let item = |extra: Value| {
            let mut i = json!({"name": "a"});
            i.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            json!({"scripts": [i]})
        };
        // The handler refuses a version and a tag together after parsing; the schema says so.
        for (body, valid) in [
            (item(json!({})), true),
            (item(json!({"version": "abc1234", "tag": null})), true),
            (item(json!({"version": "abc1234", "tag": "prod"})), false),
        ] {
            let errors: Vec<String> = v.iter_errors(&body).map(|e| e.to_string()).collect();
            assert_eq!(errors.is_empty(), valid, "{body}: {errors:?}");
        }
        // JSON Schema's `integer` includes 2.0 (this crate's validator disagrees, schemathesis's
        // does not), so the handler takes it; 1.5 is no count.
        let parse = |count: Value| {
            super::super::body::from_object::<super::super::system::PrewarmBody>(
                item(json!({ "count": count })),
                "",
            )
        };
        assert!(parse(json!(2.0)).is_ok());
        assert!(parse(json!(3)).is_ok());
        assert!(parse(json!(1.5)).is_err());
        assert!(parse(json!(-1)).is_err());
        assert!(parse(json!(5e9)).is_err());
    }

    #[test]
    fn the_name_pattern_is_the_registry_rule() {
        let re = json!({"type": "string", "pattern": NAME_PATTERN});
        let v = jsonschema::validator_for(&re).unwrap();
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        for name in [
            "a", "0", "hello", "a.b_c-d", &long, &too_long, "", "A", "-a", ".a", "a b", "a/b", "é",
            "a\n",
        ] {
            assert_eq!(
                v.is_valid(&json!(name)),
                crate::registry::is_valid_name(name),
                "{name:?}"
            );
        }
    }
}
