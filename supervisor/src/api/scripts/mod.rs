//! Script routes: register, list, show, versions, tags, disable/enable.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::AppState;
use super::body::{from_object, json_body};
use super::openapi::{Forbidden, Internal, SlowBody, TooLarge};
use super::peer::Peer;
use super::problem::Problem;
use crate::audit::Event;
use crate::manifest::Manifest;
use crate::prepare::{PrepareState, PrepareStatus};
use crate::registry::{
    Registered, Registrant, ScriptDetail, ScriptFilter, ScriptSummary, Version, VersionSummary,
};
use runwarm_protocol::Caller;

/// The body of `POST /v1/scripts`, for the API document. `registry::bundle` parses the body by
/// hand, to answer each mistake with its own status (a file too large is 413, a bad path 400);
/// the test `every_sample_registration_matches_the_documented_body` keeps the two in step.
// Deserialize only for `deny_unknown_fields` (no additional properties): nothing parses with it,
// so its fields are never read.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct RegisterRequest {
    /// Script name.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    name: String,
    /// The manifest (`runwarm.toml` as JSON). Its `entry` must be one of `files`.
    manifest: Manifest,
    /// Path (relative, `/`-separated, no `.`/`..` segments) to the file's contents; at least
    /// one.
    files: std::collections::BTreeMap<String, FileEntry>,
}

/// One file of a registration: its text, or an object with `text` or `base64`.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub(crate) enum FileEntry {
    /// UTF-8 text.
    Text(String),
    /// Text or base64 contents, optionally executable.
    Encoded(EncodedFile),
}

/// A file given as an object: exactly one of `text` and `base64`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct EncodedFile {
    /// UTF-8 contents.
    text: Option<String>,
    /// Base64 (standard alphabet, padded) contents.
    base64: Option<String>,
    /// Whether the file is materialised with execute permission (default false).
    executable: Option<bool>,
}

/// The answer to a registration.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RegisterAnswer {
    #[serde(flatten)]
    registered: Registered,
    /// Where the version's prepare stands; absent when its runtime prepares nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    prepare: Option<PrepareState>,
}

/// One version in `GET /v1/scripts/{name}/versions`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionListItem {
    #[serde(flatten)]
    summary: VersionSummary,
    /// Where its prepare stands; absent when its runtime prepares nothing (or it was never
    /// prepared by this daemon run).
    #[serde(skip_serializing_if = "Option::is_none")]
    prepare: Option<PrepareState>,
}

/// `GET /v1/scripts/{name}/versions/{version}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionDetail<'a> {
    #[serde(flatten)]
    version: &'a Version,
    /// Its prepare: state, running step, each step's duration, cached, log, error. Absent when
    /// its runtime prepares nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    prepare: Option<PrepareStatus>,
}

/// The `{name}` path parameter of the script routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ScriptName {
    /// Script name.
    #[param(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    #[allow(dead_code)]
    name: String,
}

/// Who a connection's caller is, as the registry records it: `None` when the peer credentials
/// could not be read ([`Peer::of`] then reports `u32::MAX`), which is no one to name.
pub(crate) fn registrant(peer: Peer) -> Option<Registrant> {
    let Peer(caller) = peer;
    (caller.uid != u32::MAX).then_some(Registrant {
        uid: caller.uid,
        gid: caller.gid,
        pid: u32::try_from(caller.pid).ok().filter(|pid| *pid != 0),
    })
}

