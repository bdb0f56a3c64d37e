//! The I/O thread of one request: feeds the payload to the script's stdin, copies the script's
//! stdout to user stdout (fd 3) as it arrives while tracking its last non-empty line, and stops
//! at EOF or when told to.
//!
//! One thread polls both pipes because each can block the other's peer: a script that never
//! reads a large payload must not stall the executor, and one that prints a lot before reading
//! stdin must not fill its stdout pipe. The stop signal is a pipe whose write end the caller
//! drops, so the thread never sleeps in a timed poll: a background grandchild that inherited
//! the script's stdout keeps the pipe open past the script's exit, and the caller decides how
//! long to wait for it.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{ChildStdin, ChildStdout};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde_json::Value;

use crate::outcome::LastLine;

const READ_CHUNK: usize = 64 * 1024;

/// What the pump hands back when it ends.
#[derive(Debug)]
pub struct PumpOutput {
    /// The result the last non-empty stdout line stands for.
    pub result: Value,
    /// Whether the script's stdout reached EOF (false: stopped while a process still held it).
    pub reached_eof: bool,
}

/// The write end of the stop pipe; dropping it stops the pump.
#[derive(Debug)]
pub struct StopHandle(#[expect(dead_code, reason = "held only to be dropped")] OwnedFd);

/// Creates the stop pipe: the read end for the pump, the write end for the caller.
pub fn stop_pipe() -> nix::Result<(OwnedFd, StopHandle)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    Ok((read, StopHandle(write)))
}

/// Runs the pump until the script's stdout ends or the stop handle is dropped.
pub fn pump(
    stdin: ChildStdin,
    payload: &[u8],
    mut stdout: ChildStdout,
    stop: OwnedFd,
    sink: &File,
    max_line: usize,
) -> PumpOutput {
    let mut stdin = make_nonblocking(stdin);
    let mut pending = payload;
    let mut last = LastLine::new(max_line);
    let mut sink_ok = true;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut reached_eof = false;

    loop {
        if pending.is_empty() {
            // Closing stdin is the script's EOF.
            stdin = None;
        }
        let (out_ready, in_ready, stopped) = {
            let mut fds = vec![
                PollFd::new(stdout.as_fd(), PollFlags::POLLIN),
                PollFd::new(stop.as_fd(), PollFlags::POLLIN),
            ];
            if let Some(stdin) = &stdin {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLOUT));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    eprintln!("runwarm-exec-command: polling the script's pipes: {e}");
                    break;
                }
            }
            let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
            (
                ready(&fds[0]),
                fds.get(2).is_some_and(ready),
                ready(&fds[1]),
            )
        };
        if stopped {
            break;
        }
        if in_ready && let Some(pipe) = stdin.as_mut() {
            match pipe.write(pending) {
                Ok(n) => pending = &pending[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // EPIPE: the script exited or closed stdin without reading it all, which it
                // is free to do.
                Err(_) => pending = &[],
            }
        }
        if out_ready {
            match stdout.read(&mut buf) {
                Ok(0) => {
                    reached_eof = true;
                    break;
                }
                Ok(n) => {
                    let chunk = &buf[..n];
                    last.feed(chunk);
                    if sink_ok && let Err(e) = (&*sink).write_all(chunk) {
                        // Keep draining so the script does not block on a full pipe.
                        eprintln!("runwarm-exec-command: writing user stdout: {e}");
                        sink_ok = false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("runwarm-exec-command: reading the script's stdout: {e}");
                    break;
                }
            }
        }
    }
    PumpOutput {
        result: last.into_result(),
        reached_eof,
    }
}

/// Non-blocking writes let the loop go on reading stdout while the script ignores stdin. If
/// the flag cannot be set the payload is not fed at all rather than risking a blocked thread.
fn make_nonblocking(stdin: ChildStdin) -> Option<ChildStdin> {
    match fcntl(&stdin, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)) {
        Ok(_) => Some(stdin),
        Err(e) => {
            eprintln!("runwarm-exec-command: making the script's stdin non-blocking: {e}");
            None
        }
    }
}
