//! Health, readiness, daemon info, runtimes, pools, prewarm and samples.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::AppState;
use super::body::{from_object, json_body};
use super::openapi::{BadRequest, Forbidden, Internal, SlowBody, TooLarge};
use super::peer::Peer;
use super::problem::Problem;
use super::scripts::RegisterAnswer;
use crate::pool::PoolView;
use crate::prepare::CacheFigures;
use crate::registry::Selector;
use crate::runtime::Runtime;
use crate::samples::Sample;

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
            max: app.config.max_workers,
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

/// `POST /v1/prewarm`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrewarmBody {
    /// The scripts to warm.
    scripts: Vec<PrewarmItem>,
}

/// One script to warm: its latest version, or the one a version id or a tag names (not both).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrewarmItem {
    /// Script name.
    name: String,
    /// Version id or unique prefix.
    #[serde(default)]
    version: Option<String>,
    /// Tag name.
    #[serde(default)]
    tag: Option<String>,
    /// Executors to start (default 1, at most 1024 are asked for).
    #[serde(default, deserialize_with = "whole_number")]
    count: Option<u32>,
}

/// A count given as any JSON number with a whole value: the document's `integer` (JSON Schema)
/// includes `2.0`, which serde's `u32` alone refuses (the API fuzzing found it).
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error as _;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = match (n.as_u64(), n.as_f64()) {
        (Some(u), _) => Some(u),
        (None, Some(f)) if f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f) => {
            Some(f as u64)
        }
        _ => None,
    };
    whole
        .and_then(|u| u32::try_from(u).ok())
        .map(Some)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "count must be a whole number 0..=4294967295, got {n}"
            ))
        })
}

/// `202` of `POST /v1/prewarm`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PrewarmAnswer {
    /// One entry per requested script, in request order.
    scripts: Vec<PrewarmStarted>,
}

/// How many executors were started for one script.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PrewarmStarted {
    /// Script name.
    name: String,
    /// The version warmed.
    version: String,
    /// Executors asked for.
    requested: u32,
    /// Executors started (fewer than asked when the pool's `max` or the budget is reached).
    started: u32,
}

/// `POST /v1/prewarm`: starts executors in the background; answers at once with how many were
/// started per script (fewer than asked when the pool's `max` or the budget is reached).
#[utoipa::path(
    post,
    path = "/v1/prewarm",
    operation_id = "prewarm",
    tag = "pools",
    summary = "Start executors ahead of use",
    request_body(content = PrewarmBody, content_type = "application/json"),
    responses(
        (status = 202, description = "Starting: how many per script", body = PrewarmAnswer),
        BadRequest,
        Forbidden,
        (status = 404, description = "Unknown script, version or tag", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "A script is disabled", body = Problem,
            content_type = "application/problem+json"),
        TooLarge,
        SlowBody,
        Internal,
    )
)]
pub(crate) async fn prewarm(
    State(app): State<AppState>,
    ConnectInfo(Peer(caller)): ConnectInfo<Peer>,
    body: Body,
) -> Result<Response, Problem> {
    let body = json_body(body, 1 << 20, Value::Null, app.config.body_rate).await?;
    let PrewarmBody { scripts } = from_object(
        body,
        "{\"scripts\": [{\"name\": …, \"version\"|\"tag\": …, \"count\": n}]}",
    )?;
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
    let scripts: Vec<PrewarmStarted> = resolved
        .into_iter()
        .map(|(version, requested)| {
            let target = app.target_cache.get_or_insert(&version);
            let started = app.pools.prewarm(&target, requested);
            PrewarmStarted {
                name: version.name.clone(),
                version: version.id.clone(),
                requested,
                started,
            }
        })
        .collect();
    // One row per script warmed, after the starts: `started` is only known then.
    for s in &scripts {
        let event = crate::audit::Event::new("prewarm")
            .script(&s.name)
            .target(&s.version)
            .after(json!({ "requested": s.requested, "started": s.started }));
        super::audited(&app, caller, event).await?;
    }
    Ok((StatusCode::ACCEPTED, Json(PrewarmAnswer { scripts })).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/samples",
    operation_id = "list_samples",
    tag = "samples",
    summary = "Bundled sample scripts",
    responses((status = 200, description = "Every sample", body = Vec<Sample>))
)]
pub(crate) async fn samples(State(app): State<AppState>) -> Response {
    Json(app.samples.all()).into_response()
}

/// `POST /v1/samples/{id}/clone`.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloneBody {
    /// The script name to register it as (default: the sample's id).
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    name: Option<String>,
}

/// `POST /v1/samples/{id}/clone`: registers a sample, optionally under another name.
#[utoipa::path(
    post,
    path = "/v1/samples/{id}/clone",
    operation_id = "clone_sample",
    tag = "samples",
    summary = "Register a sample, optionally under a new name",
    params(("id" = String, Path, description = "Sample id (see GET /v1/samples)")),
    request_body(content = CloneBody, content_type = "application/json",
        description = "Optional; an empty body registers the sample under its own name"),
    responses(
        (status = 201, description = "Registered: a new version", body = RegisterAnswer),
        (status = 200, description = "Already registered with identical content", body = RegisterAnswer),
        BadRequest,
        Forbidden,
        (status = 404, description = "No such sample", body = Problem,
            content_type = "application/problem+json"),
        TooLarge,
        SlowBody,
        Internal,
    )
)]
pub(crate) async fn clone_sample(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let sample = app.samples.get(&id).ok_or_else(|| {
        Problem::not_found(format!("no sample {id:?}"))
            .hint(Some("list samples with: runwarm samples".into()))
    })?;
    let body = json_body(body, 64 * 1024, json!({}), app.config.body_rate).await?;
    let CloneBody { name } = from_object(body, "{\"name\": \"new-name\"}")?;
    let mut registration = sample.body.clone();
    if let Some(name) = name {
        registration["name"] = Value::String(name);
    }
    super::scripts::register_body(&app, registration, peer, Some(&id)).await
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
