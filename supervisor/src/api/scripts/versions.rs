//! A script's versions and the tags that point at them: the version list, one version with
//! its prepare, and moving a tag (a rollback is a move of `latest`).

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{ScriptName, unknown};
use crate::api::AppState;
use crate::api::body::{from_object, json_body};
use crate::api::openapi::{Forbidden, Internal, SlowBody, TooLarge};
use crate::api::peer::Peer;
use crate::api::problem::Problem;
use crate::audit::Event;
use crate::prepare::{PrepareState, PrepareStatus};
use crate::registry::{ScriptDetail, Version, VersionSummary};

/// One version in `GET /v1/scripts/{name}/versions`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionListItem {
    #[serde(flatten)]
    summary: VersionSummary,
    /// Where its prepare stands; absent when its runtime prepares nothing (or it was never
    /// prepared by this daemon run).
    #[serde(skip_serializing_if = "Option::is_none")]
    prepare: Option<PrepareState>,
}

/// `GET /v1/scripts/{name}/versions/{version}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionDetail<'a> {
    #[serde(flatten)]
    version: &'a Version,
    /// Its prepare: state, running step, each step's duration, cached, log, error. Absent when
    /// its runtime prepares nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    prepare: Option<PrepareStatus>,
}

#[utoipa::path(
    get,
    path = "/v1/scripts/{name}/versions",
    operation_id = "list_versions",
    tag = "scripts",
    summary = "List a script's versions, newest first",
    params(ScriptName),
    responses(
        (status = 200, description = "Its versions", body = Vec<VersionListItem>),
        (status = 404, description = "Unknown script", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn versions(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let versions = app.registry.versions(&name).ok_or_else(|| unknown(&name))?;
    let preparer = app.pools.launcher().preparer();
    let listed: Vec<VersionListItem> = versions
        .into_iter()
        .map(|summary| VersionListItem {
            prepare: preparer.state(&summary.id),
            summary,
        })
        .collect();
    Ok(Json(listed).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/scripts/{name}/versions/{version}",
    operation_id = "get_version",
    tag = "scripts",
    summary = "Show one version: manifest, files and prepare",
    params(
        ("name" = String, Path, description = "Script name"),
        ("version" = String, Path, description = "Version id, unique prefix of at least 7 hex digits, or manifest label"),
    ),
    responses(
        (status = 200, description = "The version", body = VersionDetail),
        (status = 400, description = "A version prefix or label that more than one version matches", body = Problem,
            content_type = "application/problem+json"),
        Forbidden,
        (status = 404, description = "Unknown script or version", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn version(
    State(app): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let v = app
        .registry
        .find_version(&name, &version)
        .map_err(|e| Problem::from(&e))?;
    let prepare = app.pools.launcher().preparer().status(&v.id);
    Ok(Json(VersionDetail {
        version: v.as_ref(),
        prepare,
    })
    .into_response())
}

/// `PUT /v1/scripts/{name}/tags/{tag}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TagBody {
    /// Version id or unique prefix of at least 7 hex digits.
    version: String,
}

#[utoipa::path(
    put,
    path = "/v1/scripts/{name}/tags/{tag}",
    operation_id = "set_tag",
    tag = "scripts",
    summary = "Point a tag at a version (atomic)",
    params(
        ("name" = String, Path, description = "Script name"),
        ("tag" = String, Path, description = "Tag name (`latest` too: a rollback)",
            pattern = "^[a-z0-9][a-z0-9._-]{0,63}$"),
    ),
    request_body(content = TagBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The script with its tags", body = ScriptDetail),
        (status = 400, description = "Invalid body or tag name, or an ambiguous version prefix",
            body = Problem, content_type = "application/problem+json"),
        Forbidden,
        (status = 404, description = "Unknown script or version", body = Problem,
            content_type = "application/problem+json"),
        TooLarge,
        SlowBody,
        Internal,
    )
)]
pub(crate) async fn set_tag(
    State(app): State<AppState>,
    ConnectInfo(Peer(caller)): ConnectInfo<Peer>,
    Path((name, tag)): Path<(String, String)>,
    body: Body,
) -> Result<Response, Problem> {
    let body = json_body(body, 64 * 1024, Value::Null, app.config.body_rate).await?;
    let TagBody { version } = from_object(body, "{\"version\": \"sha256:…\"}")?;
    // Read from memory just before the move: two admins moving the same tag at the same moment
    // may each record the other's old version, but each row's `after` is exact.
    let before = app
        .registry
        .script(&name)
        .and_then(|d| d.tags.get(&tag).cloned());
    let registry = app.registry.clone();
    let (n, t) = (name.clone(), tag.clone());
    tokio::task::spawn_blocking(move || registry.set_tag(&n, &t, &version))
        .await
        .map_err(|e| Problem::internal(format!("tag task failed: {e}")))?
        .map_err(|e| Problem::from(&e))?;
    let detail = app.registry.script(&name).ok_or_else(|| unknown(&name))?;
    let after = detail.tags.get(&tag).cloned();
    let event = Event::new("tag")
        .script(&name)
        .target(&tag)
        .before(json!({ "version": before }))
        .after(json!({ "version": after }));
    crate::api::audited(&app, caller, event).await?;
    Ok(Json(detail).into_response())
}
