//! One request on a warm executor: write it, then read the response, logs and output until
//! the deadline, and what is left after a crash.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use runwarm_protocol::{CodecError, ExecutorMessage, RequestContext, SupervisorMessage};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use super::{Fault, InvokeOutcome, OutputChunk, Response, Worker, describe_status};
use crate::execution::LogRecord;
use crate::sandbox::cgroup::ExecutorCgroup;
use crate::worker::output::{Capture, LogScanner, log_from_object};

/// How long output that was already written is read after a crash or kill.
const DRAIN_AFTER_DEATH: Duration = Duration::from_millis(200);

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

impl Worker {
    /// Sends one request and waits for its response until `deadline`.
    pub async fn invoke(
        &mut self,
        id: &str,
        payload: std::sync::Arc<runwarm_protocol::RawJson>,
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
    pub(super) async fn next_event(&mut self, deadline: tokio::time::Instant) -> Event {
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
    pub(super) async fn collect_after_death(
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

    pub(super) async fn exit_status(&mut self) -> String {
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
}

/// What ended a wait on the executor: a message, a bad line, its end, output, or the deadline.
pub(super) enum Event {
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

/// A message's `type`, for errors.
pub(super) fn kind(m: &ExecutorMessage) -> &'static str {
    match m {
        ExecutorMessage::Ready { .. } => "ready",
        ExecutorMessage::InitError { .. } => "init_error",
        ExecutorMessage::Log { .. } => "log",
        ExecutorMessage::Response { .. } => "response",
        ExecutorMessage::Pong { .. } => "pong",
    }
}
