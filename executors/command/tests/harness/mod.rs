//! Drives a real `runwarm-exec-command` over its pipes the way the supervisor does: protocol on
//! fd 0/1, user stdout on a pipe at fd 3, stderr collected. Every wait is bounded so a hang is
//! a test failure with a message, not a stuck test run.
#![allow(unsafe_code)]
#![expect(
    clippy::unwrap_used,
    reason = "test harness: a setup step that fails must fail the test on the spot"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_runwarm-exec-command");
pub const WAIT: Duration = Duration::from_secs(10);

/// A scratch directory holding script files; removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("runwarm-cli-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Writes `main.sh` with `body` and returns the directory.
    pub fn script(body: &str) -> Self {
        let s = Self::new();
        std::fs::write(s.0.join("main.sh"), body).unwrap();
        s
    }

    pub fn root(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Exec {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    pub stderr_lines: Receiver<String>,
    user_stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<String>>,
}

impl Exec {
    /// Starts `runwarm-exec-command ARGS...` with fd 3 as a pipe.
    pub fn start(args: &[&str]) -> Self {
        let (out3_read, out3_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("RUNWARM_STDOUT_FD", "3")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let raw = out3_write.as_raw_fd();
        // SAFETY: the hook runs between fork and exec and only calls dup2/fcntl, which are
        // async-signal-safe and allocate nothing; `raw` stays open in the parent until after
        // `spawn` returns.
        unsafe {
            cmd.pre_exec(move || {
                let rc = if raw == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(raw, 3)
                };
                if rc == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        drop(out3_write);
        let stdout = child.stdout.take().unwrap();
        let (line_tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        let (err_tx, stderr_lines) = mpsc::channel();
        let stderr = thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                all.push_str(&line);
                all.push('\n');
                let _ = err_tx.send(line);
            }
            all
        });
        let user_stdout = thread::spawn(move || read_all(out3_read));
        Self {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr_lines,
            user_stdout: Some(user_stdout),
            stderr: Some(stderr),
        }
    }

    /// Starts `runwarm-exec-command -- bash` and sends `init` for `root/main.sh`.
    pub fn bash(root: &str) -> (Self, Value) {
        let mut exec = Self::start(&["--", "bash"]);
        let ready = exec.init(root, "main.sh");
        (exec, ready)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    pub fn child_stdin(&mut self) -> &mut ChildStdin {
        self.stdin.as_mut().unwrap()
    }

    pub fn send(&mut self, message: Value) {
        let mut line = serde_json::to_vec(&message).unwrap();
        line.push(b'\n');
        self.send_raw(&line);
    }

    pub fn recv(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("no protocol line within {WAIT:?}: {e}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"))
    }

    pub fn init(&mut self, root: &str, entry: &str) -> Value {
        self.send(json!({"type": "init", "protocol": 1,
            "script": {"name": "t", "version": "sha256:00", "root": root, "entry": entry,
                       "mode": "command"},
            "env": {"FROM_INIT": "init-value"}}));
        self.recv()
    }

    pub fn send_request(&mut self, id: &str, payload: Value) {
        self.send(json!({"type": "request", "id": id, "payload": payload,
            "context": {"execution_id": format!("exec-{id}"), "deadline_ms": 1_700_000_000_000u64,
                        "attempt": 1, "caller": {"uid": 0, "gid": 0, "pid": 1}}}));
    }

    pub fn request(&mut self, id: &str, payload: Value) -> Value {
        self.send_request(id, payload);
        let response = self.recv();
        assert_eq!(response["type"], "response", "{response}");
        assert_eq!(response["id"], id, "{response}");
        response
    }

    /// Waits for a stderr line containing `needle`.
    pub fn wait_stderr(&self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => {}
                Err(e) => panic!("no stderr line with {needle:?}: {e}"),
            }
        }
        panic!("no stderr line with {needle:?} within {WAIT:?}");
    }

    /// Closes stdin (EOF) and waits for the executor to exit.
    pub fn finish(mut self) -> Finished {
        drop(self.stdin.take());
        self.wait()
    }

    /// Waits for the executor to exit without closing stdin.
    pub fn wait(mut self) -> Finished {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("executor did not exit within {WAIT:?}");
            }
            thread::sleep(Duration::from_millis(5));
        };
        Finished {
            status,
            user_stdout: String::from_utf8_lossy(&self.user_stdout.take().unwrap().join().unwrap())
                .into_owned(),
            stderr: self.stderr.take().unwrap().join().unwrap(),
        }
    }
}

impl Drop for Exec {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Finished {
    pub status: ExitStatus,
    pub user_stdout: String,
    pub stderr: String,
}

fn read_all(fd: OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = std::fs::File::from(fd).read_to_end(&mut out);
    out
}
