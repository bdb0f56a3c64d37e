//! `POST /v1/scripts`: a registration, with the body the document shows (the registry parses
//! the real one by hand) and the secret check before it. `register_body` is shared with a
//! sample's clone (`api::system`), which registers the same way.

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::body::json_body;
use crate::api::openapi::{Forbidden, Internal};
use crate::api::peer::Peer;
use crate::api::problem::Problem;
use crate::audit::Event;
use crate::prepare::PrepareState;
use crate::registry::manifest::Manifest;
use crate::registry::{Registered, Registrant};

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

/// Registers `body` (a `POST /v1/scripts` document) for the connection's caller off the async
/// runtime (it hashes, writes files and commits SQLite), then records it in the audit trail as
/// `register`, or as `clone` with the sample id as target when `sample` is set.
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
    crate::api::audited(app, peer.0, event).await?;
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
