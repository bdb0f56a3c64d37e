//! The protocol session with one executor: handshake, requests, faults, kill.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio_util::codec::{FramedRead, FramedWrite};

use runwarm_protocol::{
    CodecError, ErrorBody, ExecutorMessage, InitScript, JsonLinesCodec, PROTOCOL_VERSION,
    RequestContext, SupervisorMessage,
};
use serde_json::{Map, Value};

use super::output::{Capture, LogScanner, log_from_object};
use super::spawn::{LaunchSpec, SpawnError, spawn_executor};
use crate::execution::LogRecord;
use crate::sandbox::cgroup::{CpuCounters, ExecutorCgroup};

/// How long output that was already written is read after a crash or kill.
const DRAIN_AFTER_DEATH: Duration = Duration::from_millis(200);
/// Stderr kept from a failed start, for the `E001` message.
const START_STDERR_BYTES: usize = 16 * 1024;

/// Per-worker settings.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Longest protocol line accepted.
    pub max_line_bytes: usize,
    /// Output kept per stream per invocation.
    pub max_output_bytes: usize,
    /// How long `init` may take.
    pub init_timeout: Duration,
}

/// Why an executor could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The process could not be started.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// The sandbox helper failed a step before it could exec the executor.
    #[error("sandbox step failed: {failure}")]
    Sandbox {
        /// The helper's typed report.
        failure: runwarm_sandbox::StepFailure,
        /// What was written to stderr.
        stderr: String,
    },
    /// The runtime cannot run this script on this host.
    #[error("{detail}")]
    Unavailable {
        /// Why.
        detail: String,
    },
    /// The executor reported that the script cannot be loaded.
    #[error("{}: {}", error.kind, error.message)]
    Init {
        /// The executor's report.
        error: ErrorBody,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// The version's prepare failed or has not finished.
    #[error("prepare: {0}")]
    Prepare(crate::prepare::PrepareError),
    /// The executor did not answer `init` in time.
    #[error("executor did not become ready within {timeout:?}")]
    Timeout {
        /// The limit.
        timeout: Duration,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// The executor exited or broke the protocol during the handshake.
    #[error("executor failed during init: {detail}")]
    Broken {
        /// What happened.
        detail: String,
        /// What it wrote to stderr.
        stderr: String,
    },
}

impl StartError {
    /// The executor's stderr, if any was captured.
    pub fn stderr(&self) -> &str {
        match self {
            StartError::Spawn(_) | StartError::Unavailable { .. } => "",
            StartError::Prepare(crate::prepare::PrepareError::Failed { log, .. }) => log,
            StartError::Prepare(_) => "",
            StartError::Init { stderr, .. }
            | StartError::Sandbox { stderr, .. }
            | StartError::Timeout { stderr, .. }
            | StartError::Broken { stderr, .. } => stderr,
        }
    }
}

/// Why a request did not get a response. The worker is dead after any of these.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// The deadline passed; the executor was killed.
    Timeout,
    /// The executor died (`status` as the OS reported it).
    Crashed {
        /// How it ended.
        status: String,
    },
    /// The executor broke the protocol; it was killed.
    Protocol {
        /// What was wrong.
        detail: String,
    },
}

/// What one request produced.
#[derive(Debug)]
pub struct InvokeOutcome {
    /// The response, or why there is none.
    pub result: Result<Response, Fault>,
    /// User stdout.
    pub stdout: Capture,
    /// User stderr.
    pub stderr: Capture,
    /// Structured logs (protocol `log` messages and `@@` lines).
    pub logs: Vec<LogRecord>,
    /// Time from sending the request to the response or fault.
    pub run_time: Duration,
}

