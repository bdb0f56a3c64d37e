//! Accepting executions: synchronous runs, durable async acceptance, cancellation, and the
//! re-submission of accepted work after a restart.
//!
//! A synchronous run is polled in its caller's task (no hand-off on the warm path) but detached
//! onto a task of its own if the caller goes away, so a caller that hangs up cancels nothing and
//! the terminal record is always written. An async execution is accepted only once its `queued`
//! record is fsync'd; its task then runs under the same pool rules as a synchronous call,
//! publishes events while it runs, and can be cancelled through the token kept in `active`.

use std::sync::Arc;

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use crate::execution::{ErrorCode, ExecutionError, ExecutionRecord, State};
use crate::history::{History, HistoryError};
use crate::invocation::admission::{Admission, AdmissionError, Permit};
use crate::invocation::events::{Event, EventHub, EventLog};
use crate::invocation::{InvokeRequest, Invoker, Live, now_rfc3339};
use crate::metrics::Refusal;
use crate::pool::AcquireError;

/// Why an execution was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Over an admission limit.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// No executor could be had (synchronous calls only).
    #[error(transparent)]
    Acquire(#[from] AcquireError),
    /// The `queued` record could not be made durable.
    #[error("recording the accepted execution: {0}")]
    History(#[from] HistoryError),
    /// The run task failed.
    #[error("the invocation task failed: {0}")]
    Task(String),
}

/// What a cancel request found.
#[derive(Debug)]
pub enum CancelOutcome {
    /// The execution is (now) cancelled, or ended while it was being cancelled.
    Done(Box<ExecutionRecord>),
    /// It had already ended.
    AlreadyTerminal(Box<ExecutionRecord>),
    /// No such execution.
    Unknown,
}

/// The dispatcher; cheap to clone.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    invoker: Invoker,
    history: History,
    hub: Arc<EventHub>,
    active: DashMap<String, CancellationToken>,
    admission: Admission,
    metrics: Arc<crate::metrics::Metrics>,
    inflight: Arc<crate::daemon::shutdown::InFlight>,
}

impl Dispatcher {
    /// A dispatcher over the invoker and history.
    pub fn new(
        invoker: Invoker,
        history: History,
        admission: Admission,
        metrics: Arc<crate::metrics::Metrics>,
        inflight: Arc<crate::daemon::shutdown::InFlight>,
    ) -> Self {
        Dispatcher {
            inner: Arc::new(Inner {
                invoker,
                history,
                hub: Arc::default(),
                active: DashMap::new(),
                admission,
                metrics,
                inflight,
            }),
        }
    }

    /// The admission limits (a reload changes them in place).
    pub fn admission(&self) -> &Admission {
        &self.inner.admission
    }

    fn admit(&self, req: &InvokeRequest, asynchronous: bool) -> Result<Permit, AdmissionError> {
        self.inner
            .admission
            .admit(
                &req.target.name,
                req.target.manifest.pool.max_concurrency,
                Some(req.caller.uid),
                asynchronous,
            )
            .inspect_err(|e| self.inner.metrics.refused(Refusal::of_admission(e)))
    }

    /// Runs `req` and waits for its record.
    ///
    /// The run is polled inline (no task hand-off, no thread wake-up on the warm path), but it
    /// is never cancelled with its caller: if the caller's future is dropped (the client hung
    /// up), the run is detached onto a task of its own and still ends with a terminal record.
    pub async fn run_sync(&self, req: InvokeRequest) -> Result<Finished, Refused> {
        let permit = self.admit(&req, false)?;
        let inner = Arc::clone(&self.inner);
        inner.inflight.begin(Invoker::queued_record(&req));
        let run = async move {
            let id = req.id.clone();
            let runtime = req.target.manifest.runtime.clone();
            let first_attempt = req.attempt;
            let out = inner.invoker.run(req).await.map(Finished::of);
            drop(permit);
            inner.inflight.end(&id);
            if let Err(e) = &out
                && let Some(why) = Refusal::of_acquire(e)
            {
                inner.metrics.refused(why);
            }
            // Recorded before the caller hears of it, so the id it gets always resolves.
            if let Ok(Finished { record: rec, json }) = &out {
                inner.history.record_as(Arc::clone(rec), json.clone());
                inner.metrics.observe(rec, &runtime, first_attempt);
                // The log line (formatting and a write to stderr, ~10 µs) runs after the caller
                // has its answer; below info level it costs nothing, not even the task.
                if tracing::enabled!(tracing::Level::INFO) {
                    let line = FinishedLine::of(rec, runtime);
                    tokio::spawn(async move { line.emit() });
                }
            }
            out
        };
        Ok(DetachOnDrop::new(run).await?)
    }