/// Registers `body` (a `POST /v1/scripts` document) for the connection's caller off the async
/// runtime (it hashes, writes files and commits SQLite), then records it in the audit trail as
/// `register`, or as `clone` with the sample id as target when `sample` is set.
/// Refuses a registration whose manifest names a secret the store does not have, naming it:
/// the version could never start an executor. Checked before the registry sees the body, so no
/// version is created; a malformed `secrets` is left to the manifest's own parse to report.
fn check_secrets_exist(app: &AppState, body: &Value) -> Result<(), Problem> {
    let Some(names) = body.pointer("/manifest/secrets").and_then(Value::as_array) else {
        return Ok(());
    };
    let missing: Vec<&str> = names
        .iter()
        .filter_map(|n| n.as_str().or_else(|| n.get("name").and_then(Value::as_str)))
        .filter(|n| crate::secrets::check_name(n).is_ok() && !app.secrets.contains(n))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::BAD_REQUEST,
        "unknown-secret",
        format!("the manifest names unknown secrets: {}", missing.join(", ")),
    )
    .hint(Some(format!(
        "set it first with: runwarm secret set {} < FILE",
        missing[0]
    ))))
}

pub(crate) async fn register_body(
    app: &AppState,
    body: Value,
    peer: Peer,
    sample: Option<&str>,
) -> Result<Response, Problem> {
    let by = registrant(peer);
    // The version `latest` pointed at before, for the trail: a registration moves it.
    let latest_before = body
        .get("name")
        .and_then(Value::as_str)
        .and_then(|n| app.registry.script(n))
        .map(|d| d.latest);
    check_secrets_exist(app, &body)?;
    let registry = app.registry.clone();
    let catalog = app.pools.launcher().catalog();
    let out = tokio::task::spawn_blocking(move || {
        registry.register_as(&body, &|rt| catalog.get(rt).is_some(), by)
    })
    .await
    .map_err(|e| Problem::internal(format!("registration task failed: {e}")))?;
    let registered: Registered = out.map_err(|e| {
        let mut p = Problem::from(&e);
        if let crate::registry::RegisterError::UnknownRuntime { .. } = e {
            let names = app.pools.launcher().catalog().names().join(", ");
            p.detail = format!("{}; known runtimes: {names}", p.detail);
        }
        p
    })?;
    let status = if registered.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let event = match sample {
        Some(id) => Event::new("clone").target(id),
        None => Event::new("register").target(&registered.version),
    }
    .script(&registered.name)
    .before(json!({ "latest": latest_before }))
    .after(json!({ "version": registered.version, "created": registered.created }));
    super::audited(app, peer.0, event).await?;
    // A re-registration retries a failed prepare: the failure may have been the network's.
    let prepare = app
        .registry
        .version(&registered.name, &registered.version)
        .and_then(|v| app.pools.launcher().submit_prepare(v.script_ref(), true))
        .map(|p| p.state);
    Ok((
        status,
        Json(RegisterAnswer {
            registered,
            prepare,
        }),
    )
        .into_response())
}

#[utoipa::path(
    post,
    path = "/v1/scripts",
    operation_id = "register_script",
    tag = "scripts",
    summary = "Register a script version",
    description = "Registers the bundle as a new immutable version (its id is the SHA-256 of its \
        files and manifest) and starts its prepare; identical content names the existing version \
        (and retries a failed prepare).",
    request_body(content = RegisterRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "A new version", body = RegisterAnswer),
        (status = 200, description = "Identical content was already registered", body = RegisterAnswer),
        (status = 400, description = "Invalid body, name, path, file, manifest or params schema, \
            unknown runtime or secret, or the entry is not among the files (E006)", body = Problem,
            content_type = "application/problem+json"),
        Forbidden,
        (status = 413, description = "The body, a file or the bundle is over its limit, or too many files",
            body = Problem, content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn register(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Body,
) -> Result<Response, Problem> {
    let body = json_body(
        body,
        app.config.max_body_bytes,
        Value::Null,
        app.config.body_rate,
    )
    .await?;
    register_body(&app, body, peer, None).await
}

#[utoipa::path(
    get,
    path = "/v1/scripts",
    operation_id = "list_scripts",
    tag = "scripts",
    summary = "List scripts, by name",
    params(
        ("tag" = Option<String>, Query, description = "A version tag of the script or a label of its latest manifest"),
        ("runtime" = Option<String>, Query, description = "Runtime of the latest version"),
        ("q" = Option<String>, Query, description = "Substring of the name or the latest description, ignoring case"),
    ),
    responses((status = 200, description = "Matching scripts", body = Vec<ScriptSummary>))
)]
pub(crate) async fn list(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let filter = ScriptFilter {
        tag: q.get("tag").cloned(),
        runtime: q.get("runtime").cloned(),
        q: q.get("q").cloned(),
    };
    Json(app.registry.list(&filter)).into_response()
}