/// Output of a running request, as it arrives, for live subscribers.
#[derive(Debug, Clone, Copy)]
pub enum OutputChunk<'a> {
    /// Bytes the script wrote to its stdout.
    Stdout(&'a [u8]),
    /// Bytes the script wrote to its stderr.
    Stderr(&'a [u8]),
    /// A structured log record sent with a protocol `log` message.
    Log(&'a LogRecord),
}

/// Where a worker sends output as it arrives; called under no lock of the worker's, and must
/// not block.
pub type OutputSink = std::sync::Arc<dyn Fn(OutputChunk<'_>) + Send + Sync>;

/// A response from the executor.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Whether the script succeeded.
    pub success: bool,
    /// Result on success.
    pub result: Option<Value>,
    /// Error on failure.
    pub error: Option<ErrorBody>,
    /// Exit code (command mode).
    pub exit_code: Option<i32>,
}

type Reader = FramedRead<ChildStdout, JsonLinesCodec<ExecutorMessage>>;
type Writer = FramedWrite<ChildStdin, JsonLinesCodec<ExecutorMessage>>;

/// One live executor process.
pub struct Worker {
    child: Child,
    pid: u32,
    reader: Reader,
    writer: Writer,
    stderr: Option<pipe::Receiver>,
    user_out: Option<pipe::Receiver>,
    opts: WorkerOptions,
    invocations: u64,
    healthy: bool,
    runtime: String,
    started: Instant,
    cold_start: Duration,
    sink: Option<OutputSink>,
    delivered: bool,
    cgroup: Option<ExecutorCgroup>,
    memory_limit: Option<u64>,
    /// The cgroup's CPU counters at the end of the previous invocation.
    cpu_baseline: Option<CpuCounters>,
    /// When the executor last showed it was alive (ready, a response, a pong).
    alive_at: Instant,
    /// Scratch space for reading output that is already in the pipes, kept between
    /// invocations: a fresh 64 KiB buffer per call was zeroed on every call, output or not.
    drain_buf: Vec<u8>,
    /// Read buffers of the stderr and user-output pipes, kept in the session rather than in
    /// the futures that read them: 32 KiB of arrays there were zeroed on every wait and made
    /// every future around an invocation that much larger to move and allocate.
    err_buf: Vec<u8>,
    out_buf: Vec<u8>,
    /// Whether the pool has started this executor's replacement (it nears `max_requests`).
    replaced: bool,
}

/// Most read from an output pipe at once while waiting for a response.
const READ_CHUNK: usize = 16 * 1024;

/// Output read from a pipe at once, at most.
const DRAIN_CHUNK: usize = 64 * 1024;

/// Reads what `rx` holds now into `buf` (emptied first; its spare capacity, never zeroed):
/// the byte count, or `None` at end of file or when nothing is there.
fn try_read_some(rx: &pipe::Receiver, buf: &mut Vec<u8>) -> Option<usize> {
    buf.clear();
    match rx.try_read_buf(buf) {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("pid", &self.pid)
            .field("runtime", &self.runtime)
            .field("invocations", &self.invocations)
            .field("healthy", &self.healthy)
            .field("live_output", &self.sink.is_some())
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Spawns the executor and performs the `init` handshake.
    pub async fn start(
        launch: &LaunchSpec,
        script: InitScript,
        env: Map<String, Value>,
        opts: WorkerOptions,
    ) -> Result<Worker, StartError> {
        let t0 = Instant::now();
        let s = spawn_executor(launch)?;
        let mut w = Worker {
            child: s.child,
            pid: s.pid,
            reader: FramedRead::new(s.stdout, JsonLinesCodec::new(opts.max_line_bytes)),
            writer: FramedWrite::new(s.stdin, JsonLinesCodec::new(opts.max_line_bytes)),
            stderr: Some(s.stderr),
            user_out: Some(s.user_out),
            opts,
            invocations: 0,
            healthy: true,
            runtime: String::new(),
            started: t0,
            cold_start: Duration::ZERO,
            sink: None,
            delivered: false,
            cgroup: None,
            memory_limit: None,
            cpu_baseline: None,
            drain_buf: Vec::new(),
            err_buf: Vec::new(),
            out_buf: Vec::new(),
            replaced: false,
            alive_at: t0,
        };
        let init = SupervisorMessage::Init {
            protocol: PROTOCOL_VERSION,
            script,
            env,
        };
        let deadline = tokio::time::Instant::now() + w.opts.init_timeout;
        match w.handshake(init, deadline).await {
            Ok(runtime) => {
                w.runtime = runtime;
                w.cold_start = t0.elapsed();
                w.alive_at = Instant::now();
                Ok(w)
            }
            Err(e) => {
                w.kill();
                Err(e)
            }
        }
    }

    async fn handshake(
        &mut self,
        init: SupervisorMessage,
        deadline: tokio::time::Instant,
    ) -> Result<String, StartError> {
        let mut stderr = Capture::new(START_STDERR_BYTES);
        let mut sink = Capture::new(START_STDERR_BYTES);
        let sent = tokio::time::timeout_at(deadline, self.writer.send(init)).await;
        let broken = |detail: String, stderr: &Capture| StartError::Broken {
            detail,
            stderr: stderr.text(),
        };
        match sent {
            Err(_) => {
                return Err(StartError::Timeout {
                    timeout: self.opts.init_timeout,
                    stderr: stderr.text(),
                });
            }
            Ok(Err(e)) => {
                // The executor may already be gone, for instance because the sandbox failed to
                // exec it: its stderr says why better than the broken pipe does.
                self.collect_after_death(&mut sink, &mut stderr, &mut LogScanner::default())
                    .await;
                return Err(died_before_ready(stderr, format!("cannot send init: {e}")));
            }
            Ok(Ok(())) => {}
        }
        loop {
            let event = self.next_event(deadline).await;
            match event {
                Event::Stderr(b) => stderr.push(&b),
                Event::UserOut(b) => sink.push(&b),
                Event::Message(ExecutorMessage::Ready { runtime, .. }) => return Ok(runtime),
                Event::Message(ExecutorMessage::InitError { error }) => {
                    self.collect_after_death(&mut sink, &mut stderr, &mut LogScanner::default())
                        .await;
                    return Err(StartError::Init {
                        error,
                        stderr: stderr.text(),
                    });
                }
                Event::Message(other) => {
                    return Err(broken(
                        format!("unexpected {} before ready", kind(&other)),
                        &stderr,
                    ));
                }
                Event::Deadline => {
                    return Err(StartError::Timeout {
                        timeout: self.opts.init_timeout,
                        stderr: stderr.text(),
                    });
                }
                Event::Codec(e) => return Err(broken(e.to_string(), &stderr)),
                Event::Eof => {
                    self.collect_after_death(&mut sink, &mut stderr, &mut LogScanner::default())
                        .await;
                    let status = self.exit_status().await;
                    return Err(died_before_ready(
                        stderr,
                        format!("executor exited before ready ({status})"),
                    ));
                }
            }
        }
    }

    /// Host pid (also the process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Requests served so far.
    pub fn invocations(&self) -> u64 {
        self.invocations
    }

    /// Whether the worker may serve another request.
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// What the executor called its runtime in `ready`.
    pub fn runtime(&self) -> &str {
        &self.runtime
    }

    /// Marks that the pool started this executor's replacement.
    pub fn mark_replaced(&mut self) {
        self.replaced = true;
    }

    /// Whether the pool started this executor's replacement.
    pub fn is_replaced(&self) -> bool {
        self.replaced
    }

    /// How long spawn + handshake took.
    pub fn cold_start(&self) -> Duration {
        self.cold_start
    }

    /// When the process was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Sends the output of the next requests to `sink` as it arrives (`None`: stop). Without a
    /// sink nothing is copied.
    pub fn set_sink(&mut self, sink: Option<OutputSink>) {
        self.sink = sink;
    }

    /// Whether the last request was written to the executor in full. A request that was not
    /// never reached the script, so running it again is safe.
    pub fn delivered(&self) -> bool {
        self.delivered
    }

    /// Sends one request and waits for its response until `deadline`.
    pub async fn invoke(
        &mut self,
        id: &str,
        payload: std::sync::Arc<Value>,
        context: RequestContext,
        deadline: tokio::time::Instant,
    ) -> InvokeOutcome {
        let mut stdout = Capture::new(self.opts.max_output_bytes);
        let mut stderr = Capture::new(self.opts.max_output_bytes);
        let mut scanner = LogScanner::default();
        let mut logs = Vec::new();
        self.discard_stale_output();
        self.invocations += 1;
        self.delivered = false;
        let t0 = Instant::now();
        let request = SupervisorMessage::Request {
            id: id.to_owned(),
            payload,
            context,
        };
        let result = match tokio::time::timeout_at(deadline, self.writer.send(request)).await {
            Err(_) => Err(Fault::Timeout),
            Ok(Err(e)) => Err(Fault::Crashed {
                status: format!("cannot send request: {e}"),
            }),
            Ok(Ok(())) => {
                self.delivered = true;
                self.await_response(
                    id,
                    deadline,
                    &mut stdout,
                    &mut stderr,
                    &mut scanner,
                    &mut logs,
                )
                .await
            }
        };
        let run_time = t0.elapsed();
        match &result {
            Ok(response) => {
                self.alive_at = Instant::now();
                // A failed request of an executor whose cgroup is full of processes (a handler
                // that left children or zombies behind) most likely failed to fork: every later
                // request would fail too, so this one is retired instead of reused. Read only
                // after a failure, so the warm path reads no cgroup file.
                if !response.success
                    && self
                        .cgroup
                        .as_ref()
                        .is_some_and(ExecutorCgroup::pids_exhausted)
                {
                    tracing::warn!(pid = self.pid, "executor out of pids; replacing it");
                    self.healthy = false;
                }
                // The executor flushed its output before writing the response, so everything
                // it wrote for this request is already in the pipes: take what is there.
                self.drain_available(&mut stdout, &mut stderr, &mut scanner);
            }
            Err(_) => {
                self.kill();
                self.collect_after_death(&mut stdout, &mut stderr, &mut scanner)
                    .await;
            }
        }
        scanner.finish();
        let mut all_logs = logs;
        all_logs.append(&mut scanner.logs);
        let result = match result {
            Err(Fault::Crashed { .. }) => Err(Fault::Crashed {
                status: self.exit_status().await,
            }),
            other => other,
        };
        InvokeOutcome {
            result,
            stdout,
            stderr,
            logs: all_logs,
            run_time,
        }
    }

    async fn await_response(
        &mut self,
        id: &str,
        deadline: tokio::time::Instant,
        stdout: &mut Capture,
        stderr: &mut Capture,
        scanner: &mut LogScanner,
        logs: &mut Vec<LogRecord>,
    ) -> Result<Response, Fault> {
        loop {
            match self.next_event(deadline).await {
                Event::Stderr(b) => {
                    stderr.push(&b);
                    self.emit(OutputChunk::Stderr(&b));
                }
                Event::UserOut(b) => {
                    stdout.push(&b);
                    scanner.push(&b);
                    self.emit(OutputChunk::Stdout(&b));
                }
                Event::Message(ExecutorMessage::Response {
                    id: rid,
                    success,
                    result,
                    error,
                    exit_code,
                }) => {
                    if rid != id {
                        return Err(Fault::Protocol {
                            detail: format!("response for unknown request id {rid:?}"),
                        });
                    }
                    return Ok(Response {
                        success,
                        result,
                        error,
                        exit_code,
                    });
                }
                Event::Message(ExecutorMessage::Log {
                    id: lid,
                    level,
                    message,
                    mut fields,
                }) => {
                    // A log line of an earlier request (a background thread still logging)
                    // is dropped, not a fault: PROTOCOL.md §5.
                    if lid == id && logs.len() < 1000 {
                        fields.insert("level".into(), Value::String(level));
                        fields.insert("message".into(), Value::String(message));
                        let rec = log_from_object(&mut fields);
                        self.emit(OutputChunk::Log(&rec));
                        logs.push(rec);
                    }
                }
                // A late pong from an earlier health check carries no risk; ignore it.
                Event::Message(ExecutorMessage::Pong { .. }) => {}
                Event::Message(other) => {
                    return Err(Fault::Protocol {
                        detail: format!("unexpected {} during a request", kind(&other)),
                    });
                }
                Event::Codec(e) => {
                    return Err(Fault::Protocol {
                        detail: e.to_string(),
                    });
                }
                Event::Eof => {
                    return Err(Fault::Crashed {
                        status: String::new(),
                    });
                }
                Event::Deadline => return Err(Fault::Timeout),
            }
        }
    }

    /// Waits for the next thing the executor does: a protocol message, output, EOF.
    async fn next_event(&mut self, deadline: tokio::time::Instant) -> Event {
        tokio::select! {
            biased;
            n = read_opt(&mut self.stderr, &mut self.err_buf) => match n {
                Some(n) => Event::Stderr(self.err_buf[..n].to_vec()),
                None => { self.stderr = None; Event::Stderr(Vec::new()) }
            },
            n = read_opt(&mut self.user_out, &mut self.out_buf) => match n {
                Some(n) => Event::UserOut(self.out_buf[..n].to_vec()),
                None => { self.user_out = None; Event::UserOut(Vec::new()) }
            },
            msg = self.reader.next() => match msg {
                Some(Ok(m)) => Event::Message(m),
                Some(Err(e)) => Event::Codec(e),
                None => Event::Eof,
            },
            () = tokio::time::sleep_until(deadline) => Event::Deadline,
        }
    }

    /// Throws away output written between requests (by a background thread, say), so it is
    /// not blamed on the next request.
    fn discard_stale_output(&mut self) {
        let mut sink_out = Capture::new(0);
        let mut sink_err = Capture::new(0);
        let sink = self.sink.take();
        self.drain_available(&mut sink_out, &mut sink_err, &mut LogScanner::default());
        self.sink = sink;
    }

    fn emit(&self, chunk: OutputChunk<'_>) {
        if let Some(sink) = &self.sink
            && !chunk_is_empty(chunk)
        {
            sink(chunk);
        }
    }

    /// Reads whatever is in the output pipes right now, without waiting.
    fn drain_available(
        &mut self,
        stdout: &mut Capture,
        stderr: &mut Capture,
        scanner: &mut LogScanner,
    ) {
        let mut buf = std::mem::take(&mut self.drain_buf);
        buf.reserve(DRAIN_CHUNK);
        if let Some(rx) = &self.user_out {
            while let Some(n) = try_read_some(rx, &mut buf) {
                stdout.push(&buf[..n]);
                scanner.push(&buf[..n]);
                self.emit(OutputChunk::Stdout(&buf[..n]));
            }
        }
        if let Some(rx) = &self.stderr {
            while let Some(n) = try_read_some(rx, &mut buf) {
                stderr.push(&buf[..n]);
                self.emit(OutputChunk::Stderr(&buf[..n]));
            }
        }
        self.drain_buf = buf;
    }

    /// After a kill or crash: read the pipes to EOF, for at most [`DRAIN_AFTER_DEATH`] (a
    /// grandchild might hold them open).
    async fn collect_after_death(
        &mut self,
        stdout: &mut Capture,
        stderr: &mut Capture,
        scanner: &mut LogScanner,
    ) {
        let until = tokio::time::Instant::now() + DRAIN_AFTER_DEATH;
        let mut err = self.stderr.take();
        let mut out = self.user_out.take();
        let mut err_buf = std::mem::take(&mut self.err_buf);
        let mut out_buf = std::mem::take(&mut self.out_buf);
        while err.is_some() || out.is_some() {
            tokio::select! {
                n = read_opt(&mut err, &mut err_buf) => match n {
                    Some(n) => stderr.push(&err_buf[..n]),
                    None => err = None,
                },
                n = read_opt(&mut out, &mut out_buf) => match n {
                    Some(n) => { stdout.push(&out_buf[..n]); scanner.push(&out_buf[..n]); }
                    None => out = None,
                },
                () = tokio::time::sleep_until(until) => break,
            }
        }
    }

    async fn exit_status(&mut self) -> String {
        match tokio::time::timeout(Duration::from_millis(500), self.child.wait()).await {
            Ok(Ok(status)) => describe_status(status),
            Ok(Err(e)) => format!("exit status unavailable: {e}"),
            Err(_) => "still running".to_owned(),
        }
    }

    /// Whether an executor that sat idle for `idle_after` or more still answers: a `ping` must get
    /// its `pong` within `timeout`, else the executor is killed and `false` returned. One that
    /// was alive more recently is trusted without a round trip, so a busy pool pays nothing.
    /// This catches an executor that stopped itself (SIGSTOP), closed its protocol pipes or died
    /// while idle, which would otherwise cost the next caller its whole timeout or a crash.
    pub async fn answers_after_idle(&mut self, idle_after: Duration, timeout: Duration) -> bool {
        if !self.healthy {
            return false;
        }
        if self.alive_at.elapsed() < idle_after {
            return true;
        }
        let id = format!("idle-check-{}", self.invocations);
        let deadline = tokio::time::Instant::now() + timeout;
        let ping = SupervisorMessage::Ping { id: id.clone() };
        let alive = match tokio::time::timeout_at(deadline, self.writer.send(ping)).await {
            Ok(Ok(())) => loop {
                match self.next_event(deadline).await {
                    Event::Message(ExecutorMessage::Pong { id: got }) if got == id => break true,
                    // Output or logs written while idle belong to no request; an older pong
                    // is harmless.
                    Event::Stderr(_)
                    | Event::UserOut(_)
                    | Event::Message(ExecutorMessage::Pong { .. } | ExecutorMessage::Log { .. }) => {
                    }
                    Event::Message(_) | Event::Codec(_) | Event::Eof | Event::Deadline => {
                        break false;
                    }
                }
            },
            Ok(Err(_)) | Err(_) => false,
        };
        if alive {
            self.alive_at = Instant::now();
        } else {
            self.kill();
        }
        alive
    }

    /// Kills the executor's whole process group. Idempotent.
    pub fn kill(&mut self) {
        self.healthy = false;
        if let Ok(pid) = i32::try_from(self.pid) {
            // ESRCH (already gone) is fine: the goal is that nothing of it runs.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.start_kill();
    }

    /// Asks the executor to exit, waits up to `grace`, then kills the group.
    pub async fn shutdown(mut self, grace: Duration) {
        let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        let msg = SupervisorMessage::Shutdown { grace_ms };
        let polite = async {
            self.writer.send(msg).await.ok()?;
            self.child.wait().await.ok()
        };
        let _ = tokio::time::timeout(grace, polite).await;
        self.kill();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.child.wait()).await;
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A worker dropped anywhere (a cancelled request task, a pool retiring it) must not
        // leave its process group running.
        self.kill();
        // The cgroup catches what left the process group (setsid, double fork); killing it and
        // removing it waits for it to empty, so that happens off the async threads.
        if let Some(cg) = self.cgroup.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    h.spawn_blocking(move || drop(cg));
                }
                Err(_) => drop(cg),
            }
        }
    }
}

