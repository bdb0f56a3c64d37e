//! The answers of an invocation that ran or was accepted: `200` with the record and the headers
//! naming its outcome, `202` with the id and where to follow it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::problem::Problem;
use crate::execution::{ExecutionRecord, State as ExecState};

/// `200` with the record.
pub(crate) fn record_response(rec: &ExecutionRecord) -> Result<Response, Problem> {
    let body = serde_json::to_vec(rec).map_err(|e| Problem::internal(e.to_string()))?;
    Ok(record_body_response(rec, body.into()))
}

/// `200` with a synchronous execution's record, as already serialised for history.
pub(super) fn finished_response(
    done: &crate::invocation::dispatch::Finished,
) -> Result<Response, Problem> {
    match &done.json {
        Some(json) => Ok(record_body_response(&done.record, json.clone())),
        None => record_response(&done.record),
    }
}

/// `200` with `body`, the JSON of `rec`, and the headers naming its outcome and id.
fn record_body_response(rec: &ExecutionRecord, body: bytes::Bytes) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        "runwarm-outcome",
        HeaderValue::from_static(rec.state.as_str()),
    );
    h.insert(
        "runwarm-execution-id",
        HeaderValue::from_str(&rec.id).unwrap_or(HeaderValue::from_static("")),
    );
    resp
}

/// The `202` body of an accepted asynchronous execution.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Accepted {
    /// The execution id.
    id: String,
    /// Always `queued` at acceptance.
    state: ExecState,
}

/// `202` with the id and where to find the execution.
pub(super) fn accepted_response(id: &str) -> Response {
    let body = serde_json::to_vec(&Accepted {
        id: id.to_owned(),
        state: ExecState::Queued,
    })
    .unwrap_or_default();
    let mut resp = (StatusCode::ACCEPTED, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/executions/{id}")) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(id) {
        h.insert("runwarm-execution-id", v);
    }
    resp
}