fn unknown(name: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "unknown-script",
        format!("unknown script {name:?}"),
    )
    .hint(Some("list scripts with: runwarm ls".into()))
}

#[utoipa::path(
    get,
    path = "/v1/scripts/{name}",
    operation_id = "get_script",
    tag = "scripts",
    summary = "Show a script: tags, latest version, disabled",
    params(ScriptName),
    responses(
        (status = 200, description = "The script", body = ScriptDetail),
        (status = 404, description = "Unknown script", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn show(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let detail = app.registry.script(&name).ok_or_else(|| unknown(&name))?;
    Ok(Json(detail).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/scripts/{name}/versions",
    operation_id = "list_versions",
    tag = "scripts",
    summary = "List a script's versions, newest first",
    params(ScriptName),
    responses(
        (status = 200, description = "Its versions", body = Vec<VersionListItem>),
        (status = 404, description = "Unknown script", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn versions(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let versions = app.registry.versions(&name).ok_or_else(|| unknown(&name))?;
    let preparer = app.pools.launcher().preparer();
    let listed: Vec<VersionListItem> = versions
        .into_iter()
        .map(|summary| VersionListItem {
            prepare: preparer.state(&summary.id),
            summary,
        })
        .collect();
    Ok(Json(listed).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/scripts/{name}/versions/{version}",
    operation_id = "get_version",
    tag = "scripts",
    summary = "Show one version: manifest, files and prepare",
    params(
        ("name" = String, Path, description = "Script name"),
        ("version" = String, Path, description = "Version id, unique prefix of at least 7 hex digits, or manifest label"),
    ),
    responses(
        (status = 200, description = "The version", body = VersionDetail),
        (status = 400, description = "A version prefix or label that more than one version matches", body = Problem,
            content_type = "application/problem+json"),
        Forbidden,
        (status = 404, description = "Unknown script or version", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn version(
    State(app): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let v = app
        .registry
        .find_version(&name, &version)
        .map_err(|e| Problem::from(&e))?;
    let prepare = app.pools.launcher().preparer().status(&v.id);
    Ok(Json(VersionDetail {
        version: v.as_ref(),
        prepare,
    })
    .into_response())
}

/// `PUT /v1/scripts/{name}/tags/{tag}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TagBody {
    /// Version id or unique prefix of at least 7 hex digits.
    version: String,
}

#[utoipa::path(
    put,
    path = "/v1/scripts/{name}/tags/{tag}",
    operation_id = "set_tag",
    tag = "scripts",
    summary = "Point a tag at a version (atomic)",
    params(
        ("name" = String, Path, description = "Script name"),
        ("tag" = String, Path, description = "Tag name (`latest` too: a rollback)",
            pattern = "^[a-z0-9][a-z0-9._-]{0,63}$"),
    ),
    request_body(content = TagBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The script with its tags", body = ScriptDetail),
        (status = 400, description = "Invalid body or tag name, or an ambiguous version prefix",
            body = Problem, content_type = "application/problem+json"),
        Forbidden,
        (status = 404, description = "Unknown script or version", body = Problem,
            content_type = "application/problem+json"),
        TooLarge,
        SlowBody,
        Internal,
    )
)]
pub(crate) async fn set_tag(
    State(app): State<AppState>,
    ConnectInfo(Peer(caller)): ConnectInfo<Peer>,
    Path((name, tag)): Path<(String, String)>,
    body: Body,
) -> Result<Response, Problem> {
    let body = json_body(body, 64 * 1024, Value::Null, app.config.body_rate).await?;
    let TagBody { version } = from_object(body, "{\"version\": \"sha256:…\"}")?;
    // Read from memory just before the move: two admins moving the same tag at the same moment
    // may each record the other's old version, but each row's `after` is exact.
    let before = app
        .registry
        .script(&name)
        .and_then(|d| d.tags.get(&tag).cloned());
    let registry = app.registry.clone();
    let (n, t) = (name.clone(), tag.clone());
    tokio::task::spawn_blocking(move || registry.set_tag(&n, &t, &version))
        .await
        .map_err(|e| Problem::internal(format!("tag task failed: {e}")))?
        .map_err(|e| Problem::from(&e))?;
    let detail = app.registry.script(&name).ok_or_else(|| unknown(&name))?;
    let after = detail.tags.get(&tag).cloned();
    let event = Event::new("tag")
        .script(&name)
        .target(&tag)
        .before(json!({ "version": before }))
        .after(json!({ "version": after }));
    super::audited(&app, caller, event).await?;
    Ok(Json(detail).into_response())
}

/// Sets the flag and records `action` (`disable`, `delete` or `enable`) with the previous state.
async fn set_disabled(
    app: AppState,
    caller: Caller,
    action: &str,
    name: String,
    disabled: bool,
) -> Result<Response, Problem> {
    let was_disabled = app.registry.script(&name).map(|d| d.disabled);
    let registry = app.registry.clone();
    let n = name.clone();
    tokio::task::spawn_blocking(move || registry.set_disabled(&n, disabled))
        .await
        .map_err(|e| Problem::internal(format!("disable task failed: {e}")))?
        .map_err(|e| Problem::from(&e))?;
    let detail = app.registry.script(&name).ok_or_else(|| unknown(&name))?;
    let event = Event::new(action)
        .script(&name)
        .before(json!({ "disabled": was_disabled }))
        .after(json!({ "disabled": detail.disabled }));
    super::audited(&app, caller, event).await?;
    Ok(Json(detail).into_response())
}

/// `DELETE /v1/scripts/{name}` (DESIGN §8): a disable, as `POST …/disable`. It deletes nothing:
/// `GET` still shows the script, disabled, and `…/enable` undoes it (docs/design/0001).
#[utoipa::path(
    delete,
    path = "/v1/scripts/{name}",
    operation_id = "delete_script",
    tag = "scripts",
    summary = "Disable a script, as POST …/disable: nothing is deleted",
    description = "Versions, tags and history stay for audit, and `GET` still shows the script \
        (`disabled: true`); `POST …/enable` undoes it.",
    params(ScriptName),
    responses(
        (status = 200, description = "The script, disabled", body = ScriptDetail),
        Forbidden,
        (status = 404, description = "Unknown script", body = Problem, content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn delete(
    State(app): State<AppState>,
    ConnectInfo(Peer(caller)): ConnectInfo<Peer>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    set_disabled(app, caller, "delete", name, true).await
}

/// `POST …/disable`: versions and history stay for audit.
#[utoipa::path(
    post,
    path = "/v1/scripts/{name}/disable",
    operation_id = "disable_script",
    tag = "scripts",
    summary = "Disable a script: new invocations are refused (409)",
    params(ScriptName),
    responses(
        (status = 200, description = "The script, disabled", body = ScriptDetail),
        Forbidden,
        (status = 404, description = "Unknown script", body = Problem, content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn disable(
    State(app): State<AppState>,
    ConnectInfo(Peer(caller)): ConnectInfo<Peer>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    set_disabled(app, caller, "disable", name, true).await
}

#[utoipa::path(
    post,
    path = "/v1/scripts/{name}/enable",
    operation_id = "enable_script",
    tag = "scripts",
    summary = "Enable a disabled script",
    params(ScriptName),
    responses(
        (status = 200, description = "The script, enabled", body = ScriptDetail),
        Forbidden,
        (status = 404, description = "Unknown script", body = Problem, content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn enable(
    State(app): State<AppState>,
    ConnectInfo(Peer(caller)): ConnectInfo<Peer>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    set_disabled(app, caller, "enable", name, false).await
}
