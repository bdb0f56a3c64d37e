//! One executor process under test: spawned with the protocol pipes on fds 0–2 and a user-stdout
//! pipe on fd 3, read by threads so that every wait has a deadline.
//!
//! This is the only module of the crate with `unsafe`: creating the fd 3 pipe and placing it in
//! the child between fork and exec.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Shim;
use crate::codec::excerpt;
use crate::{DEFAULT_MAX_LINE_BYTES, ExecutorMessage, PROTOCOL_VERSION, env};

/// Output kept per captured stream; more is dropped so a runaway executor cannot exhaust memory.
const CAPTURE_LIMIT: usize = 16 * 1024 * 1024;
/// How long to wait for stderr/fd 3 to reach EOF once the executor is gone (a grandchild may
/// still hold the pipe open).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

enum Incoming {
    Message(Value),
    Fault(String),
    Eof,
}

/// Bytes a reader thread collects, and a signal that it reached EOF.
struct Captured {
    buf: Arc<Mutex<Vec<u8>>>,
    done: Receiver<()>,
}

/// What the executor wrote besides protocol messages.
pub(crate) struct Report {
    pub stderr: String,
    pub user_stdout: String,
}

pub(crate) struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    messages: Receiver<Incoming>,
    stderr: Captured,
    user_stdout: Captured,
    exited: Option<ExitStatus>,
}

impl Session {
    pub fn spawn(shim: &Shim) -> io::Result<Session> {
        let (program, args) = shim
            .command
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        let (user_read, user_write) = cloexec_pipe()?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that killing it also kills what it started.
            .process_group(0);
        for key in ["PATH", "HOME"] {
            if let Some(value) = std::env::var_os(key) {
                cmd.env(key, value);
            }
        }
        cmd.envs(shim.env.iter().map(|(k, v)| (k, v)))
            .env(env::STDOUT_FD, env::USER_STDOUT_FD.to_string())
            .env(env::PROTOCOL, PROTOCOL_VERSION.to_string());
        let src = user_write.as_raw_fd();
        // SAFETY: the hook runs in the forked child before exec and only calls dup2/fcntl, which
        // are async-signal-safe; it allocates nothing and touches no lock.
        unsafe {
            cmd.pre_exec(move || place_fd(src, env::USER_STDOUT_FD));
        }
        let mut child = cmd.spawn()?;
        // The child holds its own copy; ours must go or fd 3 never reaches EOF.
        drop(user_write);
        let missing = || io::Error::other("child stdio pipe missing");
        let stdout = child.stdout.take().ok_or_else(missing)?;
        let stderr = child.stderr.take().ok_or_else(missing)?;
        let (tx, messages) = mpsc::channel();
        thread::spawn(move || read_messages(stdout, &tx));
        Ok(Session {
            stdin: child.stdin.take(),
            child,
            messages,
            stderr: capture(stderr),
            user_stdout: capture(std::fs::File::from(user_read)),
            exited: None,
        })
    }

    /// Writes one message line. Vectors are far smaller than a pipe buffer, so this cannot block
    /// on an executor that stopped reading.
    pub fn send(&mut self, msg: &Value) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("stdin already closed"))?;
        let mut line = msg.to_string();
        line.push('\n');
        stdin.write_all(line.as_bytes())?;
        stdin.flush()
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next protocol message, or a description of what came instead.
    pub fn next_message(&mut self, timeout: Duration) -> Result<Value, String> {
        match self.messages.recv_timeout(timeout) {
            Ok(Incoming::Message(v)) => Ok(v),
            Ok(Incoming::Fault(e)) => Err(e),
            Ok(Incoming::Eof) | Err(RecvTimeoutError::Disconnected) => {
                let status = self.wait_exit(Duration::from_millis(500));
                Err(format!(
                    "EOF on executor stdout ({})",
                    match status {
                        Ok(s) => format!("executor {s}"),
                        Err(_) => "executor still running".to_owned(),
                    }
                ))
            }
            Err(RecvTimeoutError::Timeout) => Err(format!("nothing within {timeout:?}")),
        }
    }

    /// After exit: any message the executor wrote that no step expected.
    pub fn leftover_message(&mut self) -> Option<String> {
        match self.messages.recv_timeout(DRAIN_TIMEOUT) {
            Ok(Incoming::Message(v)) => Some(v.to_string()),
            Ok(Incoming::Fault(e)) => Some(e),
            Ok(Incoming::Eof) | Err(_) => None,
        }
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        if let Some(status) = self.exited {
            return Ok(status);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.exited = Some(status);
                    return Ok(status);
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
                Ok(None) => return Err(format!("the executor did not exit within {timeout:?}")),
                Err(e) => return Err(format!("waiting for the executor failed: {e}")),
            }
        }
    }

    /// Kills and reaps the executor if it still runs, then collects what it wrote.
    pub fn finish(&mut self) -> Report {
        self.reap();
        Report {
            stderr: self.stderr.drain(),
            user_stdout: self.user_stdout.drain(),
        }
    }

    fn reap(&mut self) {
        self.stdin = None;
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) takes no pointers. The group id is the pid of our child, which is
            // not reaped yet or has just been reaped by us, so the group is its own.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        if self.exited.is_none() {
            // Errors mean it is already gone; wait() below reaps it either way.
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reap();
    }
}

