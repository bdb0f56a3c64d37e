//! One attempt of an invocation, from the wait for an executor to its terminal record, and
//! the errors of the starts that failed; the retry loop around it is in `mod.rs`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use runwarm_protocol::RequestContext;
use tokio::time::Instant;

use super::redacted_sink::RedactedSink;
use super::{InvokeRequest, Invoker, cancelled, now_rfc3339};
use crate::execution::{ErrorCode, ExecutionError, ExecutionRecord, ExecutorInfo, State};
use crate::invocation::events::Event;
use crate::pool::AcquireError;
use crate::worker::{Fault, OutputSink, StartError};

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

impl Invoker {
    /// One attempt; the flag says whether it failed before the script could have seen the
    /// request (safe to retry).
    pub(super) async fn run_once(
        &self,
        req: &InvokeRequest,
        attempt: u32,
        accepted: Instant,
    ) -> Result<(ExecutionRecord, bool), AcquireError> {
        let mut rec = Self::queued_record(req);
        rec.attempt = attempt;
        let cancel = req.live.as_ref().map(|l| l.cancel.clone());
        // The wait for an executor is bounded by the same limit as the run: a request never
        // waits forever, and a caller's budget is not spent twice.
        let wait_deadline = Instant::now() + req.timeout;
        let prepare = self
            .pools
            .launcher()
            .prepare(req.target.script_ref(), wait_deadline);
        let acquired = tokio::select! {
            r = async {
                // A version still preparing is waited for before a pool slot is taken. A step
                // killed because the daemon is stopping is not the script's failure: the work
                // stays queued for the next start.
                prepare.await.map_err(|e| {
                    if self.pools.is_closed() {
                        AcquireError::ShuttingDown
                    } else {
                        AcquireError::Start(e)
                    }
                })?;
                self.pools.acquire(&req.target, wait_deadline).await
            } => Some(r),
            () = cancelled(cancel.as_ref()) => None,
        };
        let mut lease = match acquired {
            None => return Ok((cancelled_record(rec, accepted), false)),
            Some(Ok(lease)) => lease,
            Some(Err(AcquireError::Start(e))) => {
                rec.cold = true;
                rec.stderr = e.stderr().to_owned();
                let error = start_error(&e);
                rec.timings.queue_ms = ms(accepted.elapsed());
                // A program that cannot be exec'd inside the sandbox is a spawn failure too.
                let infra = matches!(e, StartError::Spawn(_))
                    || matches!(e, StartError::Sandbox { failure, .. } if failure.step == runwarm_sandbox::Step::Exec);
                return Ok((finish(rec, State::Failed, Some(error), accepted), infra));
            }
            Some(Err(e)) => return Err(e),
        };
        rec.cold = lease.cold;
        rec.timings.cold_start_ms = ms(lease.cold_start);
        rec.timings.queue_ms = ms(accepted.elapsed());
        rec.timings.started_at = Some(now_rfc3339());
        rec.state = State::Running;
        let Some(worker) = lease.worker() else {
            let error = ExecutionError::new(ErrorCode::E005, "Internal", "lease without executor");
            return Ok((finish(rec, State::Failed, Some(error), accepted), false));
        };
        let mut redacted_sink: Option<Arc<RedactedSink>> = None;
        if let Some(live) = &req.live {
            live.events.publish(Event::state(State::Running));
            live.history.record(rec.clone());
            let events = Arc::clone(&live.events);
            let redactor = self.pools.launcher().redactor(&req.target.manifest);
            let sink: OutputSink = if redactor.is_empty() {
                Arc::new(move |chunk| events.output(chunk))
            } else {
                let redacted = Arc::new(RedactedSink::new(events, redactor));
                redacted_sink = Some(Arc::clone(&redacted));
                Arc::new(move |chunk| redacted.emit(chunk))
            };
            worker.set_sink(Some(sink));
        }
        let run_deadline = Instant::now() + req.timeout;
        let deadline_ms = SystemTime::now()
            .checked_add(req.timeout)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let context = RequestContext {
            execution_id: req.id.clone(),
            deadline_ms,
            attempt,
            caller: req.caller,
        };
        let outcome = tokio::select! {
            o = worker.invoke(&req.id, Arc::clone(&req.payload), context, run_deadline) => Some(o),
            () = cancelled(cancel.as_ref()) => None,
        };
        worker.set_sink(None);
        if let Some(redacted) = redacted_sink.take() {
            redacted.flush();
        }
        rec.executor = Some(ExecutorInfo {
            pid: worker.pid(),
            invocations: worker.invocations(),
        });
        let Some(outcome) = outcome else {
            // The executor may be half-way through the request: it is not reused.
            worker.kill();
            drop(lease);
            return Ok((cancelled_record(rec, accepted), false));
        };
        let delivered = worker.delivered();
        rec.stdout = outcome.stdout.text();
        rec.stdout_truncated = outcome.stdout.truncated();
        rec.stderr = outcome.stderr.text();
        rec.stderr_truncated = outcome.stderr.truncated();
        rec.logs = outcome.logs;
        rec.timings.run_ms = ms(outcome.run_time);
        rec.resources = worker.resources();
        // Only a dead executor can have been OOM-killed; reading the counter on every call would
        // put cgroup file reads on the warm path for nothing.
        let oom = outcome.result.is_err() && worker.oom_kills() > 0;
        let memory_limit = worker.memory_limit();
        if lease.release() {
            // A caller was waiting for this executor: let it send its request now rather than
            // after this call's record and answer, so the executor does not idle meanwhile.
            tokio::task::yield_now().await;
        }
        let infra = !delivered && matches!(outcome.result, Err(Fault::Crashed { .. }));
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
            Err(Fault::Crashed { .. } | Fault::Timeout) if oom => (
                State::Failed,
                Some(ExecutionError::new(
                    ErrorCode::E003,
                    "MemoryLimit",
                    format!(
                        "the executor was killed for exceeding its memory limit of {} MiB (peak {} MiB)",
                        memory_limit.map_or(0, |b| b >> 20),
                        rec.resources.peak_memory_bytes.map_or(0, |b| b >> 20)
                    ),
                )),
            ),
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
        Ok((finish(rec, state, error, accepted), infra))
    }
}

fn cancelled_record(rec: ExecutionRecord, accepted: Instant) -> ExecutionRecord {
    let error = ExecutionError::new(
        ErrorCode::E006,
        "Cancelled",
        "the execution was cancelled by a caller",
    );
    finish(rec, State::Cancelled, Some(error), accepted)
}

fn start_error(e: &StartError) -> ExecutionError {
    match e {
        StartError::Prepare(crate::prepare::PrepareError::Failed { summary, log }) => {
            let mut out = ExecutionError::new(
                ErrorCode::E001,
                "PrepareFailed",
                format!("the version could not be prepared: {summary}"),
            );
            // The summary holds the end of the log; the whole of it only when that was cut.
            out.trace = (log.lines().count() > crate::prepare::SUMMARY_LINES).then(|| log.clone());
            out
        }
        StartError::Prepare(pending @ crate::prepare::PrepareError::Pending { .. }) => {
            ExecutionError::new(ErrorCode::E004, "PrepareTimeout", pending.to_string())
        }
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
        StartError::Sandbox { failure, .. } if failure.step == runwarm_sandbox::Step::Exec => {
            ExecutionError::new(ErrorCode::E005, "SpawnFailed", e.to_string())
        }
        StartError::Sandbox { .. } => {
            ExecutionError::new(ErrorCode::E005, "SandboxFailed", e.to_string())
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
