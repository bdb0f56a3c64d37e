//! `GET /v1/audit`, and [`audited`]: how a handler records the administrative action it just
//! applied (see [`crate::audit`] for where the trail lives and why a failed row is a 500).

use std::collections::HashMap;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use runwarm_protocol::Caller;

use super::AppState;
use super::access::Viewer;
use super::openapi::Internal;
use super::peer::Peer;
use super::problem::Problem;
use crate::audit::{AuditEntry, AuditFilter, Event, MAX_LIMIT, Via};

/// Records `event`, done by `caller` through the API, after the action was applied. A row that
/// cannot be written is a 500 saying so: the action was applied, and since every audited action
/// is idempotent the caller's retry is safe and gets recorded (module docs of [`crate::audit`]).
pub(crate) async fn audited(app: &AppState, caller: Caller, event: Event) -> Result<(), Problem> {
    let action = event.action.clone();
    let script = event.script.clone().unwrap_or_default();
    match app.audit.record_async(caller, Via::Socket, event).await {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::error!(
                action = %action,
                script = %script,
                caller_uid = caller.uid,
                caller_gid = caller.gid,
                caller_pid = caller.pid,
                error = %e,
                "AUDIT FAILURE: an administrative action was applied but could not be recorded"
            );
            Err(Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "audit-failed",
                format!("{action} was applied but its audit record could not be written: {e}"),
            )
            .code(crate::execution::ErrorCode::E005)
            .hint(Some(
                "the action is idempotent: retry it once the state directory is writable again \
                 and it will be recorded"
                    .into(),
            )))
        }
    }
}

/// Whether the caller may read the trail: admins (uid 0, the daemon's uid, `[access]
/// admin_uids`/`admin_gids`), as the access middleware resolved them for this request. No
/// [`Viewer`] (a router built without the middleware) reads nothing.
///
/// Hook for the `readers` role of `[access]`: to open the trail to readers too, return
/// `viewer.sees_all()` (admins and readers) instead.
fn may_read(viewer: Option<&Viewer>) -> bool {
    viewer.is_some_and(Viewer::is_admin)
}

#[utoipa::path(
    get,
    path = "/v1/audit",
    operation_id = "list_audit",
    tag = "audit",
    summary = "The audit trail of administrative actions, newest first",
    description = "One entry per register, tag move, disable, enable, delete, prewarm, sample \
        clone, reload and secret change: who (uid, gid, pid from the connection's peer \
        credentials; uid 0 with `via: signal` for a SIGHUP), when, what, and the state before and \
        after where it applies. Readable by admins.",
    params(
        ("script" = Option<String>, Query, description = "Only entries about this script"),
        ("action" = Option<String>, Query, description = "Only entries of this action (`register`, `tag`, `disable`, …)"),
        ("limit" = Option<u32>, Query, description = "How many (default 100)", minimum = 1, maximum = 1000),
        ("before" = Option<i64>, Query, description = "An entry id: only older entries (paging)", minimum = 1),
    ),
    responses(
        (status = 200, description = "The entries", body = Vec<AuditEntry>),
        (status = 400, description = "`limit` or `before` out of range", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "The caller may not read the audit trail", body = Problem,
            content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn list(
    State(app): State<AppState>,
    ConnectInfo(Peer(caller)): ConnectInfo<Peer>,
    viewer: Option<Extension<Viewer>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    if !may_read(viewer.as_deref()) {
        tracing::warn!(
            caller_uid = caller.uid,
            caller_gid = caller.gid,
            caller_pid = caller.pid,
            "audit trail read forbidden"
        );
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "uid {} (gid {}) may not read the audit trail",
                caller.uid, caller.gid
            ),
        )
        .hint(Some(
            "an administrator can grant it with access.admin_uids / access.admin_gids".into(),
        )));
    }
    let limit = match q.get("limit") {
        Some(l) => Some(
            l.parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    Problem::bad_request(format!("limit must be 1..={MAX_LIMIT}, got {l:?}"))
                })?,
        ),
        None => None,
    };
    let before = match q.get("before") {
        Some(b) => Some(b.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            Problem::bad_request(format!("before must be an entry id (1 or more), got {b:?}"))
        })?),
        None => None,
    };
    let filter = AuditFilter {
        script: q.get("script").cloned(),
        action: q.get("action").cloned(),
        limit,
        before,
    };
    let log = app.audit.clone();
    let rows = tokio::task::spawn_blocking(move || log.list(&filter))
        .await
        .map_err(|e| Problem::internal(format!("audit query task failed: {e}")))?
        .map_err(|e| Problem::internal(e.to_string()))?;
    Ok(Json(rows).into_response())
}
