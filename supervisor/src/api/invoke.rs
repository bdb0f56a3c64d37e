//! `POST /v1/scripts/{name}/invoke`: resolve, validate, run, record.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::body::json_body;
use super::peer::Peer;
use super::problem::{Problem, ViolationView};
use crate::execution::ErrorCode;
use crate::invocation::{InvokeRequest, new_execution_id};
use crate::pool::{AcquireError, Target};
use crate::registry::{Selector, Version};

/// Longest time limit a caller may ask for with `?timeout_ms=`.
const MAX_TIMEOUT_MS: u64 = 15 * 60 * 1000;

/// Builds the selector from `?version=` / `?tag=`.
pub(crate) fn selector(q: &HashMap<String, String>) -> Result<Selector, Problem> {
    match (q.get("version"), q.get("tag")) {
        (Some(_), Some(_)) => Err(Problem::bad_request(
            "give either ?version= or ?tag=, not both",
        )),
        (Some(v), None) => Ok(Selector::Version(v.clone())),
        (None, Some(t)) => Ok(Selector::Tag(t.clone())),
        (None, None) => Ok(Selector::Latest),
    }
}

/// The pool target of a version (the manifest is shared, not copied per call).
pub(crate) fn target_of(version: &Arc<Version>) -> Target {
    Target {
        name: version.name.clone(),
        version: version.id.clone(),
        root: version.root.clone(),
        manifest: Arc::new(version.manifest.clone()),
    }
}

pub(crate) async fn invoke(
    State(app): State<AppState>,
    ConnectInfo(Peer(caller)): ConnectInfo<Peer>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> Result<Response, Problem> {
    let selector = selector(&q)?;
    let version = app
        .registry
        .resolve(&name, &selector)
        .map_err(|e| Problem::from(&e))?;
    let payload = json_body(body, app.config.max_payload_bytes, serde_json::json!({})).await?;
    if let Err(violations) = version.validate_params(&payload) {
        let mut p = Problem::bad_request(format!(
            "the payload does not match the parameters schema of {name} ({} violation{})",
            violations.len(),
            if violations.len() == 1 { "" } else { "s" }
        ))
        .code(ErrorCode::E006);
        p.violations = violations
            .into_iter()
            .map(|v| ViolationView {
                pointer: v.pointer,
                message: v.message,
            })
            .collect();
        return Err(p);
    }
    let timeout_ms = match q.get("timeout_ms") {
        Some(t) => t
            .parse::<u64>()
            .ok()
            .filter(|ms| (1..=MAX_TIMEOUT_MS).contains(ms))
            .ok_or_else(|| {
                Problem::bad_request(format!(
                    "timeout_ms must be 1..={MAX_TIMEOUT_MS}, got {t:?}"
                ))
            })?,
        None => app.pools.launcher().timeout_ms(
            &version.manifest,
            u64::try_from(app.config.default_timeout.as_millis()).unwrap_or(u64::MAX),
        ),
    };
    let req = InvokeRequest {
        id: new_execution_id(),
        target: app.target_cache.get_or_insert(&version),
        payload,
        caller,
        timeout: Duration::from_millis(timeout_ms),
        attempt: 1,
    };
    // The run is its own task: a caller that hangs up does not cancel the execution, and its
    // record is still written.
    let invoker = app.invoker.clone();
    let history = app.history.clone();
    let metrics = Arc::clone(&app.metrics);
    let inflight = Arc::clone(&app.inflight);
    inflight.begin(crate::invocation::Invoker::queued_record(&req));
    let runtime = version.manifest.runtime.clone();
    let task = tokio::spawn(async move {
        let id = req.id.clone();
        let out = invoker.run(req).await;
        inflight.end(&id);
        if let Ok(rec) = &out {
            history.record(rec.clone());
            metrics.observe(rec, &runtime);
            tracing::info!(
                execution_id = %rec.id, script = %rec.script, version = %rec.version,
                runtime = %runtime, state = rec.state.as_str(),
                code = rec.error.as_ref().map(|e| e.code.as_str()),
                caller_uid = rec.caller.uid, caller_gid = rec.caller.gid,
                caller_pid = rec.caller.pid, cold = rec.cold,
                queue_ms = rec.timings.queue_ms, cold_start_ms = rec.timings.cold_start_ms,
                total_ms = rec.timings.total_ms,
                "execution finished"
            );
        }
        out
    });
    let rec = match task.await {
        Ok(Ok(rec)) => rec,
        Ok(Err(e)) => return Err(acquire_problem(&e)),
        Err(e) => {
            return Err(Problem::internal(format!(
                "the invocation task failed: {e}"
            )));
        }
    };
    let body = serde_json::to_vec(&rec).map_err(|e| Problem::internal(e.to_string()))?;
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        "runwarm-outcome",
        HeaderValue::from_static(rec.state.as_str()),
    );
    h.insert(
        "runwarm-execution-id",
        HeaderValue::from_str(&rec.id).unwrap_or(HeaderValue::from_static("")),
    );
    Ok(resp)
}

fn acquire_problem(e: &AcquireError) -> Problem {
    match e {
        AcquireError::QueueFull { .. } => {
            Problem::new(StatusCode::TOO_MANY_REQUESTS, "overloaded", e.to_string())
                .code(ErrorCode::E006)
                .retry_after(1)
        }
        AcquireError::WaitTimeout { .. } => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-executor",
            e.to_string(),
        )
        .code(ErrorCode::E006)
        .retry_after(1)
        .hint(Some(
            "raise the script's pool.max or the daemon's pools.max_workers".into(),
        )),
        AcquireError::ShuttingDown => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            e.to_string(),
        )
        .code(ErrorCode::E005)
        .retry_after(5),
        AcquireError::Start(_) => Problem::internal(e.to_string()),
    }
}

/// Pool targets by version, so an invocation does not copy a manifest.
#[derive(Debug, Default)]
pub struct TargetCache {
    targets: dashmap::DashMap<(String, String), Target>,
}

impl TargetCache {
    /// The target of `version`, built once.
    pub fn get_or_insert(&self, version: &Arc<Version>) -> Target {
        let key = (version.name.clone(), version.id.clone());
        if let Some(t) = self.targets.get(&key) {
            return t.clone();
        }
        self.targets
            .entry(key)
            .or_insert_with(|| target_of(version))
            .clone()
    }
}
