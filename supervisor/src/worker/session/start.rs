//! Starting an executor: spawn, then the `init` handshake up to `ready`.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use runwarm_protocol::{
    ExecutorMessage, InitScript, JsonLinesCodec, PROTOCOL_VERSION, SupervisorMessage,
};
use serde_json::{Map, Value};
use tokio_util::codec::{FramedRead, FramedWrite};

use super::request::{Event, kind};
use super::{StartError, Worker, WorkerOptions};
use crate::worker::output::{Capture, LogScanner};
use crate::worker::spawn::{LaunchSpec, spawn_executor};

/// Stderr kept from a failed start, for the `E001` message.
const START_STDERR_BYTES: usize = 16 * 1024;

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
