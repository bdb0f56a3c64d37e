//! Running one invocation: the state machine `queued → provisioning → running → terminal`.
//!
//! Takes a resolved target and a validated payload, gets an executor from the pools, sends the
//! request, and turns whatever happened into an [`ExecutionRecord`]. Every outcome in which
//! something ran becomes a record; only "nothing could run" (queue full, no executor in time,
//! shutting down) is returned as an error for the API to answer with 429/503.
//!
//! Failed attempts are retried as the version's retry rules say (`retry::RetryRules`: the
//! manifest's `[retry]`, or twice for failures before the script saw the request and for script
//! errors of a `retry_safe` manifest), each attempt its own record. An async execution also
//! carries its [`Live`]
//! part: the event log its output goes to, the token that cancels it, and the history that
//! sees it start.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use runwarm_protocol::{Caller, RequestContext};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::events::{Event, EventLog};
use crate::execution::{ErrorCode, ExecutionError, ExecutionRecord, ExecutorInfo, Lineage, State};
use crate::history::History;
use crate::pool::{AcquireError, Pools, Target};
use crate::retry::RetryRules;
use crate::secrets::{Redactor, StreamRedactor};
use crate::worker::{Fault, OutputChunk, OutputSink, StartError};

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

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
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

    /// One attempt; the flag says whether it failed before the script could have seen the
    /// request (safe to retry).
    async fn run_once(
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

/// Resolves when the token is cancelled; never without one.
async fn cancelled(token: Option<&CancellationToken>) {
    match token {
        Some(t) => t.cancelled().await,
        None => std::future::pending().await,
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

/// Passes a worker's output on to the event stream with secret values replaced by `***`. A
/// value split across chunks is still found: each stream's redactor holds back a short tail
/// until more arrives or [`RedactedSink::flush`] passes it on at the end of the request.
struct RedactedSink {
    events: Arc<EventLog>,
    redactor: Redactor,
    stdout: Mutex<StreamRedactor>,
    stderr: Mutex<StreamRedactor>,
}

impl RedactedSink {
    fn new(events: Arc<EventLog>, redactor: Redactor) -> Self {
        RedactedSink {
            events,
            stdout: Mutex::new(StreamRedactor::new(redactor.clone())),
            stderr: Mutex::new(StreamRedactor::new(redactor.clone())),
            redactor,
        }
    }

    fn lock(m: &Mutex<StreamRedactor>) -> std::sync::MutexGuard<'_, StreamRedactor> {
        // A redactor's state is a byte buffer, consistent between calls.
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn emit(&self, chunk: OutputChunk<'_>) {
        match chunk {
            OutputChunk::Stdout(bytes) => {
                let pass = Self::lock(&self.stdout).push(bytes);
                if !pass.is_empty() {
                    self.events.output(OutputChunk::Stdout(&pass));
                }
            }
            OutputChunk::Stderr(bytes) => {
                let pass = Self::lock(&self.stderr).push(bytes);
                if !pass.is_empty() {
                    self.events.output(OutputChunk::Stderr(&pass));
                }
            }
            OutputChunk::Log(rec) => {
                let rec = self.redactor.log(rec.clone());
                self.events.output(OutputChunk::Log(&rec));
            }
        }
    }

    fn flush(&self) {
        let out = Self::lock(&self.stdout).finish();
        if !out.is_empty() {
            self.events.output(OutputChunk::Stdout(&out));
        }
        let err = Self::lock(&self.stderr).finish();
        if !err.is_empty() {
            self.events.output(OutputChunk::Stderr(&err));
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