impl Captured {
    fn drain(&self) -> String {
        let _ = self.done.recv_timeout(DRAIN_TIMEOUT);
        let buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

fn capture(mut source: impl Read + Send + 'static) -> Captured {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let (tx, done) = mpsc::channel();
    let sink = Arc::clone(&buf);
    thread::spawn(move || {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match source.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut buf = sink.lock().unwrap_or_else(PoisonError::into_inner);
                    let room = CAPTURE_LIMIT.saturating_sub(buf.len());
                    buf.extend_from_slice(&chunk[..n.min(room)]);
                }
            }
        }
        let _ = tx.send(());
    });
    Captured { buf, done }
}

/// Frames executor stdout into messages, holding it to the protocol: bounded lines, each a valid
/// executor message. The first fault ends the stream.
fn read_messages(stdout: impl Read, tx: &mpsc::Sender<Incoming>) {
    let mut reader = BufReader::new(stdout);
    let limit = DEFAULT_MAX_LINE_BYTES as u64 + 1;
    loop {
        let mut line = Vec::new();
        let incoming = match reader.by_ref().take(limit).read_until(b'\n', &mut line) {
            Ok(0) => Incoming::Eof,
            Ok(_) if line.last() == Some(&b'\n') => {
                line.pop();
                parse_message(&line)
            }
            Ok(_) if line.len() > DEFAULT_MAX_LINE_BYTES => Incoming::Fault(format!(
                "a protocol line longer than {DEFAULT_MAX_LINE_BYTES} bytes"
            )),
            Ok(_) => Incoming::Fault(format!(
                "EOF in the middle of a protocol line: {:?}",
                excerpt(&String::from_utf8_lossy(&line))
            )),
            Err(e) => Incoming::Fault(format!("reading executor stdout failed: {e}")),
        };
        let last = !matches!(incoming, Incoming::Message(_));
        if tx.send(incoming).is_err() || last {
            return;
        }
    }
}

fn parse_message(line: &[u8]) -> Incoming {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(_) => return Incoming::Fault("a protocol line that is not UTF-8".into()),
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return Incoming::Fault(format!("a non-object line {:?}", excerpt(text))),
        Err(e) => return Incoming::Fault(format!("invalid JSON {:?} ({e})", excerpt(text))),
    };
    match serde_json::from_value::<ExecutorMessage>(value.clone()) {
        Ok(_) => Incoming::Message(value),
        Err(e) => Incoming::Fault(format!("not an executor message: {value} ({e})")),
    }
}

fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds: [libc::c_int; 2] = [-1; 2];
    // SAFETY: `fds` is a valid, writable array of two ints, as pipe2 requires.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both fds are open and nothing else owns them. O_CLOEXEC keeps
    // them out of executors that other threads spawn at the same time.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Makes `src` available as `dst` across exec. Runs between fork and exec: no allocation.
fn place_fd(src: RawFd, dst: RawFd) -> io::Result<()> {
    let rc = if src == dst {
        // dup2 onto itself is a no-op that would leave O_CLOEXEC set.
        // SAFETY: fcntl on an fd this process owns; async-signal-safe.
        unsafe { libc::fcntl(dst, libc::F_SETFD, 0) }
    } else {
        // SAFETY: dup2 with two valid fd numbers; async-signal-safe. The copy has no O_CLOEXEC.
        unsafe { libc::dup2(src, dst) }
    };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
