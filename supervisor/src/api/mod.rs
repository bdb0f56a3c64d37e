//! The HTTP API on the Unix socket: the route table and the shared state.
//!
//! Handlers parse and validate input, call the domain (registry, invocation, history, pools)
//! and map the result; they hold no business logic of their own.

pub mod access;
mod audit;
mod body;
pub use body::BodyRate;
pub mod callbacks;
mod check;
mod executions;
pub(crate) mod files;
mod invoke;
pub mod openapi;
pub mod peer;
pub mod problem;
mod scripts;
mod secrets;
mod strict_json;
mod system;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use axum::Router;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Config;
use crate::history::History;
use crate::invocation::Invoker;
use crate::pool::Pools;
use crate::registry::Registry;
use crate::registry::samples::Samples;

/// Everything a handler may need, behind one `Arc`: axum clones the state for every extractor
/// and middleware of every request, and one reference count is cheaper than one per field.
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppShared>);

impl AppState {
    /// The state handlers share.
    pub fn new(shared: AppShared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppShared;

    fn deref(&self) -> &AppShared {
        &self.0
    }
}

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct AppShared {
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
    pub dispatcher: crate::invocation::dispatch::Dispatcher,
    /// `Idempotency-Key` store.
    pub idempotency: crate::invocation::idempotency::IdempotencyStore,
    /// Who may do what (swapped on reload).
    pub access: Arc<access::AccessState>,
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Invocations being run (for the shutdown grace).
    pub inflight: Arc<crate::daemon::shutdown::InFlight>,
    /// The audit trail of administrative actions.
    pub audit: crate::audit::AuditLog,
    /// Secret values scripts get in their environment.
    pub secrets: Arc<crate::secrets::SecretStore>,
    /// Subscriptions, deliveries and the callback key.
    pub callbacks: Arc<callbacks::CallbackApi>,
    /// The editor's checkers and formatters.
    pub checks: Arc<crate::check::Checks>,
}

/// The routes with their documentation: `utoipa_axum::routes!` takes each handler's path and
/// method from its `#[utoipa::path]`, so the router and `GET /v1/openapi.json` cannot disagree.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(system::healthz))
        .routes(routes!(system::readyz))
        .routes(routes!(system::metrics))
        .routes(routes!(system::info))
        .routes(routes!(system::runtimes))
        .routes(routes!(openapi::serve))
        .routes(routes!(scripts::list, scripts::register))
        .routes(routes!(scripts::show, scripts::delete))
        .routes(routes!(scripts::disable))
        .routes(routes!(scripts::enable))
        .routes(routes!(scripts::versions))
        .routes(routes!(scripts::version))
        // A catch-all, so `lib/util.py` may be sent with its `/` as is; utoipa cannot spell
        // `{*path}`, so the document lists this route through `ApiDoc`'s `paths` instead.
        .route(
            "/v1/scripts/{name}/versions/{version}/files/{*path}",
            axum::routing::get(files::read),
        )
        .routes(routes!(scripts::set_tag))
        .routes(routes!(invoke::invoke))
        .routes(routes!(executions::list))
        .routes(routes!(executions::show))
        .routes(routes!(executions::events))
        .routes(routes!(executions::cancel))
        .routes(routes!(executions::replay))
        .routes(routes!(system::pools))
        .routes(routes!(system::prewarm))
        .routes(routes!(system::samples))
        .routes(routes!(system::clone_sample))
        .routes(routes!(audit::list))
        .routes(routes!(secrets::list))
        .routes(routes!(secrets::set, secrets::remove))
        .routes(routes!(callbacks::subscribe, callbacks::subscriptions))
        .routes(routes!(callbacks::unsubscribe))
        .routes(routes!(callbacks::deliveries))
        .routes(routes!(callbacks::redeliver))
        .routes(routes!(callbacks::caller_secret))
        .routes(routes!(check::check))
        .routes(routes!(check::format))
}

pub(crate) use audit::audited;

/// The route table.
pub fn router(state: AppState) -> Router {
    let (router, _document) = routes().split_for_parts();
    router
        .fallback(system::not_found)
        .method_not_allowed_fallback(system::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::enforce,
        ))
        .with_state(state)
}
