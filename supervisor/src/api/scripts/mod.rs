//! Script routes: register, list, show, versions, tags, disable/enable.
//!
//! The list and a script's own page are here, with what every route shares (the `{name}`
//! parameter, the unknown-script answer); registration, versions with their tags, and the
//! disable flag each have a file.

mod disable;
mod register;
mod versions;

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::problem::Problem;
use crate::registry::{ScriptDetail, ScriptFilter, ScriptSummary};

// `routes!` finds each handler's `#[utoipa::path]` struct (`__path_NAME`) beside it, so `api`
// keeps naming them `scripts::NAME` through these.
pub(crate) use disable::{__path_delete, __path_disable, __path_enable, delete, disable, enable};
pub(crate) use register::{__path_register, RegisterAnswer, register, register_body};
pub(crate) use versions::{
    __path_set_tag, __path_version, __path_versions, set_tag, version, versions,
};

/// The `{name}` path parameter of the script routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ScriptName {
    /// Script name.
    #[param(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    #[allow(dead_code)]
    name: String,
}

#[utoipa::path(
    get,
    path = "/v1/scripts",
    operation_id = "list_scripts",
    tag = "scripts",
    summary = "List scripts, by name",
    params(
        ("tag" = Option<String>, Query, description = "A version tag of the script or a label of its latest manifest"),
        ("runtime" = Option<String>, Query, description = "Runtime of the latest version"),
        ("q" = Option<String>, Query, description = "Substring of the name or the latest description, ignoring case"),
    ),
    responses((status = 200, description = "Matching scripts", body = Vec<ScriptSummary>))
)]
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

#[utoipa::path(
    get,
    path = "/v1/scripts/{name}",
    operation_id = "get_script",
    tag = "scripts",
    summary = "Show a script: tags, latest version, disabled",
    params(ScriptName),
    responses(
        (status = 200, description = "The script", body = ScriptDetail),
        (status = 404, description = "Unknown script", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn show(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let detail = app.registry.script(&name).ok_or_else(|| unknown(&name))?;
    Ok(Json(detail).into_response())
}
