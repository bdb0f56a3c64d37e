//! Health, readiness, daemon info, runtimes, pools, prewarm and samples.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::body::json_body;
use super::problem::Problem;
use crate::registry::Selector;

pub(crate) async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

pub(crate) async fn readyz(State(app): State<AppState>) -> Response {
    if app.ready.load(Ordering::Acquire) {
        Json(json!({"status": "ready"})).into_response()
    } else {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "runwarmd is starting or draining",
        )
        .retry_after(1)
        .into_response()
    }
}

pub(crate) async fn info(State(app): State<AppState>) -> Response {
    let (live, waiting) = app.pools.totals();
    Json(json!({
        "name": "runwarmd",
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": runwarm_protocol::PROTOCOL_VERSION,
        "pid": std::process::id(),
        "instance": app.pools.launcher().instance(),
        "uptime_s": app.started.elapsed().as_secs(),
        "socket": app.config.socket,
        "state_dir": app.config.state_dir,
        "ready": app.ready.load(Ordering::Acquire),
        "workers": {"live": live, "max": app.config.max_workers, "waiting": waiting, "queue_max": app.config.queue_max},
        "sandbox": app.pools.launcher().confinement().report(),
    }))
    .into_response()
}

pub(crate) async fn runtimes(State(app): State<AppState>) -> Response {
    let catalog = app.pools.launcher().catalog();
    let mut figures = app.pools.launcher().preparer().figures();
    let list: Vec<Value> = catalog
        .all()
        .map(|rt| {
            let mut v = serde_json::to_value(rt).unwrap_or_default();
            if rt.def.prepare.is_some() {
                v["cache"] = serde_json::to_value(figures.remove(&rt.def.name).unwrap_or_default())
                    .unwrap_or_default();
            }
            v
        })
        .collect();
    Json(list).into_response()
}

pub(crate) async fn pools(State(app): State<AppState>) -> Response {
    Json(app.pools.views()).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrewarmBody {
    scripts: Vec<PrewarmItem>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrewarmItem {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    count: Option<u32>,
}

/// `POST /v1/prewarm`: starts executors in the background; answers at once with how many were
/// started per script (fewer than asked when the pool's `max` or the budget is reached).
pub(crate) async fn prewarm(State(app): State<AppState>, body: Body) -> Result<Response, Problem> {
    let body = json_body(body, 1 << 20, Value::Null).await?;
    let PrewarmBody { scripts } = serde_json::from_value(body).map_err(|e| {
        Problem::bad_request(format!(
            "expected {{\"scripts\": [{{\"name\": …, \"version\"|\"tag\": …, \"count\": n}}]}}: {e}"
        ))
    })?;
    let mut resolved = Vec::with_capacity(scripts.len());
    for item in &scripts {
        let selector = match (&item.version, &item.tag) {
            (Some(_), Some(_)) => {
                return Err(Problem::bad_request(format!(
                    "{}: give either version or tag, not both",
                    item.name
                )));
            }
            (Some(v), None) => Selector::Version(v.clone()),
            (None, Some(t)) => Selector::Tag(t.clone()),
            (None, None) => Selector::Latest,
        };
        let version = app
            .registry
            .resolve(&item.name, &selector)
            .map_err(|e| Problem::from(&e))?;
        resolved.push((version, item.count.unwrap_or(1).min(1024)));
    }
    let started: Vec<Value> = resolved
        .into_iter()
        .map(|(version, count)| {
            let target = app.target_cache.get_or_insert(&version);
            let n = app.pools.prewarm(&target, count);
            json!({"name": version.name, "version": version.id, "requested": count, "started": n})
        })
        .collect();
    Ok((StatusCode::ACCEPTED, Json(json!({"scripts": started}))).into_response())
}

pub(crate) async fn samples(State(app): State<AppState>) -> Response {
    Json(app.samples.all()).into_response()
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CloneBody {
    #[serde(default)]
    name: Option<String>,
}

/// `POST /v1/samples/{id}/clone`: registers a sample, optionally under another name.
pub(crate) async fn clone_sample(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let sample = app.samples.get(&id).ok_or_else(|| {
        Problem::not_found(format!("no sample {id:?}"))
            .hint(Some("list samples with: runwarm samples".into()))
    })?;
    let body = json_body(body, 64 * 1024, json!({})).await?;
    let CloneBody { name } = serde_json::from_value(body)
        .map_err(|e| Problem::bad_request(format!("expected {{\"name\": \"new-name\"}}: {e}")))?;
    let mut registration = sample.body.clone();
    if let Some(name) = name {
        registration["name"] = Value::String(name);
    }
    super::scripts::register_body(&app, registration).await
}

pub(crate) async fn not_found() -> Problem {
    Problem::not_found("no such route").hint(Some("GET /v1/openapi.json lists every route".into()))
}

pub(crate) async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this route does not take that method",
    )
    .hint(Some(
        "GET /v1/openapi.json lists every route and its methods".into(),
    ))
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics(State(app): State<AppState>) -> Response {
    let text = app
        .metrics
        .render(&app.pools.views(), app.history.pending());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
