//! Start-up: re-running the async executions a previous daemon accepted but never started.
//!
//! Their `queued` records are durable, so each runs under its own id with its stored payload
//! and caller. One whose script version is gone (or no longer valid) fails instead of
//! vanishing: nothing accepted is lost.

use std::time::Duration;

use crate::api::AppState;
use crate::execution::{ErrorCode, ExecutionError, ExecutionRecord, State};
use crate::invocation::{InvokeRequest, now_rfc3339};
use crate::registry::Selector;

/// Submits the `queued` records of a previous daemon as async runs, oldest first.
pub fn resume(app: &AppState, queued: Vec<ExecutionRecord>) {
    if queued.is_empty() {
        return;
    }
    let count = queued.len();
    let default_ms = u64::try_from(app.config.default_timeout.as_millis()).unwrap_or(u64::MAX);
    for mut rec in queued {
        let version = match app
            .registry
            .resolve(&rec.script, &Selector::Version(rec.version.clone()))
        {
            Ok(v) => v,
            Err(e) => {
                let error = ExecutionError::new(
                    ErrorCode::E006,
                    "VersionUnavailable",
                    format!("accepted before a restart, but cannot run now: {e}"),
                );
                rec.finish(State::Failed, Some(error));
                rec.timings.finished_at = Some(now_rfc3339());
                app.history.record(rec);
                continue;
            }
        };
        let timeout_ms = app
            .pools
            .launcher()
            .timeout_ms(&version.manifest, default_ms);
        app.dispatcher.resume(InvokeRequest {
            id: rec.id,
            target: app.target_cache.get_or_insert(&version),
            payload: rec.payload,
            caller: rec.caller,
            timeout: Duration::from_millis(timeout_ms),
            attempt: rec.attempt.max(1),
            live: None,
            queued_at: Some(rec.timings.queued_at),
            // A retry waiting for its backoff when the daemon stopped waits out the rest.
            not_before: rec
                .timings
                .not_before
                .as_deref()
                .and_then(|t| humantime::parse_rfc3339(t).ok()),
            lineage: rec.lineage,
        });
    }
    tracing::info!(
        count,
        "executions accepted by the previous daemon resubmitted"
    );
}