    /// Accepts `req` for an async run: returns once its `queued` record is durable.
    pub async fn accept_async(&self, req: InvokeRequest) -> Result<(), Refused> {
        let permit = self.admit(&req, true)?;
        self.inner
            .history
            .record_accepted(Invoker::queued_record(&req))
            .await?;
        self.spawn_async(req, Some(permit));
        Ok(())
    }

    /// Runs accepted work a previous daemon never started; its `queued` record is already
    /// durable, and it was admitted then.
    pub fn resume(&self, req: InvokeRequest) {
        self.spawn_async(req, None);
    }

    fn spawn_async(&self, mut req: InvokeRequest, permit: Option<Permit>) {
        let cancel = CancellationToken::new();
        let events = self.inner.hub.create(&req.id);
        events.publish(Event::state(State::Queued));
        self.inner.active.insert(req.id.clone(), cancel.clone());
        req.live = Some(Live {
            events,
            cancel,
            history: self.inner.history.clone(),
        });
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let queued = Invoker::queued_record(&req);
            let id = req.id.clone();
            let runtime = req.target.manifest.runtime.clone();
            let first_attempt = req.attempt;
            let rec = match inner.invoker.run(req).await {
                Ok(rec) => rec,
                Err(AcquireError::ShuttingDown) => {
                    // Its durable `queued` record stays as it is: the next start runs it.
                    tracing::info!(execution_id = %id, "daemon stopping: accepted execution left queued for the next start");
                    inner.active.remove(&id);
                    inner.hub.end(&id, &queued);
                    return;
                }
                Err(e) => {
                    // Accepted, but the queue refused it later: the same reasons as a
                    // synchronous call's 429/503, and a failed record besides.
                    if let Some(why) = Refusal::of_acquire(&e) {
                        inner.metrics.refused(why);
                    }
                    refused_record(queued, &e)
                }
            };
            // Async runs are not in `inflight`: one still waiting at a stop keeps its durable
            // `queued` record and runs after the restart instead of being cut off.
            drop(permit);
            inner.history.record(rec.clone());
            inner.active.remove(&id);
            inner.hub.end(&id, &rec);
            inner.metrics.observe(&rec, &runtime, first_attempt);
            FinishedLine::of(&rec, runtime).emit();
        });
    }

    /// The live event log of an async execution, while it is kept.
    pub fn events(&self, id: &str) -> Option<Arc<EventLog>> {
        self.inner.hub.get(id)
    }

    /// Cancels an execution: a queued one never runs, a running one's executor is killed.
    pub async fn cancel(&self, id: &str) -> Result<CancelOutcome, HistoryError> {
        let token = self.inner.active.get(id).map(|t| t.clone());
        let Some(token) = token else {
            return Ok(match self.inner.history.get(id).await? {
                Some(rec) if rec.state.is_terminal() => {
                    CancelOutcome::AlreadyTerminal(Box::new(rec))
                }
                // Left by a daemon that is gone, or a sync run not yet recorded: nothing to stop.
                Some(rec) => CancelOutcome::Done(Box::new(rec)),
                None => CancelOutcome::Unknown,
            });
        };
        let log = self.inner.hub.get(id);
        let rx = log.as_ref().and_then(|l| l.subscribe().1);
        token.cancel();
        // The task writes the terminal record; wait for its end event.
        if let Some(mut rx) = rx {
            let wait = async {
                while let Ok(ev) = rx.recv().await {
                    if ev.is_end() {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), wait).await;
        }
        Ok(match self.inner.history.get(id).await? {
            Some(rec) => CancelOutcome::Done(Box::new(rec)),
            None => CancelOutcome::Unknown,
        })
    }
}

/// The terminal record of accepted work that could not get an executor.
fn refused_record(mut rec: ExecutionRecord, e: &AcquireError) -> ExecutionRecord {
    let (code, kind) = match e {
        AcquireError::ShuttingDown => (ErrorCode::E005, "ShuttingDown"),
        AcquireError::Start(_) => (ErrorCode::E005, "SpawnFailed"),
        AcquireError::QueueFull { .. } | AcquireError::WaitTimeout { .. } => {
            (ErrorCode::E006, "Overloaded")
        }
        AcquireError::OverMemoryBudget { .. } => (ErrorCode::E006, "OverMemoryBudget"),
    };
    rec.finish(
        State::Failed,
        Some(ExecutionError::new(code, kind, e.to_string())),
    );
    rec.timings.finished_at = Some(now_rfc3339());
    rec
}

