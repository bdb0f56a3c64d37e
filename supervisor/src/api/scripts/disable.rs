//! Disable, enable, and `DELETE` (which is a disable): three routes over one flag, flipped and
//! recorded in the audit trail by `set_disabled`.

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{ScriptName, unknown};
use crate::api::AppState;
use crate::api::openapi::{Forbidden, Internal};
use crate::api::peer::Peer;
use crate::api::problem::Problem;
use crate::audit::Event;
use crate::registry::ScriptDetail;
use runwarm_protocol::Caller;

/// Sets the flag and records `action` (`disable`, `delete` or `enable`) with the previous state.
async fn set_disabled(
    app: AppState,
    caller: Caller,
    action: &str,
    name: String,
    disabled: bool,
) -> Result<Response, Problem> {
    let was_disabled = app.registry.script(&name).map(|d| d.disabled);
    let registry = app.registry.clone();
    let n = name.clone();
    tokio::task::spawn_blocking(move || registry.set_disabled(&n, disabled))
        .await
        .map_err(|e| Problem::internal(format!("disable task failed: {e}")))?
        .map_err(|e| Problem::from(&e))?;
    let detail = app.registry.script(&name).ok_or_else(|| unknown(&name))?;
    let event = Event::new(action)
        .script(&name)
        .before(json!({ "disabled": was_disabled }))
        .after(json!({ "disabled": detail.disabled }));
    crate::api::audited(&app, caller, event).await?;
    Ok(Json(detail).into_response())
}

/// `DELETE /v1/scripts/{name}` (DESIGN §8): a disable, as `POST …/disable`. It deletes nothing:
/// `GET` still shows the script, disabled, and `…/enable` undoes it (docs/design/0001).
#[utoipa::path(
    delete,
    path = "/v1/scripts/{name}",
    operation_id = "delete_script",
    tag = "scripts",
    summary = "Disable a script, as POST …/disable: nothing is deleted",
    description = "Versions, tags and history stay for audit, and `GET` still shows the script \
        (`disabled: true`); `POST …/enable` undoes it.",
    params(ScriptName),
    responses(
        (status = 200, description = "The script, disabled", body = ScriptDetail),
        Forbidden,
        (status = 404, description = "Unknown script", body = Problem, content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn delete(
    State(app): State<AppState>,
    ConnectInfo(Peer(caller)): ConnectInfo<Peer>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    set_disabled(app, caller, "delete", name, true).await
}

/// `POST …/disable`: versions and history stay for audit.
#[utoipa::path(
    post,
    path = "/v1/scripts/{name}/disable",
    operation_id = "disable_script",
    tag = "scripts",
    summary = "Disable a script: new invocations are refused (409)",
    params(ScriptName),
    responses(
        (status = 200, description = "The script, disabled", body = ScriptDetail),
        Forbidden,
        (status = 404, description = "Unknown script", body = Problem, content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn disable(
    State(app): State<AppState>,
    ConnectInfo(Peer(caller)): ConnectInfo<Peer>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    set_disabled(app, caller, "disable", name, true).await
}

#[utoipa::path(
    post,
    path = "/v1/scripts/{name}/enable",
    operation_id = "enable_script",
    tag = "scripts",
    summary = "Enable a disabled script",
    params(ScriptName),
    responses(
        (status = 200, description = "The script, enabled", body = ScriptDetail),
        Forbidden,
        (status = 404, description = "Unknown script", body = Problem, content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn enable(
    State(app): State<AppState>,
    ConnectInfo(Peer(caller)): ConnectInfo<Peer>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    set_disabled(app, caller, "enable", name, false).await
}
