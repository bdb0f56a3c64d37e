//! `GET /v1/executions`, `GET /v1/executions/{id}`, its event stream, cancel and replay.
//!
//! Every route here is scoped by the execution's owner (the uid that started it): the access
//! middleware cannot know whose an execution is, so each handler checks the record against the
//! [`Viewer`] it left in the request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{broadcast, mpsc};

use super::AppState;
use super::access::Viewer;
use super::invoke::{Accepted, prefers_async, record_response, request, submit};
use super::openapi::{DiskFull, Forbidden, Internal, ServerSentEvent};
use super::peer::Peer;
use super::problem::Problem;
use crate::execution::{ExecutionRecord, State as ExecState, State as ExecutionState};
use crate::history::ListQuery;
use crate::invocation::dispatch::CancelOutcome;
use crate::invocation::events::{Event, synthesize};
use crate::registry::Selector;

/// How often an idle event stream gets a comment line.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[utoipa::path(
    get,
    path = "/v1/executions",
    operation_id = "list_executions",
    tag = "executions",
    summary = "List execution records, newest first",
    params(
        ("script" = Option<String>, Query, description = "Script name"),
        ("state" = Option<ExecutionState>, Query, description = "Only records in this state"),
        ("limit" = Option<u32>, Query, description = "How many (default 50)", minimum = 1, maximum = 1000),
        ("before" = Option<String>, Query, description = "An execution id: only older records (paging)"),
    ),
    responses(
        (status = 200, description = "The records", body = Vec<ExecutionRecord>),
        (status = 400, description = "Unknown `state` or `limit` out of range", body = Problem, content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn list(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
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
        // Filtered in the query, not after it, so a page is full and paging stays exact.
        caller_uid: (!viewer.sees_all()).then_some(viewer.who.caller.uid),
    };
    let records = app
        .history
        .list(&query)
        .await
        .map_err(|e| Problem::internal(format!("reading history: {e}")))?;
    Ok(Json(records).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/executions/{id}",
    operation_id = "get_execution",
    tag = "executions",
    summary = "Show one execution record",
    params(("id" = String, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The record", body = ExecutionRecord),
        Forbidden,
        (status = 404, description = "No execution with this id", body = Problem, content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn show(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let mut rec = visible(&app, &viewer, &id).await?;
    let read_err =
        |e: crate::history::HistoryError| Problem::internal(format!("reading history: {e}"));
    rec.lineage.replays = app.history.replays_of(&id).await.map_err(read_err)?;
    let first = rec
        .lineage
        .retry_of
        .clone()
        .unwrap_or_else(|| rec.id.clone());
    let later = app.history.retries_of(&first).await.map_err(read_err)?;
    if !later.is_empty() {
        rec.lineage.chain = std::iter::once(first).chain(later).collect();
    }
    Ok(Json(rec).into_response())
}

/// The record of `id` if `viewer` may see it: 404 when there is none, 403 when it is another
/// caller's.
async fn visible(app: &AppState, viewer: &Viewer, id: &str) -> Result<ExecutionRecord, Problem> {
    let rec = app
        .history
        .get(id)
        .await
        .map_err(|e| Problem::internal(format!("reading history: {e}")))?
        .ok_or_else(|| Problem::not_found(format!("no execution with id {id:?}")))?;
    if viewer.may_see(&rec.caller) {
        return Ok(rec);
    }
    Err(deny(
        app,
        viewer,
        viewer.forbidden(
            "see another caller's execution",
            "access.reader_uids / access.reader_gids (or admin)",
        ),
    ))
}

/// Logs and counts a refusal made by a handler, as the access middleware does for its own.
fn deny(app: &AppState, viewer: &Viewer, p: Problem) -> Problem {
    let c = &viewer.who.caller;
    tracing::warn!(caller_uid = c.uid, caller_gid = c.gid, caller_pid = c.pid, detail = %p.detail, "request forbidden");
    app.metrics.refused(crate::metrics::Refusal::Forbidden);
    p
}

/// `GET /v1/executions/{id}/events`: Server-Sent Events, live while the execution runs and
/// replayed for a late subscriber.
#[utoipa::path(
    get,
    path = "/v1/executions/{id}/events",
    operation_id = "stream_execution_events",
    tag = "executions",
    summary = "Server-Sent Events of an execution (live, replayed when late)",
    description = "Events: `state` `{\"state\"}`, `stdout`/`stderr` `{\"text\"}` per line, `log` (a log \
        record), then `end` with the record; each `data` is one line of JSON. Comment lines keep an \
        idle stream open.",
    params(("id" = String, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The event stream: one `ServerSentEvent` after another", body = ServerSentEvent,
            content_type = "text/event-stream"),
        Forbidden,
        (status = 404, description = "No execution with this id", body = Problem, content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn events(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    // Output and logs are the owner's as much as the record is.
    visible(&app, &viewer, &id).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    if let Some(log) = app.dispatcher.events(&id) {
        let (past, live, dropped) = log.subscribe();
        tokio::spawn(async move {
            if dropped > 0 {
                let note = Bytes::from(format!(": {dropped} earlier events dropped\n\n"));
                if tx.send(note).await.is_err() {
                    return;
                }
            }
            for ev in &past {
                if tx.send(frame(ev)).await.is_err() {
                    return;
                }
            }
            let Some(mut live) = live else { return };
            loop {
                let Ok(next) = tokio::time::timeout(KEEP_ALIVE, live.recv()).await else {
                    // A comment line: keeps idle connections open and finds gone subscribers.
                    if tx
                        .send(Bytes::from_static(b": keep-alive\n\n"))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                };
                match next {
                    Ok(ev) => {
                        if tx.send(frame(&ev)).await.is_err() || ev.is_end() {
                            return;
                        }
                    }
                    // A subscriber too slow for the broadcast buffer misses events, not the end.
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let note = Bytes::from(format!(": {n} events skipped\n\n"));
                        if tx.send(note).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    } else {
        let rec = app
            .history
            .get(&id)
            .await
            .map_err(|e| Problem::internal(format!("reading history: {e}")))?
            .ok_or_else(|| Problem::not_found(format!("no execution with id {id:?}")))?;
        tokio::spawn(async move {
            let mut rec = rec;
            if !rec.state.is_terminal() {
                if tx.send(frame(&Event::state(rec.state))).await.is_err() {
                    return;
                }
                // Not run by this daemon's async machinery (a synchronous run still going):
                // its record appears when it ends.
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if tx.is_closed() {
                        return;
                    }
                    match app.history.get(&id).await {
                        Ok(Some(r)) if r.state.is_terminal() => {
                            rec = r;
                            break;
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            }
            for ev in synthesize(&rec) {
                if tx.send(frame(&ev)).await.is_err() {
                    return;
                }
            }
        });
    }
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

fn frame(ev: &Event) -> Bytes {
    // The data is one line of JSON: serde_json escapes newlines inside strings.
    Bytes::from(format!("event: {}\ndata: {}\n\n", ev.name, ev.data))
}

/// `POST /v1/executions/{id}/cancel`.
#[utoipa::path(
    post,
    path = "/v1/executions/{id}/cancel",
    operation_id = "cancel_execution",
    tag = "executions",
    summary = "Cancel: a queued execution never runs, a running one's executor is killed",
    params(("id" = String, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The cancelled record", body = ExecutionRecord,
            headers(
                ("Runwarm-Outcome" = ExecutionState, description = "The record's state"),
                ("Runwarm-Execution-Id" = String, description = "The record's id"),
            )),
        Forbidden,
        (status = 404, description = "No execution with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It had already ended", body = Problem, content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn cancel(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    // Only whoever started it (or an admin) may stop someone's work.
    let rec = app
        .history
        .get(&id)
        .await
        .map_err(|e| Problem::internal(format!("reading history: {e}")))?
        .ok_or_else(|| Problem::not_found(format!("no execution with id {id:?}")))?;
    if !viewer.may_cancel(&rec.caller) {
        return Err(deny(
            &app,
            &viewer,
            viewer.forbidden(
                "cancel another caller's execution",
                "access.admin_uids / access.admin_gids",
            ),
        ));
    }
    let outcome = app
        .dispatcher
        .cancel(&id)
        .await
        .map_err(|e| Problem::internal(format!("reading history: {e}")))?;
    match outcome {
        CancelOutcome::Done(rec) => record_response(&rec),
        CancelOutcome::AlreadyTerminal(rec) => Err(Problem::new(
            StatusCode::CONFLICT,
            "already-finished",
            format!(
                "execution {id} already ended ({}); it cannot be cancelled",
                rec.state.as_str()
            ),
        )),
        CancelOutcome::Unknown => Err(Problem::not_found(format!("no execution with id {id:?}"))),
    }
}

/// `POST /v1/executions/{id}/replay`: the same script version and payload as a new execution.
#[utoipa::path(
    post,
    path = "/v1/executions/{id}/replay",
    operation_id = "replay_execution",
    tag = "executions",
    summary = "Run the same version with the same payload as a new execution; answers like invoke",
    params(
        ("id" = String, Path, description = "Execution id"),
        ("Prefer" = Option<String>, Header, description = "`respond-async`: answer 202 once the execution is accepted"),
        ("Runwarm-Callback" = Option<String>, Header, pattern = "^(unix:/[^ ]*\\.sock|http://[^ ]+)", description = "Where to POST the new execution's terminal record (as for invoke)"),
    ),
    responses(
        (status = 200, description = "The new execution's record, whatever the outcome", body = ExecutionRecord,
            headers(
                ("Runwarm-Outcome" = ExecutionState, description = "The record's state"),
                ("Runwarm-Execution-Id" = String, description = "The record's id"),
            )),
        (status = 202, description = "Accepted (Prefer: respond-async)", body = Accepted,
            headers(
                ("Location" = String, description = "`/v1/executions/{id}` of the new execution"),
                ("Runwarm-Execution-Id" = String, description = "The new execution's id"),
            )),
        (status = 400, description = "An invalid `Runwarm-Callback`", body = Problem, content_type = "application/problem+json"),
        Forbidden,
        (status = 404, description = "No execution with this id, or its version is gone", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The script is disabled", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Admission refused", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds after which to try again"))),
        Internal,
        DiskFull,
        (status = 503, description = "No executor in time, or the daemon is draining", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds after which to try again"))),
    )
)]
pub(crate) async fn replay(
    State(app): State<AppState>,
    ConnectInfo(Peer(caller)): ConnectInfo<Peer>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    // A replay reads the original payload and runs the script: it needs both rights.
    let rec = visible(&app, &viewer, &id).await?;
    if !viewer.may_invoke(&rec.script) {
        return Err(deny(&app, &viewer, viewer.forbidden_invoke(&rec.script)));
    }
    let version = app
        .registry
        .resolve(&rec.script, &Selector::Version(rec.version.clone()))
        .map_err(|e| Problem::from(&e))?;
    let mut req = request(&app, &version, rec.payload, caller, None);
    req.lineage.replay_of = Some(rec.id);
    req.lineage.callback = super::callbacks::callback_header(&app, &headers)?;
    submit(&app, req, prefers_async(&headers), None).await
}