// === impl Worker: cgroup ===

impl Worker {
    /// Attaches the executor's cgroup (killed and removed with the worker). The CPU counters
    /// are read now, so the first invocation's CPU time does not include the executor's start.
    pub fn set_cgroup(&mut self, cgroup: Option<ExecutorCgroup>, memory_limit: Option<u64>) {
        self.cpu_baseline = cgroup.as_ref().and_then(|cg| cg.stats().cpu);
        self.cgroup = cgroup;
        self.memory_limit = memory_limit;
    }

    /// The CPU time the executor used since the previous call of this (or since it became
    /// ready), and its peak memory, when it has a cgroup.
    pub fn resources(&mut self) -> crate::execution::Resources {
        let Some(cg) = &self.cgroup else {
            return crate::execution::Resources::default();
        };
        let st = cg.stats();
        let cpu = st.cpu.map(|now| now.since(self.cpu_baseline.as_ref()));
        if st.cpu.is_some() {
            self.cpu_baseline = st.cpu;
        }
        crate::execution::Resources {
            cpu_user_ms: cpu.map(|c| round_us(c.user_ms)),
            cpu_system_ms: cpu.map(|c| round_us(c.system_ms)),
            peak_memory_bytes: st.peak_memory_bytes,
        }
    }

    /// OOM kills in the executor's cgroup so far.
    pub fn oom_kills(&self) -> u64 {
        self.cgroup.as_ref().map_or(0, ExecutorCgroup::oom_kills)
    }

