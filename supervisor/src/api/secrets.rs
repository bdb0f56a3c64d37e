//! Secret routes: set, list (names only) and remove. Admin only: `PUT` and `DELETE` by the
//! access middleware's default for changes, `GET` by the handler (the middleware lets every
//! `GET` through as a read, and a list of secret names and their users is not for everyone).
//!
//! No answer, problem or log line here carries a value: the body is parsed into a struct whose
//! only use is the store, and the store's errors name secrets, never values.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::AppState;
use super::access::Viewer;
use super::body::json_body;
use super::openapi::{Forbidden, Internal, SlowBody, TooLarge};
use super::peer::Peer;
use super::problem::Problem;
use crate::secrets::{MAX_VALUE_CHARS, SecretError, SecretInfo, SetBy};

/// `PUT /v1/secrets/{name}`.
// For the API document only (`deny_unknown_fields` gives it no additional properties): the
// handler reads the body by hand, see `value_of`, so the field is never read.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct SecretBody {
    /// The value: 1 to 16,384 characters without NUL.
    #[schema(min_length = 1, max_length = 16384, pattern = "^[^\\u0000]*$")]
    value: String,
}

impl std::fmt::Debug for SecretBody {
    // By hand: a derived Debug would print the value wherever the body is logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBody { .. }")
    }
}

/// The answer to a set.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SecretSet {
    /// The secret's name.
    name: String,
    /// Whether it is new (false: its value was replaced).
    created: bool,
    /// Pools recycled so that new executors read the new value.
    recycled_pools: usize,
}

/// The body's `value`. Read by hand rather than with serde: serde's messages quote what they
/// got (`invalid type: integer `123456``), which here would be the secret.
fn value_of(body: Value) -> Result<String, Problem> {
    let shape = "expected {\"value\": \"…\"} (a JSON object with one string)";
    let Value::Object(mut map) = body else {
        return Err(Problem::bad_request(shape));
    };
    match (map.remove("value"), map.is_empty()) {
        (Some(Value::String(v)), true) => Ok(v),
        _ => Err(Problem::bad_request(shape)),
    }
}

fn problem(e: &SecretError) -> Problem {
    let (status, slug) = match e {
        SecretError::InvalidName(_) | SecretError::InvalidValue(_) => {
            (StatusCode::BAD_REQUEST, "invalid-secret")
        }
        SecretError::Full => (StatusCode::CONFLICT, "secret-store-full"),
        SecretError::ReadOnly(_) => (StatusCode::CONFLICT, "secret-read-only"),
        SecretError::NotFound(_) => (StatusCode::NOT_FOUND, "unknown-secret"),
        SecretError::Io { .. } => return Problem::internal(e.to_string()),
    };
    Problem::new(status, slug, e.to_string())
}

/// Scripts (by name) with a version naming each secret.
fn users(app: &AppState) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for v in app.registry.all_versions() {
        for s in &v.manifest.secrets {
            out.entry(s.name().to_owned())
                .or_default()
                .insert(v.name.clone());
        }
    }
    out
}

#[utoipa::path(
    get,
    path = "/v1/secrets",
    operation_id = "list_secrets",
    tag = "secrets",
    summary = "List secrets: names, source, who set them, when, which scripts use them; never values",
    responses(
        (status = 200, description = "Every secret, by name", body = Vec<SecretInfo>),
        Forbidden,
    )
)]
pub(crate) async fn list(
    State(app): State<AppState>,
    viewer: Option<Extension<Viewer>>,
) -> Result<Response, Problem> {
    // Without the middleware's Viewer nobody is known to be an admin.
    if !viewer.is_some_and(|Extension(v)| v.is_admin()) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only administrators may list secrets",
        )
        .hint(Some(
            "an administrator can grant it with access.admin_uids / access.admin_gids".into(),
        )));
    }
    let used = users(&app);
    let store = app.secrets.clone();
    // The systemd credentials directory is read from disk: off the async runtime.
    let list = tokio::task::spawn_blocking(move || store.list(&used))
        .await
        .map_err(|e| Problem::internal(format!("secret list task failed: {e}")))?;
    Ok(Json(list).into_response())
}

#[utoipa::path(
    put,
    path = "/v1/secrets/{name}",
    operation_id = "set_secret",
    tag = "secrets",
    summary = "Set a secret; executors of versions naming it are recycled to read the new value",
    params(("name" = String, Path, description = "Secret name (an environment variable name)",
        pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$")),
    request_body(content = SecretBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Set", body = SecretSet),
        (status = 400, description = "Invalid body, name or value (empty, over 64 KiB, NUL)",
            body = Problem, content_type = "application/problem+json"),
        Forbidden,
        (status = 409, description = "A systemd credential of that name (read-only), or the store is full",
            body = Problem, content_type = "application/problem+json"),
        TooLarge,
        SlowBody,
        Internal,
    )
)]
pub(crate) async fn set(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    // Room for the JSON quoting of a value somewhat over its limit, so an over-long value is
    // told so (400) rather than cut off as too large (413): an escaped character takes up to
    // 12 bytes (a surrogate pair of `\uXXXX`).
    let body = json_body(
        body,
        24 * MAX_VALUE_CHARS + 4096,
        Value::Null,
        app.config.body_rate,
    )
    .await?;
    let value = value_of(body)?;
    let Peer(caller) = peer;
    let by = (caller.uid != u32::MAX).then_some(SetBy {
        uid: caller.uid,
        gid: caller.gid,
    });
    let store = app.secrets.clone();
    let n = name.clone();
    let existed = tokio::task::spawn_blocking(move || store.set(&n, &value, by))
        .await
        .map_err(|e| Problem::internal(format!("secret task failed: {e}")))?
        .map_err(|e| problem(&e))?;
    let recycled_pools = app.pools.recycle_using_secret(&name);
    tracing::info!(secret = %name, created = !existed, recycled_pools, caller_uid = caller.uid, "secret set");
    let event = crate::audit::Event::new("secret.set")
        .target(&name)
        .after(json!({"created": !existed, "recycled_pools": recycled_pools}));
    super::audited(&app, caller, event).await?;
    Ok(Json(SecretSet {
        name,
        created: !existed,
        recycled_pools,
    })
    .into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/secrets/{name}",
    operation_id = "delete_secret",
    tag = "secrets",
    summary = "Remove a secret from the store",
    description = "Versions naming it fail to start new executors until it is set again; running \
        executors are recycled.",
    params(("name" = String, Path, description = "Secret name")),
    responses(
        (status = 204, description = "Removed"),
        Forbidden,
        (status = 404, description = "No such secret", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "A systemd credential (read-only)", body = Problem,
            content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn remove(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let store = app.secrets.clone();
    let n = name.clone();
    tokio::task::spawn_blocking(move || store.remove(&n))
        .await
        .map_err(|e| Problem::internal(format!("secret task failed: {e}")))?
        .map_err(|e| problem(&e))?;
    let recycled_pools = app.pools.recycle_using_secret(&name);
    let Peer(caller) = peer;
    tracing::info!(secret = %name, recycled_pools, caller_uid = caller.uid, "secret removed");
    let event = crate::audit::Event::new("secret.rm").target(&name);
    super::audited(&app, caller, event).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
