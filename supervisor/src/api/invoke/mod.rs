//! `POST /v1/scripts/{name}/invoke`: resolve, validate, then run (`200` with the record) or
//! accept (`Prefer: respond-async`: `202` with the id once the record is durable), honouring
//! `Idempotency-Key`.
//!
//! The route and the checks before admission are here; running or accepting the checked request
//! (with the idempotency claim and the refusals) is in `submit.rs`, the `200` and `202` answers
//! in `answers.rs`.

mod answers;
mod submit;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::AppState;
use super::body::json_payload;
use super::openapi::{AnyJson, DiskFull, Forbidden, Internal, SlowBody, TooLarge};
use super::peer::Peer;
use super::problem::{Problem, ViolationView};
use runwarm_protocol::{Caller, RawJson};

use crate::execution::{ErrorCode, ExecutionRecord, State as ExecutionState};
use crate::invocation::idempotency::{MAX_KEY_LEN, fingerprint, valid_key};
use crate::invocation::{InvokeRequest, new_execution_id};
use crate::metrics::Refusal;
use crate::pool::Target;
use crate::registry::{Selector, Version};

pub(crate) use answers::{Accepted, record_response};
pub(crate) use submit::submit;

/// Longest time limit a caller may ask for with `?timeout_ms=`.
const MAX_TIMEOUT_MS: u64 = 15 * 60 * 1000;