    /// The memory limit, when one is enforced.
    pub fn memory_limit(&self) -> Option<u64> {
        self.memory_limit
    }
}

/// Why an executor died before `ready`: the sandbox helper's report of a failed step (one JSON
/// line on stderr) when there is one, else `detail`.
fn died_before_ready(stderr: Capture, detail: String) -> StartError {
    let text = stderr.text();
    match runwarm_sandbox::StepFailure::find_in_stderr(&text) {
        Some(failure) => StartError::Sandbox {
            failure,
            stderr: text,
        },
        None => StartError::Broken {
            detail,
            stderr: text,
        },
    }
}

/// Milliseconds to the microsecond: finer digits are noise from the tick-ratio split.
fn round_us(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

enum Event {
    Message(ExecutorMessage),
    Codec(CodecError),
    Eof,
    Stderr(Vec<u8>),
    UserOut(Vec<u8>),
    Deadline,
}

/// Reads from an optional pipe into `buf` (emptied first; its spare capacity, never zeroed):
/// the byte count, `None` at EOF or error; pends forever when the pipe is gone so a `select!`
/// arm on it stays quiet.
async fn read_opt(rx: &mut Option<pipe::Receiver>, buf: &mut Vec<u8>) -> Option<usize> {
    let Some(r) = rx else {
        return std::future::pending().await;
    };
    buf.clear();
    buf.reserve(READ_CHUNK);
    match r.read_buf(buf).await {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

fn chunk_is_empty(c: OutputChunk<'_>) -> bool {
    match c {
        OutputChunk::Stdout(b) | OutputChunk::Stderr(b) => b.is_empty(),
        OutputChunk::Log(_) => false,
    }
}

fn kind(m: &ExecutorMessage) -> &'static str {
    match m {
        ExecutorMessage::Ready { .. } => "ready",
        ExecutorMessage::InitError { .. } => "init_error",
        ExecutorMessage::Log { .. } => "log",
        ExecutorMessage::Response { .. } => "response",
        ExecutorMessage::Pong { .. } => "pong",
    }
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        format!("exited with code {code}")
    } else if let Some(sig) = status.signal() {
        let name = Signal::try_from(sig)
            .map(|s| s.as_str())
            .unwrap_or("unknown");
        format!("killed by signal {sig} ({name})")
    } else {
        status.to_string()
    }
}
