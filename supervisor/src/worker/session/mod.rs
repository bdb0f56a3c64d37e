//! The protocol session with one executor: the worker and its lifecycle (kill, shutdown,
//! accounting); starting it is in `start`, a request in `request`.

mod request;
mod start;

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use runwarm_protocol::{ErrorBody, ExecutorMessage, JsonLinesCodec, RawJson, SupervisorMessage};
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio_util::codec::{FramedRead, FramedWrite};

use super::output::Capture;
use super::spawn::SpawnError;
use crate::execution::LogRecord;
use crate::sandbox::cgroup::{CpuCounters, ExecutorCgroup};

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
    /// Result on success, as the executor wrote it.
    pub result: Option<RawJson>,
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

/// Milliseconds to the microsecond: finer digits are noise from the tick-ratio split.
fn round_us(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
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