/// Builds the selector from `?version=` / `?tag=`.
pub(crate) fn selector(q: &HashMap<String, String>) -> Result<Selector, Problem> {
    Selector::of(q.get("version"), q.get("tag"))
        .ok_or_else(|| Problem::bad_request("give either ?version= or ?tag=, not both"))
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

#[utoipa::path(
    post,
    path = "/v1/scripts/{name}/invoke",
    operation_id = "invoke_script",
    tag = "executions",
    summary = "Invoke a script; the body is the payload",
    description = "Runs the script's latest version (or the one `version` or `tag` names, not both) \
        and answers 200 with the execution record whatever the outcome; a problem only when \
        nothing ran. With `Prefer: respond-async` it answers 202 as soon as the queued record is \
        on disk.",
    params(
        ("name" = String, Path, description = "Script name"),
        ("version" = Option<String>, Query, description = "Version id, unique prefix of at least 7 hex digits, or a manifest label carried by one version"),
        ("tag" = Option<String>, Query, description = "Tag name"),
        ("timeout_ms" = Option<u64>, Query, description = "Time limit of this call in milliseconds (default: the manifest's)",
            minimum = 1, maximum = 900000),
        ("Prefer" = Option<String>, Header, description = "`respond-async`: answer 202 once the execution is accepted"),
        ("Runwarm-Callback" = Option<String>, Header, pattern = "^(unix:/[^ ]*\\.sock|http://[^ ]+)", description = "Where to POST the terminal record, signed, at least once: \
            `unix:/path/to.sock/http/path` or `http://127.0.0.1:PORT/path` (other hosts only if `[callbacks] allow_hosts` names them)"),
        ("Idempotency-Key" = Option<String>, Header, description = "The same key with the same request returns the same \
            execution for 24 h (sync: its record, async: its id); with another request it is 409",
            min_length = 1, max_length = 256, pattern = "^[!-~]([ -~]*[!-~])?$"),
    ),
    request_body(content = AnyJson, content_type = "application/json",
        description = "The payload, checked against the version's `params` schema (empty: `{}`)"),
    responses(
        (status = 200, description = "The execution record, whatever the outcome", body = ExecutionRecord,
            headers(
                ("Runwarm-Outcome" = ExecutionState, description = "The record's state"),
                ("Runwarm-Execution-Id" = String, description = "The record's id"),
            )),
        (status = 202, description = "Accepted (Prefer: respond-async)", body = Accepted,
            headers(
                ("Location" = String, description = "`/v1/executions/{id}`"),
                ("Runwarm-Execution-Id" = String, description = "The execution's id"),
            )),
        (status = 400, description = "Invalid payload (E006, with `violations`), both `version` and `tag`, an ambiguous label, \
            an ambiguous version prefix, a bad `timeout_ms` or `Idempotency-Key`", body = Problem,
            content_type = "application/problem+json"),
        Forbidden,
        (status = 404, description = "Unknown script, version or tag", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "The script is disabled, or the `Idempotency-Key` was used for another request",
            body = Problem, content_type = "application/problem+json"),
        TooLarge,
        SlowBody,
        (status = 429, description = "Admission refused: the script's `max_concurrency`, the queue bound, or the caller's rate",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds after which to try again"))),
        Internal,
        DiskFull,
        (status = 503, description = "No executor in time, or the daemon is draining",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds after which to try again"))),
    )
)]
pub(crate) async fn invoke(
    State(app): State<AppState>,
    ConnectInfo(Peer(caller)): ConnectInfo<Peer>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    // Refusals from here on (admission, queue) are counted by the dispatcher.
    let (req, idempotency) = checked(&app, caller, &name, &q, &headers, body)
        .await
        .inspect_err(|p| {
            if let Some(why) = Refusal::of_problem(p) {
                app.metrics.refused(why);
            }
        })?;
    submit(&app, req, prefers_async(&headers), idempotency).await
}

/// Resolves, reads and checks an invocation: every refusal before admission.
async fn checked(
    app: &AppState,
    caller: Caller,
    name: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(InvokeRequest, Option<(String, String)>), Problem> {
    let selector = selector(q)?;
    let version = app
        .registry
        .resolve(name, &selector)
        .map_err(|e| Problem::from(&e))?;
    let payload = json_payload(body, app.config.max_payload_bytes, app.config.body_rate).await?;
    validate(name, &version, &payload)?;
    let timeout_ms = match q.get("timeout_ms") {
        Some(t) => Some(
            t.parse::<u64>()
                .ok()
                .filter(|ms| (1..=MAX_TIMEOUT_MS).contains(ms))
                .ok_or_else(|| {
                    Problem::bad_request(format!(
                        "timeout_ms must be 1..={MAX_TIMEOUT_MS}, got {t:?}"
                    ))
                })?,
        ),
        None => None,
    };
    let idempotency = match headers.get("idempotency-key") {
        Some(key) => {
            let key = key.to_str().ok().filter(|k| valid_key(k)).ok_or_else(|| {
                Problem::bad_request(format!(
                    "Idempotency-Key must be 1..={MAX_KEY_LEN} printable ASCII characters, \
                         spaces only between others"
                ))
            })?;
            let selector_text = format!("{:?}/{:?}", q.get("version"), q.get("tag"));
            // Over the payload as a tree serialises, as keys stored before the payload was
            // kept as text were: the same request keeps matching its key across an upgrade.
            let body = payload
                .to_value()
                .and_then(|v| serde_json::to_vec(&v))
                .unwrap_or_default();
            Some((key.to_owned(), fingerprint(name, &selector_text, &body)))
        }
        None => None,
    };
    let mut req = request(app, &version, payload, caller, timeout_ms);
    req.lineage.callback = super::callbacks::callback_header(app, headers)?;
    Ok((req, idempotency))
}

/// Checks the payload against the version's parameter schema.
pub(crate) fn validate(name: &str, version: &Version, payload: &RawJson) -> Result<(), Problem> {
    if let Err(violations) = version.validate_params_text(payload) {
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
    Ok(())
}

/// Whether the caller sent `Prefer: respond-async`.
pub(crate) fn prefers_async(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
        })
    })
}

/// A new execution of `version`.
pub(crate) fn request(
    app: &AppState,
    version: &Arc<Version>,
    payload: impl Into<Arc<RawJson>>,
    caller: Caller,
    timeout_ms: Option<u64>,
) -> InvokeRequest {
    let timeout_ms = timeout_ms.unwrap_or_else(|| {
        app.pools.launcher().timeout_ms(
            &version.manifest,
            u64::try_from(app.config.default_timeout.as_millis()).unwrap_or(u64::MAX),
        )
    });
    InvokeRequest {
        id: new_execution_id(),
        target: app.target_cache.get_or_insert(version),
        payload: payload.into(),
        caller,
        timeout: Duration::from_millis(timeout_ms),
        attempt: 1,
        live: None,
        queued_at: None,
        not_before: None,
        lineage: crate::execution::Lineage::default(),
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
