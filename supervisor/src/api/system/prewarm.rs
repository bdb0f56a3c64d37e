//! `POST /v1/prewarm`: its body, resolved to versions, and the starts it answers with; apart
//! from the reads beside it as the one route here that changes something (and is audited).

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::body::{from_object, json_body};
use crate::api::openapi::{BadRequest, Forbidden, Internal, SlowBody, TooLarge};
use crate::api::peer::Peer;
use crate::api::problem::Problem;
use crate::registry::Selector;

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
        let selector = Selector::of(item.version.as_ref(), item.tag.as_ref()).ok_or_else(|| {
            Problem::bad_request(format!(
                "{}: give either version or tag, not both",
                item.name
            ))
        })?;
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
        crate::api::audited(&app, caller, event).await?;
    }
    Ok((StatusCode::ACCEPTED, Json(PrewarmAnswer { scripts })).into_response())
}