/// A future that is polled in place but, if dropped before it finished, is handed to a task of
/// its own and runs to the end anyway.
/// A synchronous execution's terminal record, and the same record as JSON: serialised once,
/// for the caller's answer and for history.
#[derive(Debug)]
pub struct Finished {
    /// The record.
    pub record: Arc<ExecutionRecord>,
    /// `serde_json` of it; `None` only if serialising failed (the answer then says why).
    pub json: Option<bytes::Bytes>,
}

impl Finished {
    fn of(record: ExecutionRecord) -> Finished {
        // Sized once: `to_vec` starts at 128 bytes and a warm call's record (~750) would
        // otherwise be copied through three reallocations on the caller's path.
        let mut buf = Vec::with_capacity(json_size_hint(&record));
        let json = serde_json::to_writer(&mut buf, &record)
            .ok()
            .map(|()| bytes::Bytes::from(buf));
        Finished {
            record: Arc::new(record),
            json,
        }
    }
}

/// About how long `rec`'s JSON is: its fixed fields and their names, plus the texts it
/// carries (escaping may add to those; the buffer then grows once).
fn json_size_hint(rec: &ExecutionRecord) -> usize {
    const FIXED: usize = 768;
    FIXED
        + rec.payload.get().len()
        + rec.result.as_ref().map_or(0, |r| r.get().len())
        + rec.error.as_ref().map_or(0, |e| {
            e.message.len() + e.trace.as_ref().map_or(0, String::len) + 64
        })
        + rec.stdout.len()
        + rec.stderr.len()
        + rec.logs.iter().map(|l| l.message.len() + 96).sum::<usize>()
}

struct DetachOnDrop<T: Send + 'static> {
    run: Option<std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>>,
}

impl<T: Send + 'static> DetachOnDrop<T> {
    fn new(run: impl std::future::Future<Output = T> + Send + 'static) -> Self {
        DetachOnDrop {
            run: Some(Box::pin(run)),
        }
    }
}

impl<T: Send + 'static> std::future::Future for DetachOnDrop<T> {
    type Output = T;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<T> {
        let Some(run) = self.run.as_mut() else {
            // Polled after it finished: nothing more will come.
            return std::task::Poll::Pending;
        };
        let out = std::task::ready!(run.as_mut().poll(cx));
        self.run = None;
        std::task::Poll::Ready(out)
    }
}

impl<T: Send + 'static> Drop for DetachOnDrop<T> {
    fn drop(&mut self) {
        if let Some(run) = self.run.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = run.await;
            });
        }
    }
}

/// The one log line of a finished execution, taken from its record so the record itself can go
/// to the caller first.
struct FinishedLine {
    id: String,
    script: String,
    version: String,
    runtime: String,
    state: State,
    code: Option<ErrorCode>,
    caller: runwarm_protocol::Caller,
    cold: bool,
    attempt: u32,
    queue_ms: f64,
    cold_start_ms: f64,
    total_ms: f64,
}

impl FinishedLine {
    fn of(rec: &ExecutionRecord, runtime: String) -> Self {
        FinishedLine {
            id: rec.id.clone(),
            script: rec.script.clone(),
            version: rec.version.clone(),
            runtime,
            state: rec.state,
            code: rec.error.as_ref().map(|e| e.code),
            caller: rec.caller,
            cold: rec.cold,
            attempt: rec.attempt,
            queue_ms: rec.timings.queue_ms,
            cold_start_ms: rec.timings.cold_start_ms,
            total_ms: rec.timings.total_ms,
        }
    }

    fn emit(self) {
        tracing::info!(
            execution_id = %self.id, script = %self.script, version = %self.version,
            runtime = %self.runtime, state = self.state.as_str(),
            code = self.code.map(|c| c.as_str()),
            caller_uid = self.caller.uid, caller_gid = self.caller.gid,
            caller_pid = self.caller.pid, cold = self.cold, attempt = self.attempt,
            queue_ms = self.queue_ms, cold_start_ms = self.cold_start_ms,
            total_ms = self.total_ms, "execution finished"
        );
    }
}
