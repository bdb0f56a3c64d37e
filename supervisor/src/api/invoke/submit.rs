//! Running or accepting a checked invocation: the `Idempotency-Key` claim, the dispatcher, and
//! the problem a refusal answers with; apart from the checks because other routes (a replay)
//! submit too.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;

use super::AppState;
use super::answers::{accepted_response, finished_response, record_response};
use crate::api::problem::Problem;
use crate::execution::ErrorCode;
use crate::history::HistoryError;
use crate::invocation::InvokeRequest;
use crate::invocation::dispatch::Refused;
use crate::invocation::idempotency::Claim;
use crate::metrics::Refusal;
use crate::pool::AcquireError;

/// Runs or accepts `req` and answers: `200` with the record, or `202` with the id.
pub(crate) async fn submit(
    app: &AppState,
    req: InvokeRequest,
    asynchronous: bool,
    idempotency: Option<(String, String)>,
) -> Result<Response, Problem> {
    // Keys are stored per caller uid: another caller's identical key must neither hand it the
    // first caller's execution (a read of someone else's record) nor collide with it.
    let stored_key = |key: &str| format!("uid {}/{key}", req.caller.uid);
    // Checked before the idempotency claim, which writes too: a full disk answers at once.
    if asynchronous && app.history.space().is_full() {
        return Err(Problem::disk_full(app.history.space()));
    }
    let idempotency = idempotency.map(|(key, fp)| (stored_key(&key), key, fp));
    if let Some((stored, key, fp)) = &idempotency {
        let claim = app
            .idempotency
            .claim(stored, fp, &req.id)
            .await
            .map_err(|e| Problem::internal(e.to_string()))?;
        match claim {
            Claim::New => {}
            Claim::Existing(id) => {
                return existing(app, &id, asynchronous, req.timeout).await;
            }
            Claim::Conflict => {
                app.metrics.refused(Refusal::IdempotencyConflict);
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "idempotency-key-reused",
                    format!("Idempotency-Key {key:?} was used for a different request"),
                )
                .hint(Some(
                    "use a new key for a new request; a key is remembered for 24 h".into(),
                )));
            }
        }
    }
    let id = req.id.clone();
    let out = if asynchronous {
        app.dispatcher.accept_async(req).await.map(|()| None)
    } else {
        app.dispatcher.run_sync(req).await.map(Some)
    };
    match out {
        Ok(Some(done)) => finished_response(&done),
        Ok(None) => Ok(accepted_response(&id)),
        Err(e) => {
            if let Some((stored, _, _)) = &idempotency
                && let Err(e) = app.idempotency.release(stored, &id).await
            {
                tracing::warn!(error = %e, "idempotency key of a refused request not released");
            }
            Err(refused_problem(app, &e))
        }
    }
}

/// The answer to a repeated request: the execution the key already points to.
async fn existing(
    app: &AppState,
    id: &str,
    asynchronous: bool,
    timeout: Duration,
) -> Result<Response, Problem> {
    if asynchronous {
        return Ok(accepted_response(id));
    }
    let until = tokio::time::Instant::now() + timeout + Duration::from_secs(30);
    loop {
        let rec = app
            .history
            .get(id)
            .await
            .map_err(|e| Problem::internal(format!("reading history: {e}")))?;
        if let Some(rec) = rec
            && rec.state.is_terminal()
        {
            return record_response(&rec);
        }
        if tokio::time::Instant::now() >= until {
            return Ok(accepted_response(id));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn refused_problem(app: &AppState, e: &Refused) -> Problem {
    match e {
        Refused::History(HistoryError::DiskFull { .. }) => Problem::disk_full(app.history.space()),
        Refused::Acquire(e) => acquire_problem(e),
        Refused::Admission(a) => {
            Problem::new(StatusCode::TOO_MANY_REQUESTS, "overloaded", a.to_string())
                .code(ErrorCode::E006)
                .retry_after(a.retry_after())
        }
        Refused::History(_) | Refused::Task(_) => Problem::internal(e.to_string()),
    }
}

fn acquire_problem(e: &AcquireError) -> Problem {
    match e {
        AcquireError::QueueFull { .. } => {
            Problem::new(StatusCode::TOO_MANY_REQUESTS, "overloaded", e.to_string())
                .code(ErrorCode::E006)
                .retry_after(1)
        }
        AcquireError::WaitTimeout { .. } => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-executor",
            e.to_string(),
        )
        .code(ErrorCode::E006)
        .retry_after(1)
        .hint(Some(
            "raise the script's pool.max or the daemon's pools.max_workers".into(),
        )),
        AcquireError::ShuttingDown => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            e.to_string(),
        )
        .code(ErrorCode::E005)
        .retry_after(5),
        AcquireError::OverMemoryBudget { .. } => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "over-memory-budget",
            e.to_string(),
        )
        .code(ErrorCode::E006)
        .hint(Some(
            "lower the script's limits.memory_mb or raise the daemon's pools.max_memory_mb".into(),
        )),
        AcquireError::Start(_) => Problem::internal(e.to_string()),
    }
}
