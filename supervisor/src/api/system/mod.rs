//! Health, readiness, daemon info, runtimes, pools, prewarm and samples.
//!
//! The reads of the daemon's state (health, info, runtimes, pools, metrics) and the answers for
//! unknown routes are here; prewarm (`prewarm.rs`) and the samples with their clone
//! (`samples.rs`) have a file each.

mod prewarm;
mod samples;

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::problem::Problem;
use crate::pool::PoolView;
use crate::prepare::CacheFigures;
use crate::runtime::Runtime;

// `routes!` finds each handler's `#[utoipa::path]` struct (`__path_NAME`) beside it, so `api`
// keeps naming them `system::NAME` through these.
pub(crate) use prewarm::{__path_prewarm, prewarm};
pub(crate) use samples::{__path_clone_sample, __path_samples, clone_sample, samples};

// The API document's tests parse a body as `system::PrewarmBody`; nothing else names it.
#[cfg(test)]
pub(crate) use prewarm::PrewarmBody;

/// `{"status": …}` of the health routes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Status {
    /// `ok` (alive) or `ready` (taking work).
    #[schema(example = "ok")]
    status: &'static str,
}

#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "health",
    summary = "Liveness: the daemon answers",
    responses((status = 200, description = "Alive: `{\"status\": \"ok\"}`", body = Status))
)]
pub(crate) async fn healthz() -> Response {
    Json(Status { status: "ok" }).into_response()
}

#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "health",
    summary = "Readiness: 200 when taking work, 503 while starting or draining",
    responses(
        (status = 200, description = "Taking work: `{\"status\": \"ready\"}`", body = Status),
        (status = 503, description = "Starting, draining, or the disk under the state directory is full", body = Problem,
            content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds after which to ask again"))),
    )
)]
pub(crate) async fn readyz(State(app): State<AppState>) -> Response {
    let space = app.history.space();
    if space.is_full() {
        // Not ready: a balancer or an engine should send asynchronous work elsewhere.
        let mut p = Problem::disk_full(space);
        p.status = StatusCode::SERVICE_UNAVAILABLE.as_u16();
        p.title = "Service Unavailable".into();
        return p.into_response();
    }
    if app.ready.load(Ordering::Acquire) {
        Json(Status { status: "ready" }).into_response()
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

/// `GET /v1/info`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Info {
    /// Always `runwarmd`.
    name: &'static str,
    /// The daemon's version.
    version: &'static str,
    /// Version of the executor protocol it speaks.
    protocol: u32,
    /// The daemon's pid.
    pid: u32,
    /// This daemon run's id (in every executor's `RUNWARM_INSTANCE`).
    instance: String,
    /// Seconds since start.
    uptime_s: u64,
    /// The API socket.
    #[schema(value_type = String)]
    socket: std::path::PathBuf,
    /// The state directory.
    #[schema(value_type = String)]
    state_dir: std::path::PathBuf,
    /// Whether it takes work (as `/readyz`).
    ready: bool,
    /// The executor budget.
    workers: Workers,
    /// Confinement: the mode and the layers measured at start.
    sandbox: crate::sandbox::SandboxReport,
}

/// Executors and waiting invocations against the daemon's budget.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Workers {
    /// Executors alive.
    live: usize,
    /// `pools.max_workers`.
    max: usize,
    /// The memory limits of the executors alive, summed, in MiB.
    memory_mb: u64,
    /// `pools.max_memory_mb`: what they may add up to (absent when unbounded).
    #[serde(skip_serializing_if = "Option::is_none")]
    max_memory_mb: Option<u64>,
    /// Invocations waiting for an executor.
    waiting: usize,
    /// `pools.queue_max`.
    queue_max: usize,
}

#[utoipa::path(
    get,
    path = "/v1/info",
    operation_id = "get_info",
    tag = "health",
    summary = "Daemon version, uptime, worker budget, confinement layers",
    responses((status = 200, description = "Daemon facts", body = Info))
)]
pub(crate) async fn info(State(app): State<AppState>) -> Response {
    let (live, waiting) = app.pools.totals();
    let (budget, memory_mb) = app.pools.budget();
    Json(Info {
        name: "runwarmd",
        version: env!("CARGO_PKG_VERSION"),
        protocol: runwarm_protocol::PROTOCOL_VERSION,
        pid: std::process::id(),
        instance: app.pools.launcher().instance().to_owned(),
        uptime_s: app.started.elapsed().as_secs(),
        socket: app.config.socket.clone(),
        state_dir: app.config.state_dir.clone(),
        ready: app.ready.load(Ordering::Acquire),
        workers: Workers {
            live,
            max: budget.workers,
            memory_mb,
            max_memory_mb: (budget.memory_mb != u64::MAX).then_some(budget.memory_mb),
            waiting,
            queue_max: app.config.queue_max,
        },
        sandbox: app.pools.launcher().confinement().report(),
    })
    .into_response()
}

/// One runtime in `GET /v1/runtimes`: its definition, what the probe found, and its prepare
/// cache when it prepares.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RuntimeView<'a> {
    #[serde(flatten)]
    runtime: &'a Runtime,
    /// The prepare cache of this runtime (absent when the runtime prepares nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    cache: Option<CacheFigures>,
}

#[utoipa::path(
    get,
    path = "/v1/runtimes",
    operation_id = "list_runtimes",
    tag = "runtimes",
    summary = "Runtimes with availability, interpreter, version and prepare cache figures",
    responses((status = 200, description = "Every runtime, by name", body = Vec<RuntimeView>))
)]
pub(crate) async fn runtimes(State(app): State<AppState>) -> Response {
    let catalog = app.pools.launcher().catalog();
    let mut figures = app.pools.launcher().preparer().figures();
    let list: Vec<RuntimeView<'_>> = catalog
        .all()
        .map(|rt| RuntimeView {
            runtime: rt,
            cache: rt
                .def
                .prepare
                .is_some()
                .then(|| figures.remove(&rt.def.name).unwrap_or_default()),
        })
        .collect();
    Json(list).into_response()
}

#[utoipa::path(
    get,
    path = "/v1/pools",
    operation_id = "list_pools",
    tag = "pools",
    summary = "Warm pools: idle, busy, starting, waiting, spawns, cold-start p50",
    responses((status = 200, description = "One entry per script version with a pool", body = Vec<PoolView>))
)]
pub(crate) async fn pools(State(app): State<AppState>) -> Response {
    Json(app.pools.views()).into_response()
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
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "health",
    summary = "Prometheus metrics: invocations, durations, pools, queue, faults",
    responses((status = 200, description = "OpenMetrics text exposition format",
        body = String, content_type = "application/openmetrics-text"))
)]
pub(crate) async fn metrics(State(app): State<AppState>) -> Response {
    let text = app.metrics.render();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
