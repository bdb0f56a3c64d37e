//! `GET /v1/executions` and `GET /v1/executions/{id}`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::problem::Problem;
use crate::execution::State as ExecState;
use crate::history::ListQuery;

pub(crate) async fn list(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    let state = match q.get("state") {
        Some(s) => Some(ExecState::parse(s).ok_or_else(|| {
            Problem::bad_request(format!(
                "unknown state {s:?}: use queued, provisioning, running, completed, failed, timeout or cancelled"
            ))
        })?),
        None => None,
    };
    let limit = match q.get("limit") {
        Some(l) => Some(
            l.parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    Problem::bad_request(format!("limit must be 1..=1000, got {l:?}"))
                })?,
        ),
        None => None,
    };
    let query = ListQuery {
        script: q.get("script").cloned(),
        state,
        limit,
        before: q.get("before").cloned(),
    };
    let records = app
        .history
        .list(&query)
        .await
        .map_err(|e| Problem::internal(format!("reading history: {e}")))?;
    Ok(Json(records).into_response())
}

pub(crate) async fn show(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    match app.history.get(&id).await {
        Ok(Some(rec)) => Ok(Json(rec).into_response()),
        Ok(None) => Err(Problem::not_found(format!("no execution with id {id:?}"))),
        Err(e) => Err(Problem::internal(format!("reading history: {e}"))),
    }
}
