//! Script routes: register, list, show, versions, tags, disable/enable.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::body::json_body;
use super::problem::Problem;
use crate::registry::{Registered, ScriptFilter};

/// Registers `body` (a `POST /v1/scripts` document) off the async runtime: it hashes, writes
/// files and commits SQLite.
pub(crate) async fn register_body(app: &AppState, body: Value) -> Result<Response, Problem> {
    let registry = app.registry.clone();
    let catalog = app.pools.launcher().catalog();
    let out = tokio::task::spawn_blocking(move || {
        registry.register(&body, &|rt| catalog.get(rt).is_some())
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
    let mut answer = serde_json::to_value(&registered).unwrap_or_default();
    if let Some(v) = app.registry.version(&registered.name, &registered.version) {
        // A re-registration retries a failed prepare: the failure may have been the network's.
        if let Some(p) = app.pools.launcher().submit_prepare(v.script_ref(), true) {
            answer["prepare"] = serde_json::to_value(p.state).unwrap_or_default();
        }
    }
    Ok((status, Json(answer)).into_response())
}

pub(crate) async fn register(State(app): State<AppState>, body: Body) -> Result<Response, Problem> {
    let body = json_body(body, app.config.max_body_bytes, Value::Null).await?;
    register_body(&app, body).await
}

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

pub(crate) async fn show(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let detail = app.registry.script(&name).ok_or_else(|| unknown(&name))?;
    Ok(Json(detail).into_response())
}

pub(crate) async fn versions(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let versions = app.registry.versions(&name).ok_or_else(|| unknown(&name))?;
    let preparer = app.pools.launcher().preparer();
    let listed: Vec<Value> = versions
        .into_iter()
        .map(|v| {
            let state = preparer.state(&v.id);
            let mut v = serde_json::to_value(v).unwrap_or_default();
            if let Some(state) = state {
                v["prepare"] = serde_json::to_value(state).unwrap_or_default();
            }
            v
        })
        .collect();
    Ok(Json(listed).into_response())
}

pub(crate) async fn version(
    State(app): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let v = app.registry.version(&name, &version).ok_or_else(|| {
        Problem::not_found(format!("script {name:?} has no version {version:?}")).hint(Some(
            format!("list its versions with: runwarm versions {name}"),
        ))
    })?;
    let mut answer = serde_json::to_value(v.as_ref()).unwrap_or_default();
    if let Some(p) = app.pools.launcher().preparer().status(&v.id) {
        answer["prepare"] = serde_json::to_value(p).unwrap_or_default();
    }
    Ok(Json(answer).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TagBody {
    version: String,
}

pub(crate) async fn set_tag(
    State(app): State<AppState>,
    Path((name, tag)): Path<(String, String)>,
    body: Body,
) -> Result<Response, Problem> {
    let body = json_body(body, 64 * 1024, Value::Null).await?;
    let TagBody { version } = serde_json::from_value(body).map_err(|e| {
        Problem::bad_request(format!("expected {{\"version\": \"sha256:…\"}}: {e}"))
    })?;
    let registry = app.registry.clone();
    let (n, t) = (name.clone(), tag.clone());
    tokio::task::spawn_blocking(move || registry.set_tag(&n, &t, &version))
        .await
        .map_err(|e| Problem::internal(format!("tag task failed: {e}")))?
        .map_err(|e| Problem::from(&e))?;
    let detail = app.registry.script(&name).ok_or_else(|| unknown(&name))?;
    Ok(Json(detail).into_response())
}

async fn set_disabled(app: AppState, name: String, disabled: bool) -> Result<Response, Problem> {
    let registry = app.registry.clone();
    let n = name.clone();
    tokio::task::spawn_blocking(move || registry.set_disabled(&n, disabled))
        .await
        .map_err(|e| Problem::internal(format!("disable task failed: {e}")))?
        .map_err(|e| Problem::from(&e))?;
    let detail = app.registry.script(&name).ok_or_else(|| unknown(&name))?;
    Ok(Json(detail).into_response())
}

/// `DELETE /v1/scripts/{name}` and `POST …/disable`: versions and history stay for audit.
pub(crate) async fn disable(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    set_disabled(app, name, true).await
}

pub(crate) async fn enable(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    set_disabled(app, name, false).await
}
