//! The HTTP API on the Unix socket: the route table and the shared state.
//!
//! Handlers parse and validate input, call the domain (registry, invocation, history, pools)
//! and map the result; they hold no business logic of their own.

pub mod access;
mod body;
mod executions;
mod invoke;
pub mod openapi;
pub mod peer;
pub mod problem;
mod scripts;
mod system;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use axum::Router;
use axum::routing::{get, post, put};

use crate::config::Config;
use crate::history::History;
use crate::invocation::Invoker;
use crate::pool::Pools;
use crate::registry::Registry;
use crate::samples::Samples;

/// Everything a handler may need.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Scripts and versions.
    pub registry: Arc<Registry>,
    /// Execution records.
    pub history: History,
    /// Runs invocations.
    pub invoker: Invoker,
    /// Warm pools.
    pub pools: Pools,
    /// Configuration in force.
    pub config: Arc<Config>,
    /// Bundled samples.
    pub samples: Arc<Samples>,
    /// Whether the daemon takes work (false before start-up completes and while draining).
    pub ready: Arc<AtomicBool>,
    /// When the daemon started.
    pub started: Instant,
    /// Pool targets by version.
    pub target_cache: Arc<invoke::TargetCache>,
    /// Runs, accepts and cancels executions.
    pub dispatcher: crate::dispatch::Dispatcher,
    /// `Idempotency-Key` store.
    pub idempotency: crate::idempotency::IdempotencyStore,
    /// Who may do what (swapped on reload).
    pub access: Arc<access::AccessState>,
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Invocations being run (for the shutdown grace).
    pub inflight: Arc<crate::shutdown::InFlight>,
}

/// The route table.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/v1/info", get(system::info))
        .route("/v1/runtimes", get(system::runtimes))
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/v1/scripts", get(scripts::list).post(scripts::register))
        .route(
            "/v1/scripts/{name}",
            get(scripts::show).delete(scripts::disable),
        )
        .route("/v1/scripts/{name}/disable", post(scripts::disable))
        .route("/v1/scripts/{name}/enable", post(scripts::enable))
        .route("/v1/scripts/{name}/versions", get(scripts::versions))
        .route(
            "/v1/scripts/{name}/versions/{version}",
            get(scripts::version),
        )
        .route("/v1/scripts/{name}/tags/{tag}", put(scripts::set_tag))
        .route("/v1/scripts/{name}/invoke", post(invoke::invoke))
        .route("/v1/executions", get(executions::list))
        .route("/v1/executions/{id}", get(executions::show))
        .route("/v1/executions/{id}/events", get(executions::events))
        .route("/v1/executions/{id}/cancel", post(executions::cancel))
        .route("/v1/executions/{id}/replay", post(executions::replay))
        .route("/v1/pools", get(system::pools))
        .route("/v1/prewarm", post(system::prewarm))
        .route("/v1/samples", get(system::samples))
        .route("/v1/samples/{id}/clone", post(system::clone_sample))
        .route("/metrics", get(system::metrics))
        .fallback(system::not_found)
        .method_not_allowed_fallback(system::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::enforce,
        ))
        .with_state(state)
}
