//! `GET /v1/openapi.json`: the OpenAPI 3.1 document, derived from the code.
//!
//! Every route is registered through `utoipa_axum` (`api::routes`), so a route cannot exist
//! without its `#[utoipa::path]` and the document's path and method are the router's own. The
//! bodies are the serde types the handlers really send (`#[derive(ToSchema)]` next to
//! `#[derive(Serialize)]`), so a field added to a wire type appears here by itself. What is left
//! by hand is each operation's list of answers; the schemathesis run in the e2e tests
//! (`api_fuzz`) checks that list against a real daemon.

mod answers;
mod schemas;

use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::{RefOr, Schema};

use super::problem::{Problem, ViolationView};
use crate::invocation::events::{StateData, TextData};

use answers::fallback_responses;
pub(crate) use answers::{BadRequest, DiskFull, Forbidden, Internal, SlowBody, TooLarge};
use schemas::server_sent_event;
pub(crate) use schemas::{AnyJson, ServerSentEvent};

/// Script and tag names: `[a-z0-9][a-z0-9._-]{0,63}` (`registry::bundle::is_valid_name`).
/// utoipa takes only literal patterns, so the attributes repeat it; tests (tests.rs) check that
/// each copy is this one and that this one is the registry's rule.
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

#[cfg(test)]
mod tests;
