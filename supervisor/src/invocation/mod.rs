//! Running one invocation: the state machine `queued → provisioning → running → terminal`.
//!
//! Takes a resolved target and a validated payload, gets an executor from the pools, sends the
//! request, and turns whatever happened into an [`ExecutionRecord`]. Every outcome in which
//! something ran becomes a record; only "nothing could run" (queue full, no executor in time,
//! shutting down) is returned as an error for the API to answer with 429/503.
//!
//! Failed attempts are retried as the version's retry rules say ([`retry::RetryRules`]: the
//! manifest's `[retry]`, or twice for failures before the script saw the request and for script
//! errors of a `retry_safe` manifest), each attempt its own record. An async execution also
//! carries its [`Live`] part: the event log its output goes to, the token that cancels it, and
//! the history that sees it start.
//!
//! The types and the retry loop are here; one attempt, with the errors of starts that failed,
//! is in `attempt.rs`, and the redaction of an async execution's live output in
//! `redacted_sink.rs`. Before a run, in the order a request meets them: [`admission`] (what is
//! refused before it is accepted), [`idempotency`] (a repeated key), [`dispatch`] (synchronous
//! runs, durable async acceptance, cancellation), then [`retry`]'s rules and an async
//! execution's [`events`].

pub mod admission;
mod attempt;
pub mod dispatch;
pub mod events;
pub mod idempotency;
mod redacted_sink;
pub mod retry;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use runwarm_protocol::Caller;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::execution::{ErrorCode, ExecutionRecord, Lineage, State};
use crate::history::History;
use crate::invocation::events::EventLog;
use crate::invocation::retry::RetryRules;
use crate::pool::{AcquireError, Pools, Target};

/// What an async execution has that a synchronous one does not.
#[derive(Debug, Clone)]
pub struct Live {
    /// Where state changes and output go.
    pub events: Arc<EventLog>,
    /// Cancels the execution: before it runs, or by killing its executor.
    pub cancel: CancellationToken,
    /// Sees the `running` record, so a crash leaves a trace of what had started.
    pub history: History,
}

/// One invocation to run.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    /// Execution id (UUIDv7).
    pub id: String,
    /// What to run.
    pub target: Target,
    /// The payload (already validated), shared with the records and the executor's message.
    pub payload: Arc<runwarm_protocol::RawJson>,
    /// Who asked.
    pub caller: Caller,
    /// Time limit of the run.
    pub timeout: Duration,
    /// Attempt number.
    pub attempt: u32,
    /// Events, cancellation and progress records of an async execution.
    pub live: Option<Live>,
    /// When it was accepted, if not now (work resumed after a restart keeps its time).
    pub queued_at: Option<String>,
    /// Not to start before this: a retry's backoff, kept in its `queued` record so that a
    /// restart does not cut it short.
    pub not_before: Option<SystemTime>,
    /// What it replays and where its outcome goes, copied into every record of it.
    pub lineage: Lineage,
}

/// Runs invocations against the pools.
#[derive(Debug, Clone)]
pub struct Invoker {
    pools: Pools,
    /// Where the failed attempts of a retried execution are kept (each is its own record).
    history: Option<History>,
}

/// A new execution id: UUIDv7, so ids sort by creation time.
pub fn new_execution_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Now as RFC 3339 with milliseconds.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// A time as RFC 3339 with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

impl Invoker {
    /// An invoker over the pools.
    pub fn new(pools: Pools) -> Self {
        Self {
            pools,
            history: None,
        }
    }

    /// Keeps the failed attempts of retried executions in `history`.
    pub fn with_history(mut self, history: History) -> Self {
        self.history = Some(history);
        self
    }

    /// A fresh `queued` record for a request.
    pub fn queued_record(req: &InvokeRequest) -> ExecutionRecord {
        let mut rec = ExecutionRecord::queued(
            req.id.clone(),
            req.target.name.clone(),
            req.target.version.clone(),
            Arc::clone(&req.payload),
            req.caller,
            req.queued_at.clone().unwrap_or_else(now_rfc3339),
        );
        rec.attempt = req.attempt;
        rec.timings.not_before = req.not_before.map(rfc3339);
        rec.label.clone_from(&req.target.manifest.label);
        rec.lineage.clone_from(&req.lineage);
        rec
    }

    /// Runs the request to a terminal record, or says why nothing could run.
    ///
    /// A failed attempt the version's retry rules retry ([`RetryRules`]) is kept as its own
    /// terminal record, pointing at the next attempt (`retried_by`); the next attempt is a new
    /// execution linked to the chain's first (`retry_of`). The record returned is the last
    /// attempt's. An async chain writes the next attempt's `queued` record durably before it
    /// waits, so a restart during the backoff runs it rather than losing it.
    pub async fn run(&self, mut req: InvokeRequest) -> Result<ExecutionRecord, AcquireError> {
        let accepted = Instant::now();
        let rules = RetryRules::of(&req.target.manifest);
        loop {
            if let Some(wait) = req
                .not_before
                .and_then(|t| t.duration_since(SystemTime::now()).ok())
            {
                // A cancel during the backoff ends it; the attempt then records the cancel.
                let cancel = req.live.as_ref().map(|l| l.cancel.clone());
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = cancelled(cancel.as_ref()) => {}
                }
            }
            let attempt = req.attempt;
            let (rec, infra) = self.run_once(&req, attempt, accepted).await?;
            // Before anything else sees the record: history, the event stream's end, the
            // caller's answer.
            let mut rec = self
                .pools
                .launcher()
                .redactor(&req.target.manifest)
                .record(rec);
            let code = rec.error.as_ref().map(|e| e.code);
            let cancelled = req.live.as_ref().is_some_and(|l| l.cancel.is_cancelled());
            if cancelled || rec.state == State::Completed || !rules.retries(attempt, infra, code) {
                return Ok(rec);
            }
            let wait = rules.backoff(attempt, fastrand::f64());
            let next = new_execution_id();
            tracing::info!(execution_id = %req.id, next_attempt = %next, attempt, infra,
                code = code.map(ErrorCode::as_str), wait_ms = wait.as_millis() as u64, "retrying");
            rec.lineage.retried_by = Some(next.clone());
            let first = req
                .lineage
                .retry_of
                .take()
                .unwrap_or_else(|| req.id.clone());
            req.lineage.retry_of = Some(first);
            req.id = next;
            req.attempt = attempt + 1;
            req.queued_at = None;
            req.not_before = SystemTime::now().checked_add(wait);
            if let Some(history) = &self.history {
                history.record(rec);
                if req.live.is_some()
                    && let Err(e) = history.record_durable(Self::queued_record(&req)).await
                {
                    tracing::warn!(execution_id = %req.id, error = %e,
                        "the next attempt's queued record is not durable; a restart now would lose it");
                }
            }
        }
    }
}

/// Resolves when the token is cancelled; never without one.
async fn cancelled(token: Option<&CancellationToken>) {
    match token {
        Some(t) => t.cancelled().await,
        None => std::future::pending().await,
    }
}
