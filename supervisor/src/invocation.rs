//! Running one invocation: the state machine `queued → provisioning → running → terminal`.
//!
//! Takes a resolved target and a validated payload, gets an executor from the pools, sends the
//! request, and turns whatever happened into an [`ExecutionRecord`]. Every outcome in which
//! something ran becomes a record; only "nothing could run" (queue full, no executor in time,
//! shutting down) is returned as an error for the API to answer with 429/503.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use runwarm_protocol::{Caller, RequestContext};
use serde_json::Value;
use tokio::time::Instant;

use crate::execution::{
    ErrorCode, ExecutionError, ExecutionRecord, ExecutorInfo, Resources, State, Timings,
};
use crate::pool::{AcquireError, Pools, Target};
use crate::worker::{Fault, StartError};

/// One invocation to run.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    /// Execution id (UUIDv7).
    pub id: String,
    /// What to run.
    pub target: Target,
    /// The payload (already validated).
    pub payload: Value,
    /// Who asked.
    pub caller: Caller,
    /// Time limit of the run.
    pub timeout: Duration,
    /// Attempt number.
    pub attempt: u32,
}

/// Runs invocations against the pools.
#[derive(Debug, Clone)]
pub struct Invoker {
    pools: Pools,
}

/// A new execution id: UUIDv7, so ids sort by creation time.
pub fn new_execution_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Now as RFC 3339 with milliseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

impl Invoker {
    /// An invoker over the pools.
    pub fn new(pools: Pools) -> Self {
        Self { pools }
    }

    /// A fresh `queued` record for a request.
    pub fn queued_record(req: &InvokeRequest) -> ExecutionRecord {
        ExecutionRecord {
            id: req.id.clone(),
            script: req.target.name.clone(),
            version: req.target.version.clone(),
            state: State::Queued,
            payload: req.payload.clone(),
            result: None,
            error: None,
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            logs: Vec::new(),
            cold: false,
            executor: None,
            attempt: req.attempt,
            exit_code: None,
            caller: req.caller,
            timings: Timings {
                queued_at: now_rfc3339(),
                ..Timings::default()
            },
            resources: Resources::default(),
        }
    }

    /// Runs the request to a terminal record, or says why nothing could run.
    pub async fn run(&self, req: InvokeRequest) -> Result<ExecutionRecord, AcquireError> {
        let accepted = Instant::now();
        let mut rec = Self::queued_record(&req);
        // The wait for an executor is bounded by the same limit as the run: a request never
        // waits forever, and a caller's budget is not spent twice.
        let wait_deadline = accepted + req.timeout;
        let mut lease = match self.pools.acquire(&req.target, wait_deadline).await {
            Ok(lease) => lease,
            Err(AcquireError::Start(e)) => {
                rec.cold = true;
                rec.stderr = e.stderr().to_owned();
                let error = start_error(&e);
                rec.timings.queue_ms = ms(accepted.elapsed());
                return Ok(finish(rec, State::Failed, Some(error), accepted));
            }
            Err(e) => return Err(e),
        };
        rec.cold = lease.cold;
        rec.timings.cold_start_ms = ms(lease.cold_start);
        rec.timings.queue_ms = ms(accepted.elapsed());
        rec.timings.started_at = Some(now_rfc3339());
        rec.state = State::Running;
        let Some(worker) = lease.worker() else {
            let error = ExecutionError::new(ErrorCode::E005, "Internal", "lease without executor");
            return Ok(finish(rec, State::Failed, Some(error), accepted));
        };
        let run_deadline = Instant::now() + req.timeout;
        let deadline_ms = SystemTime::now()
            .checked_add(req.timeout)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let context = RequestContext {
            execution_id: req.id.clone(),
            deadline_ms,
            attempt: req.attempt,
            caller: req.caller,
        };
        let outcome = worker
            .invoke(&req.id, req.payload, context, run_deadline)
            .await;
        rec.executor = Some(ExecutorInfo {
            pid: worker.pid(),
            invocations: worker.invocations(),
        });
        rec.stdout = outcome.stdout.text();
        rec.stdout_truncated = outcome.stdout.truncated();
        rec.stderr = outcome.stderr.text();
        rec.stderr_truncated = outcome.stderr.truncated();
        rec.logs = outcome.logs;
        rec.timings.run_ms = ms(outcome.run_time);
        drop(lease);
        let (state, error) = match outcome.result {
            Ok(resp) => {
                rec.exit_code = resp.exit_code;
                if resp.success {
                    rec.result = resp.result;
                    (State::Completed, None)
                } else {
                    let body = resp.error.unwrap_or_else(|| runwarm_protocol::ErrorBody {
                        kind: "Error".into(),
                        message: "the script failed without saying why".into(),
                        trace: None,
                    });
                    let mut e = ExecutionError::new(ErrorCode::E002, body.kind, body.message);
                    e.trace = body.trace;
                    (State::Failed, Some(e))
                }
            }
            Err(Fault::Timeout) => (
                State::Timeout,
                Some(ExecutionError::new(
                    ErrorCode::E004,
                    "Timeout",
                    format!(
                        "the invocation exceeded its time limit of {} ms",
                        req.timeout.as_millis()
                    ),
                )),
            ),
            Err(Fault::Crashed { status }) => (
                State::Failed,
                Some(ExecutionError::new(
                    ErrorCode::E005,
                    "ExecutorCrashed",
                    format!("the executor died during the invocation ({status})"),
                )),
            ),
            Err(Fault::Protocol { detail }) => (
                State::Failed,
                Some(ExecutionError::new(
                    ErrorCode::E005,
                    "ProtocolFault",
                    format!("the executor broke the protocol and was replaced: {detail}"),
                )),
            ),
        };
        Ok(finish(rec, state, error, accepted))
    }
}

fn start_error(e: &StartError) -> ExecutionError {
    match e {
        StartError::Init { error, .. } => {
            let mut out = ExecutionError::new(
                ErrorCode::E001,
                error.kind.clone(),
                format!("the script failed to load: {}", error.message),
            );
            out.trace = error.trace.clone();
            out
        }
        StartError::Timeout { .. } | StartError::Broken { .. } => {
            ExecutionError::new(ErrorCode::E001, "InitFailed", e.to_string())
        }
        StartError::Unavailable { .. } => {
            ExecutionError::new(ErrorCode::E001, "RuntimeUnavailable", e.to_string())
        }
        StartError::Spawn(_) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            ExecutionError::new(ErrorCode::E005, "SpawnFailed", msg)
        }
    }
}

fn finish(
    mut rec: ExecutionRecord,
    state: State,
    error: Option<ExecutionError>,
    accepted: Instant,
) -> ExecutionRecord {
    rec.finish(state, error);
    rec.timings.finished_at = Some(now_rfc3339());
    rec.timings.total_ms = ms(accepted.elapsed());
    rec
}
